"""Recording cost per packet: the room recorder's remux (recordings/recorder.py TrackRecorder,
packets written as they are, nothing decoded) against aiortc's MediaRecorder (what an aiortc
server records with: the receiver decodes every packet, MediaRecorder re-encodes it to VP8/Opus
and muxes), on the same synthetic stream, side by side in one run.

The input is made once: 640x480 @ 30 fps of a panning texture (bench/cpu_relay.py's harder
picture) encoded to VP8 with libvpx (realtime, ~1 Mbit/s, keyframe every 3 s, like a WebRTC
camera) and a 440 Hz tone encoded to Opus in 20 ms packets. Each recorder then records the same
packets into WebM files in a temporary directory, one file per track (as the room recorder
does; MediaRecorder too, one instance per track, since with both in one file it drops video).

CPU: time.process_time() (all threads of this process) around the writes and the closing of the
files; for MediaRecorder around its whole run, including aiortc's own decoders (aiortc.codecs
Vp8Decoder/OpusDecoder, the receiver's decoding, which a remux skips) feeding it. Figures are
µs of CPU per input packet; best of ``--repeats`` runs.

The composite export (recordings/export.py) is measured in the same run on a synthetic
recording of fixed length: 3 participants, each the same 640x480 @ 30 fps VP8 stream and Opus
tone, written by TrackRecorder as the room would, exported to one 1280x720 @ 15 fps H.264 + AAC
MP4. ``export_x_realtime`` is the recording's duration over the export's wall time (above 1:
faster than real time); its CPU is process_time() around it (the worker thread plus x264's).

    python -m bench.recording [--seconds 10] [--repeats 3] [--export-seconds 60]
                              [--export-repeats 1] [--export-only]
                                                         → bench/results/recording.json
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import math
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.codecs.opus import OpusDecoder
from aiortc.codecs.vpx import Vp8Decoder
from aiortc.contrib.media import MediaRecorder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from bench.common import ROOT, merge_results
from recordings.export import FPS as EXPORT_FPS
from recordings.export import HEIGHT as EXPORT_HEIGHT
from recordings.export import WIDTH as EXPORT_WIDTH
from recordings.export import export_recording
from recordings.recorder import TrackRecorder

RESULTS = ROOT / "bench" / "results" / "recording.json"
WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)
AUDIO_SAMPLES = 960  # 20 ms


# --- input, made once -----------------------------------------------------------------------

def encode_texture(seconds: float, *, bit_rate: int, redrawn_rows: int = 0,
                   seed: int = 1) -> list[av.Packet]:
    """VP8 640x480 @ 30 fps as libvpx encodes it (realtime, keyframe every 3 s): random 8x8
    blocks panning 4 px a frame, and ``redrawn_rows`` of the 60 rows of blocks drawn afresh every
    frame (more like a camera than motion alone). The encoder's packets, as they come."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = WIDTH, HEIGHT
    encoder.pix_fmt = "yuv420p"
    encoder.framerate = fractions.Fraction(FPS)
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.bit_rate = bit_rate
    encoder.gop_size = 3 * FPS
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = random.Random(seed)
    span = WIDTH * 2

    def block_row() -> list[bytes]:
        row = b"".join(bytes([rng.randrange(30, 226)]) * 8 for _ in range(span // 8))
        return [row + row] * 8  # doubled: any window of WIDTH is contiguous

    rows = [line for _ in range(HEIGHT // 8) for line in block_row()]
    packets: list[av.Packet] = []
    for n in range(int(seconds * FPS)):
        for _ in range(redrawn_rows):
            at = rng.randrange(HEIGHT // 8) * 8
            rows[at:at + 8] = block_row()
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = frame.planes[0]
        x = (n * 4) % span
        pad = b"\x00" * (luma.line_size - WIDTH)
        luma.update(b"".join(r[x:x + WIDTH] + pad for r in rows))
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * plane.buffer_size)
        frame.pts = n
        frame.time_base = encoder.time_base
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    return packets


def encode_video(seconds: float) -> list[av.Packet]:
    """The recording benches' camera: the panning texture at about 1 Mbit/s, stamped on the
    90 kHz RTP clock as the receiver hands it to the recorder."""
    return [_packet(bytes(p), (p.pts or 0) * 3000, VIDEO_TB, p.is_keyframe)
            for p in encode_texture(seconds, bit_rate=1_000_000)]


def encode_audio(seconds: float) -> list[av.Packet]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.bit_rate = 64000
    packets: list[av.Packet] = []
    tone = [int(8000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(48000)]
    for n in range(int(seconds * 50)):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_SAMPLES)
        start = (n * AUDIO_SAMPLES) % 48000
        samples = tone[start:start + AUDIO_SAMPLES]
        frame.planes[0].update(b"".join(v.to_bytes(2, "little", signed=True) * 2
                                        for v in samples))
        frame.pts = n * AUDIO_SAMPLES
        frame.sample_rate = 48000
        frame.time_base = AUDIO_TB
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    return [_packet(bytes(p), i * AUDIO_SAMPLES, AUDIO_TB, True) for i, p in enumerate(packets)]


def _packet(data: bytes, pts: int, time_base: fractions.Fraction, key: bool) -> av.Packet:
    packet = av.Packet(data)
    packet.pts = pts
    packet.dts = pts
    packet.time_base = time_base
    packet.is_keyframe = key
    return packet


# --- the two recorders --------------------------------------------------------------------------

def remux(directory: Path, kind: str, packets: list[av.Packet]) -> float:
    """CPU seconds for TrackRecorder to write ``packets`` and close its file."""
    recorder = TrackRecorder(directory, track_id=f"remux-{kind}", participant_id="bench",
                             kind=kind, codec="vp8" if kind == "video" else "opus",
                             room_id="bench", clock=time.time)
    start = time.process_time()
    for packet in packets:
        recorder.write(packet)
    recorder.close()
    cpu = time.process_time() - start
    assert recorder.packets == len(packets), (recorder.packets, len(packets))
    return cpu


class DecodingTrack(MediaStreamTrack):
    """What an aiortc receiver hands MediaRecorder: the packets, decoded by aiortc's own
    decoders (done here, inside the timed run)."""

    def __init__(self, kind: str, packets: list[av.Packet]) -> None:
        super().__init__()
        self.kind = kind
        self._decoder = Vp8Decoder() if kind == "video" else OpusDecoder()
        self._packets = iter(packets)
        self._ready: list[Any] = []
        self.done = asyncio.Event()

    async def recv(self) -> Any:
        while not self._ready:
            packet = next(self._packets, None)
            if packet is None:
                self.done.set()
                raise MediaStreamError
            # RTP timestamps: 90 kHz for video, 48 kHz for Opus, as the packets' pts.
            self._ready.extend(self._decoder.decode(JitterFrame(bytes(packet), packet.pts or 0)))
        return self._ready.pop(0)


async def media_recorder(directory: Path, kind: str, packets: list[av.Packet]) -> float:
    """CPU seconds for aiortc's MediaRecorder to record ``packets`` (decoded as aiortc's
    receiver would) and close its file."""
    track = DecodingTrack(kind, packets)
    recorder = MediaRecorder(str(directory / f"mediarecorder-{kind}.webm"), format="webm")
    recorder.addTrack(track)
    start = time.process_time()
    await recorder.start()
    await track.done.wait()
    await asyncio.sleep(0)
    await recorder.stop()
    return time.process_time() - start


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams[0]))


async def measure(seconds: float, repeats: int) -> dict[str, Any]:
    started = time.monotonic()
    video = encode_video(seconds)
    audio = encode_audio(seconds)
    inputs = {"video": video, "audio": audio}
    best: dict[str, dict[str, float]] = {"remux": {}, "mediarecorder": {}}
    with tempfile.TemporaryDirectory(prefix="yunzhen-bench-recording-") as tmp:
        directory = Path(tmp)
        frames: dict[str, int] = {}
        for _ in range(repeats):
            for kind, packets in inputs.items():
                cpu = remux(directory, kind, packets)
                best["remux"][kind] = min(best["remux"].get(kind, math.inf), cpu)
                cpu = await media_recorder(directory, kind, packets)
                best["mediarecorder"][kind] = min(best["mediarecorder"].get(kind, math.inf), cpu)
        for kind in inputs:
            frames[f"remux_{kind}"] = _frames(directory / f"remux-{kind}.webm")
            frames[f"mediarecorder_{kind}"] = _frames(directory / f"mediarecorder-{kind}.webm")
        sizes = {p.stem: p.stat().st_size for p in directory.glob("*.webm")}

    def us(cpu: float, n: int) -> float:
        return round(cpu / n * 1e6, 1)

    total = len(video) + len(audio)
    remux_total = sum(best["remux"].values())
    mr_total = sum(best["mediarecorder"].values())
    return {
        "remux_us_per_packet": us(remux_total, total),
        "mediarecorder_us_per_packet": us(mr_total, total),
        "ratio": round(mr_total / remux_total, 1) if remux_total else None,
        "per_kind_us_per_packet": {
            f"{name}_{kind}": us(best[name][kind], len(inputs[kind]))
            for name in ("remux", "mediarecorder") for kind in ("video", "audio")},
        "cpu_pct_of_a_core_per_2party_call": {
            # Two participants, each one video and one audio track, in real time.
            name: round(200 * sum(best[name].values()) / seconds, 2)
            for name in ("remux", "mediarecorder")},
        "input": {"seconds": seconds, "video_packets": len(video), "audio_packets": len(audio),
                  "video": f"VP8 {WIDTH}x{HEIGHT} @ {FPS} fps, libvpx realtime ~1 Mbit/s, "
                           "panning texture, keyframe every 3 s",
                  "audio": "Opus 48 kHz stereo 20 ms, 64 kbit/s, 440 Hz tone",
                  "video_bytes": sum(p.size for p in video),
                  "audio_bytes": sum(p.size for p in audio)},
        "decoded_frames_in_outputs": frames,
        "output_bytes": sizes,
        "repeats": repeats,
        "method": ("time.process_time() around each recorder's writes and close, best of "
                   "repeats; MediaRecorder's run includes aiortc's Vp8Decoder/OpusDecoder "
                   "(the receive-side decoding it needs) and its libvpx/libopus re-encoding "
                   "with PyAV's default settings, as aiortc ships it"),
        "wall_s": round(time.monotonic() - started, 1),
    }


# --- composite export ---------------------------------------------------------------------------

EXPORT_PARTICIPANTS = 3


def synthetic_recording(directory: Path, seconds: float,
                        participants: int = EXPORT_PARTICIPANTS) -> dict[str, Any]:
    """A recording directory as the room leaves it: per participant a VP8 and an Opus track
    remuxed by TrackRecorder, and the timeline that places them."""
    video, audio = encode_video(seconds), encode_audio(seconds)
    start = 1_772_416_800.0  # 2026-03-02 10:00 Asia/Shanghai
    people, tracks = [], []
    for n in range(participants):
        pid = "a-1" if n == 0 else f"s-staff{n:02d}"
        people.append({"participant_id": pid, "role": "applicant" if n == 0 else "staff",
                       "name": "" if n == 0 else f"坐席{n:02d}", "department": "tax",
                       "joined_at": start, "left_at": start + seconds})
        for kind, packets in (("video", video), ("audio", audio)):
            recorder = TrackRecorder(directory, track_id=f"{pid}-{kind}-1", participant_id=pid,
                                     kind=kind, codec="vp8" if kind == "video" else "opus",
                                     room_id="bench", clock=lambda: start)
            for packet in packets:
                recorder.write(packet)
            recorder.close()
            entry = recorder.entry()
            assert entry is not None
            tracks.append(entry.to_dict())
    return {"recording_id": "bench", "started_at": start, "ended_at": start + seconds,
            "duration": seconds, "complete": True, "participants": people, "tracks": tracks,
            "events": []}


def measure_export(seconds: float, repeats: int = 1) -> dict[str, Any]:
    """The export of one synthetic recording, best (shortest wall time) of ``repeats``."""
    with tempfile.TemporaryDirectory(prefix="yunzhen-bench-export-") as tmp:
        directory = Path(tmp) / "bench"
        directory.mkdir()
        timeline = synthetic_recording(directory, seconds)
        out = Path(tmp) / "export.mp4"
        wall = cpu = load = math.inf
        for _ in range(repeats):
            before = os.getloadavg()[0]
            t0, c0 = time.monotonic(), time.process_time()
            result = export_recording(directory, timeline, out)
            took = time.monotonic() - t0
            if took < wall:
                wall, cpu, load = took, time.process_time() - c0, before
        with av.open(str(out)) as container:
            frames = sum(1 for _ in container.decode(video=0))
    return {
        "export_x_realtime": round(seconds / wall, 2),
        "export": {
            "recording_s": seconds, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "cpu_pct_of_a_core": round(100 * cpu / wall, 1),
            "cpu_s_per_recording_s": round(cpu / seconds, 3),
            # Recording seconds per CPU second: the speed with a core to itself.
            "x_realtime_per_cpu_s": round(seconds / cpu, 2),
            # Other work on the machine slows the wall-clock figure: the 1-minute load before.
            "load_avg_1m_before": round(load, 2),
            "output_bytes": result.size, "output_frames": frames,
            "input": f"{EXPORT_PARTICIPANTS} participants x (VP8 {WIDTH}x{HEIGHT} @ {FPS} fps "
                     "+ Opus), all present throughout",
            "output": f"H.264 {EXPORT_WIDTH}x{EXPORT_HEIGHT} @ {EXPORT_FPS} fps (libx264 "
                      "veryfast, crf 23, 2 threads) + AAC mono 96 kbit/s, 2x2 grid, labels "
                      "and clock",
            "repeats": repeats,
            "method": "time.monotonic() and time.process_time() (all threads) around "
                      "export_recording, the run with the shortest wall time",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--export-seconds", type=float, default=60.0,
                        help="length of the recording the export run makes (0: skip it)")
    parser.add_argument("--export-repeats", type=int, default=1)
    parser.add_argument("--export-only", action="store_true",
                        help="only the export run (the remux figures in the file are kept)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    figures = {} if args.export_only else asyncio.run(measure(args.seconds, args.repeats))
    if args.export_seconds > 0:
        figures.update(measure_export(args.export_seconds, args.export_repeats))
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if not args.no_write:
        merge_results("recording", figures, RESULTS)
        print(f"==> {RESULTS}")


if __name__ == "__main__":
    main()
