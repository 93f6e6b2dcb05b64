"""Real recordings for export tests: encoded VP8 and Opus packets written by the room's own
Recorder (remuxed into WebM, timeline.json beside them) under a clock the test moves."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from recordings.recorder import Recorder

VIDEO_TB = Fraction(1, 90000)
AUDIO_TB = Fraction(1, 48000)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def vp8_packets(seconds: float, *, fps: int = 15, width: int = 320, height: int = 240,
                shade: int = 90) -> list[av.Packet]:
    """A moving bright bar over a flat ``shade``, VP8 at ``fps``; pts on the 90 kHz clock."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    encoder.gop_size = fps
    packets = []
    for n in range(round(seconds * fps)):
        frame = av.VideoFrame(width, height, "yuv420p")
        luma = frame.planes[0]
        bar = (n * 8) % width
        row = bytes([shade] * bar + [235] * min(16, width - bar)
                    + [shade] * max(0, width - bar - 16))
        luma.update((row + bytes(luma.line_size - width)) * height)
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * plane.buffer_size)
        frame.pts = n
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    out = []
    for p in packets:
        packet = av.Packet(bytes(p))
        packet.pts = packet.dts = (p.pts or 0) * 90000 // fps
        packet.time_base = VIDEO_TB
        packet.is_keyframe = p.is_keyframe
        out.append(packet)
    return out


def opus_packets(seconds: float, *, tone: float = 440.0, level: int = 8000) -> list[av.Packet]:
    """A sine tone (``level`` 0: silence) in 20 ms Opus packets; pts on the 48 kHz clock."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.bit_rate = 64000
    packets = []
    for n in range(round(seconds * 50)):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(b"".join(
            int(level * math.sin(2 * math.pi * tone * (n * 960 + i) / 48000)).to_bytes(
                2, "little", signed=True) * 2 for i in range(960)))
        frame.sample_rate = 48000
        frame.pts = n * 960
        frame.time_base = AUDIO_TB
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    out = []
    for i, p in enumerate(packets):
        packet = av.Packet(bytes(p))
        packet.pts = packet.dts = i * 960
        packet.time_base = AUDIO_TB
        packet.is_keyframe = True
        out.append(packet)
    return out


def record(directory: Path, recording_id: str, *, started_at: float, duration: float,
           participants: list[dict[str, Any]], department: str = "tax") -> dict[str, Any]:
    """Record a consultation with the real Recorder and return its closed summary.

    Each participant: ``{id, role, name, join, leave, video: (from, to) | None,
    audio: (from, to, tone_hz) | None}``, times in seconds after ``started_at``."""
    clock = Clock(started_at)
    recorder = Recorder(directory / recording_id, room_id=recording_id,
                        meta={"ticket_id": f"t-{recording_id}", "ticket_number": "税A001",
                              "department": department}, clock=clock)
    recorder.start()
    # Every thing to do, in time order: joins, leaves and each track's packets.
    steps: list[tuple[float, int, Any]] = []
    for p in participants:
        steps.append((p["join"], 0, ("join", p)))
        steps.append((p.get("leave", duration), 2, ("leave", p)))
        if p.get("video"):
            first, last = p["video"]
            track = recorder.track(p["id"], "video", "vp8")
            for packet in vp8_packets(last - first, shade=p.get("shade", 90)):
                steps.append((first + float(packet.pts or 0) / 90000, 1, ("write", track, packet)))
        if p.get("audio"):
            first, last, tone = p["audio"]
            track = recorder.track(p["id"], "audio", "opus")
            for packet in opus_packets(last - first, tone=tone):
                steps.append((first + float(packet.pts or 0) / 48000, 1, ("write", track, packet)))
    steps.sort(key=lambda s: (s[0], s[1]))
    for at, _, step in steps:
        clock.now = started_at + at
        if step[0] == "join":
            p = step[1]
            recorder.participant_joined(p["id"], role=p["role"], name=p["name"],
                                        department=department if p["role"] == "staff" else None)
        elif step[0] == "leave":
            recorder.participant_left(step[1]["id"])
        else:
            step[1].write(step[2])
    clock.now = started_at + duration
    return recorder.close()


def two_party(directory: Path, recording_id: str, started_at: float) -> dict[str, Any]:
    """6 s: a staff member with camera and a 440 Hz voice for the first 3 s; an applicant who
    joins at 2 s with a camera, and an 880 Hz voice from 4 to 5 s."""
    return record(directory, recording_id, started_at=started_at, duration=6.0, participants=[
        {"id": "s-tax01", "role": "staff", "name": "王小明", "join": 0.0,
         "video": (0.0, 6.0), "audio": (0.0, 3.0, 440.0), "shade": 60},
        {"id": "a-1", "role": "applicant", "name": "李群众", "join": 2.0,
         "video": (2.0, 6.0), "audio": (4.0, 5.0, 880.0), "shade": 150},
    ])
