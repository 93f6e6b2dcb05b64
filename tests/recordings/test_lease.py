"""The recordings' lease (recordings/lease.py), without a server: packets that come while it is
not held wait, and are written once it is renewed or dropped when the room is let go; a let-go
recording leaves every byte of its folder as it was. The files are read back with PyAV."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import av
import pytest

from recordings.codecs import vp8_is_keyframe
from recordings.lease import Lease
from recordings.recorder import Recorder
from tests.support.recordings import av_packet, encoded_vp8


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _frames(path: Path) -> list[float]:
    """The times of the video frames in a track file, in seconds from its first."""
    with av.open(str(path)) as container:
        return [float(p.pts * p.time_base) for p in container.demux(video=0)
                if p.size and p.pts is not None and p.time_base is not None]


def _every_frame(count: int) -> object:
    return pytest.approx([i / 30 for i in range(count)], abs=0.002)


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def _recording(tmp_path: Path) -> tuple[Clock, Lease, Recorder]:
    clock = Clock(1000.0)
    lease = Lease(4.0, clock=clock)
    recorder = Recorder(tmp_path / "r", room_id="r", meta={}, clock=clock, lease=lease)
    recorder.start()
    return clock, lease, recorder


def test_packets_wait_while_the_lease_is_not_held_and_are_written_in_order_after(
        tmp_path: Path) -> None:
    clock, lease, recorder = _recording(tmp_path)
    track = recorder.track("a", "video", "vp8")
    frames = encoded_vp8(60)
    for i, data in enumerate(frames):
        if i == 20:
            clock.now += 4.5  # stopped: the lease (renewed at 1000.0 for 4 s) has run out
            assert not lease.held()
        if i == 40:
            lease.renew(clock.now)  # the heartbeat: not buried
        clock.now += 1 / 30
        track.write(av_packet(data, i * 3000, 90000, vp8_is_keyframe(data)))
        if 20 <= i < 40:
            assert track.packets == 20  # held, not written
    assert track.packets == 60
    summary = recorder.close()
    assert summary["complete"] is True
    assert _frames(tmp_path / "r" / summary["tracks"][0]["file"]) == _every_frame(60)


def test_a_recording_let_go_leaves_its_folder_as_it_was(tmp_path: Path) -> None:
    clock, lease, recorder = _recording(tmp_path)
    video = recorder.track("a", "video", "vp8")
    frames = encoded_vp8(80)
    for i, data in enumerate(frames[:60]):  # two seconds: the first clusters are on disk
        clock.now += 1 / 30
        video.write(av_packet(data, i * 3000, 90000, vp8_is_keyframe(data)))
    before = _digests(tmp_path / "r")

    clock.now += 5.0  # stopped past the lease; meanwhile another process took the room
    recorder.participant_left("a")  # a timer that ran out while stopped: no checkpoint now
    recorder.track("b", "audio", "opus")
    for i, data in enumerate(frames[60:], start=60):
        clock.now += 1 / 30
        video.write(av_packet(data, i * 3000, 90000, vp8_is_keyframe(data)))
    assert video.packets == 60
    assert _digests(tmp_path / "r") == before
    recorder.let_go()
    assert video.skipped == 20
    # No trailer, no timeline, no byte changed; the file still plays its first clusters.
    assert _digests(tmp_path / "r") == before
    played = _frames(tmp_path / "r" / video.file)
    assert 30 <= len(played) < 60 and played == _every_frame(len(played))
    lease.renew(clock.now)
    video.write(av_packet(frames[0], 80 * 3000, 90000, True))
    assert _digests(tmp_path / "r") == before


def test_a_close_while_the_lease_is_not_held_drops_what_waits(tmp_path: Path) -> None:
    """At shutdown a room closes without waiting for the lease: the packets held then may
    belong to a room another process has taken, so they are not written."""
    clock, _lease, recorder = _recording(tmp_path)
    video = recorder.track("a", "video", "vp8")
    frames = encoded_vp8(20)
    for i, data in enumerate(frames):
        if i == 10:
            clock.now += 5.0
        clock.now += 1 / 30
        video.write(av_packet(data, i * 3000, 90000, vp8_is_keyframe(data)))
    summary = recorder.close()
    assert video.packets == 10 and video.skipped == 10
    assert _frames(tmp_path / "r" / summary["tracks"][0]["file"]) == _every_frame(10)


async def test_waiting_for_the_lease_ends_when_it_is_renewed() -> None:
    clock = Clock(0.0)
    lease = Lease(4.0, clock=clock)
    await asyncio.wait_for(lease.wait(), 1)  # held: at once
    clock.now = 10.0
    waiter = asyncio.create_task(lease.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    lease.renew(clock.now - 5.0)  # a heartbeat sent before it ran out does not bring it back
    await asyncio.sleep(0.01)
    assert not waiter.done()
    lease.renew(clock.now)
    await asyncio.wait_for(waiter, 1)
    assert lease.held()
    with pytest.raises(TimeoutError):
        clock.now = 20.0
        await asyncio.wait_for(lease.wait(), 0.05)
