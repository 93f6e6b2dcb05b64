"""The recorder remuxes real forwarded media into files that decode, next to a timeline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import av

from recordings.codecs import vp8_is_keyframe
from recordings.recorder import Recorder
from rooms import passthrough
from rooms.client import RoomPeer
from rooms.close_reason import CloseReason
from rooms.manager import RoomManager
from rooms.room import Room, RoomMeta
from server.config import MediaConfig
from tests.support.recordings import av_packet, encoded_vp8


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_video_starts_at_the_first_keyframe_and_timestamps_start_at_zero(tmp_path: Path) -> None:
    clock = iter(float(t) for t in range(1000, 2000))
    recorder = Recorder(tmp_path / "r", room_id="r", meta={"ticket_id": "t"},
                        clock=lambda: next(clock))
    recorder.start()
    assert json.loads((tmp_path / "r" / "timeline.json").read_text())["complete"] is False
    track = recorder.track("a", "video", "vp8")
    frames = encoded_vp8(20)
    # a delta frame first (as after joining mid-stream): it cannot start a file
    track.write(av_packet(frames[1], 90_000, 90000, keyframe=False))
    assert track.started_at is None and not track.path.exists()
    for i, data in enumerate(frames):
        track.write(av_packet(data, 180_000 + i * 3000, 90000, vp8_is_keyframe(data)))
    summary = recorder.close()
    assert summary["complete"] is True and summary["dir"] == str(tmp_path / "r")
    [entry] = summary["tracks"]
    assert entry["packets"] == len(frames) and entry["file"] == "a-video-1.webm"
    with av.open(str(tmp_path / "r" / entry["file"])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (160, 120)
        decoded = list(container.decode(stream))
        assert len(decoded) == len(frames)
        assert decoded[0].time == 0.0
        assert abs(decoded[-1].time - (len(frames) - 1) / 30) < 0.01
    on_disk = json.loads((tmp_path / "r" / "timeline.json").read_text())
    assert on_disk["complete"] is True and on_disk["tracks"] == summary["tracks"]


async def test_a_recorded_call_decodes_with_pyav(tmp_path: Path) -> None:
    media = MediaConfig()
    passthrough.install(media)
    summaries: list[dict[str, Any] | None] = []

    async def on_closed(room: Room, summary: dict[str, Any] | None) -> None:
        summaries.append(summary)

    manager = RoomManager(media, tmp_path, on_closed)
    room = manager.open("rec1", RoomMeta(ticket_id="t9", ticket_number="社B002",
                                         department="social"))
    peers = []
    for pid, role in (("a", "applicant"), ("b", "staff")):
        async def send_answer(sdp: str, pid: str = pid) -> None:
            await room.answer(pid, sdp)
        peer = RoomPeer(send_answer, name=pid, width=320, height=240)
        peers.append(peer)
        await room.join(participant_id=pid, role=role, name=pid, department=None,
                        signal=peer.handle)
    await peers[0].wait_for_video(20, timeout=10)
    await asyncio.sleep(1.5)
    room.add_event("notice", text="recording test")
    await room.close(CloseReason.HANGUP)
    for peer in peers:
        await peer.close()
    await manager.close()

    [summary] = summaries
    assert summary is not None and summary["complete"] is True
    assert summary["ticket_number"] == "社B002"
    assert summary["duration"] >= 1.5
    assert {(t["participant_id"], t["kind"]) for t in summary["tracks"]} == {
        ("a", "audio"), ("a", "video"), ("b", "audio"), ("b", "video")}
    assert "notice" in [e["type"] for e in summary["events"]]
    directory = Path(summary["dir"])
    assert _names(directory) == sorted(
        [t["file"] for t in summary["tracks"]] + ["timeline.json"])
    for track in summary["tracks"]:
        with av.open(str(directory / track["file"])) as container:
            stream = container.streams[0]
            frames: list[Any] = list(container.decode(stream))  # video or audio frames
            assert frames, track
            span = float(frames[-1].time or 0.0)
            assert 1.0 < span < summary["duration"] + 0.5, (track, span)
            if track["kind"] == "video":
                assert (frames[0].width, frames[0].height) == (320, 240)
                assert len(frames) >= 30
            else:
                assert sum(f.samples for f in frames) > 48000
