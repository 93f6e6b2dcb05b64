"""Where a track sits on the timeline, and what a failed write does to a recording (without a
server: the track file is a link to /dev/full, which answers every write with ENOSPC)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recordings.codecs import vp8_is_keyframe
from recordings.recorder import RESERVE_FILE, Recorder
from tests.support.recordings import av_packet, encoded_vp8


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_late_first_keyframe_does_not_put_the_track_late(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    recorder = Recorder(tmp_path / "r", room_id="r", meta={}, clock=clock)
    recorder.start()
    track = recorder.track("a", "video", "vp8")
    frames = encoded_vp8(200)
    # Filmed from 1000.0 at 30 fps; the first keyframe reaches the recorder 0.3 s late (it
    # waited in the jitter buffer), the others 10 ms after they were filmed.
    for i, data in enumerate(frames):
        clock.now = 1000.0 + i / 30 + (0.3 if i == 0 else 0.01)
        track.write(av_packet(data, 90_000 + i * 3000, 90000, vp8_is_keyframe(data)))
    assert track.started_at == pytest.approx(1000.01, abs=0.002)
    # After the first 5 s of media a packet arriving early (a sender clock running fast) no
    # longer moves the start.
    clock.now = 1000.0 + 200 / 30 - 0.5
    track.write(av_packet(frames[-1], 90_000 + 200 * 3000, 90000, False))
    assert track.started_at == pytest.approx(1000.01, abs=0.002)
    summary = recorder.close()
    assert summary["tracks"][0]["started_at"] == track.started_at
    assert not (tmp_path / "r" / RESERVE_FILE).exists()


def test_a_failed_write_stops_the_recording_and_marks_it_incomplete(tmp_path: Path) -> None:
    clock = Clock(2000.0)
    directory = tmp_path / "r"
    recorder = Recorder(directory, room_id="r", meta={"department": "tax"}, clock=clock)
    recorder.start()
    assert (directory / RESERVE_FILE).stat().st_size > 0
    assert recorder.failed is None and recorder.recording
    good = recorder.track("a", "video", "vp8")
    frames = encoded_vp8(30)
    for i, data in enumerate(frames[:10]):
        clock.now += 1 / 30
        good.write(av_packet(data, i * 3000, 90000, vp8_is_keyframe(data)))
    assert good.packets == 10
    # The next track's file can take no byte: the disk is full.
    full = recorder.track("b", "video", "vp8")
    os.symlink("/dev/full", full.path)
    clock.now += 0.1
    full.write(av_packet(frames[0], 0, 90000, True))  # must not raise: the call goes on
    assert full.failed == "disk_full" and recorder.failed == "disk_full"
    assert not recorder.recording
    # Every file of the room stops where it is; more packets are dropped quietly.
    for i, data in enumerate(frames[10:], start=10):
        good.write(av_packet(data, i * 3000, 90000, vp8_is_keyframe(data)))
        full.write(av_packet(data, i * 3000, 90000, False))
    assert good.packets == 10
    # The timeline on disk says so at once, in the space the reserve kept.
    assert not (directory / RESERVE_FILE).exists()
    on_disk = json.loads((directory / "timeline.json").read_text(encoding="utf-8"))
    assert on_disk["complete"] is False and on_disk["incomplete_reason"] == "disk_full"
    assert [e["reason"] for e in on_disk["events"] if e["type"] == "recording_failed"] == [
        "disk_full"]
    # A track published afterwards writes nothing either.
    late = recorder.track("c", "audio", "opus")
    late.write(av_packet(b"\xfc\xff\xfe", 0, 48000, True))
    assert late.packets == 0 and not late.path.exists()
    clock.now += 5
    summary = recorder.close()
    assert summary["complete"] is False and summary["incomplete_reason"] == "disk_full"
    assert summary["ended_at"] == clock.now
    assert [t["track_id"] for t in summary["tracks"]] == ["a-video-1"]
    assert json.loads((directory / "timeline.json").read_text(encoding="utf-8")) == {
        k: v for k, v in summary.items() if k != "dir"}
