"""Fake finished recordings for archive tests: a directory with a media file and a timeline;
the wait for a real room's recording to be finished; small encoded VP8 packets for the recorder."""

from __future__ import annotations

import asyncio
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from recordings.archive import Archive


async def make_recording(archive: Archive, recording_id: str, *, department: str = "tax",
                         started_at: float = 1_700_000_000.0, duration: float = 60.0,
                         staff: str = "tax01", staff_name: str = "税务坐席01",
                         complete: bool = True, index: bool = True) -> Path:
    directory = archive.root / recording_id
    directory.mkdir(parents=True)
    track = f"a-{recording_id}-audio-1.webm"
    (directory / track).write_bytes(recording_id.encode() * 100)
    timeline: dict[str, Any] = {
        "recording_id": recording_id, "room_id": recording_id, "ticket_id": f"t-{recording_id}",
        "ticket_number": f"税A{recording_id[-3:]}", "department": department,
        "started_at": started_at, "ended_at": started_at + duration, "duration": duration,
        "complete": complete,
        "participants": [
            {"participant_id": "a-1", "role": "applicant", "name": "", "department": None,
             "joined_at": started_at, "left_at": started_at + duration},
            {"participant_id": f"s-{staff}", "role": "staff", "name": staff_name,
             "department": department, "joined_at": started_at,
             "left_at": started_at + duration}],
        "tracks": [{"track_id": track[:-5], "participant_id": "a-1", "kind": "audio",
                    "codec": "opus", "file": track, "started_at": started_at, "packets": 5}],
        "events": [], "rating": None,
    }
    (directory / "timeline.json").write_text(json.dumps(timeline), encoding="utf-8")
    if index:
        await archive.index(timeline)
    return directory


async def finished_timeline(recordings: Path, room_id: str,
                            timeout: float = 10.0) -> dict[str, Any]:
    """A closed room's timeline.json, once the recorder has finished it (ended_at set)."""
    path = recordings / room_id / "timeline.json"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if path.exists():
            timeline: dict[str, Any] = json.loads(path.read_text())
            if timeline.get("ended_at") is not None:
                return timeline
        await asyncio.sleep(0.1)
    raise AssertionError(f"no finished timeline at {path}")


def encoded_vp8(count: int, width: int = 160, height: int = 120) -> list[bytes]:
    """``count`` VP8 frames of a changing flat picture, the first a keyframe (libvpx)."""
    encoder = av.VideoCodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    out = []
    for i in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        for n, plane in enumerate(frame.planes):
            plane.update(bytes([(i * 7 + n * 60) % 256]) * plane.buffer_size)
        frame.pts = i
        out += [bytes(p) for p in encoder.encode(frame)]
    return out + [bytes(p) for p in encoder.encode(None)]


def av_packet(data: bytes, pts: int, rate: int, keyframe: bool) -> av.Packet:
    packet = av.Packet(data)
    packet.pts = packet.dts = pts
    packet.time_base = Fraction(1, rate)
    packet.is_keyframe = keyframe
    return packet
