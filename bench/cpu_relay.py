"""Server CPU for one 2-party call: (a) the real server's encoded pass-through, (b) a transcoding
baseline (bench/transcode_server.py: ordinary aiortc + MediaRelay, every subscriber re-encodes).

Both run in this one bench run, one after the other, with the same two participants: two
rooms.client.RoomClient peers in this process, each publishing 640x480 @ 30 fps synthetic video and
a 48 kHz tone, each decoding what it receives. The server's CPU time (utime + stime of its process,
all threads, from /proc/<pid>/stat) is read over a steady window that starts once both sides have
decoded frames and a short settle has passed. % is of one core.

    python -m bench.cpu_relay [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ServerProcess,
    announce_loopback,
    cpu_seconds,
    merge_results,
    open_room,
)
from rooms.client import RoomClient, SyntheticVideoTrack


class PanningTextureTrack(SyntheticVideoTrack):
    """A harder camera than rooms.client's moving bar on grey: a texture of random 8x8 blocks
    panning 4 px a frame, so every macroblock moves and carries detail (no sensor noise)."""

    def __init__(self, width: int, height: int, seed: int = 1) -> None:
        super().__init__(width, height)
        rng = random.Random(seed)
        span = width * 2
        self._rows: list[bytes] = []
        for _ in range(0, height, 8):
            row = b"".join(bytes([rng.randrange(30, 226)]) * 8 for _ in range(span // 8))
            self._rows.extend([row + row] * 8)  # doubled: any window of `width` is contiguous
        self._span = span

    def luma(self, line_size: int) -> bytes:
        x = (self.frames * 4) % self._span
        pad = b"\x00" * (line_size - self.width)
        return b"".join(r[x:x + self.width] + pad for r in self._rows[:self.height])


class TexturedRoomClient(RoomClient):
    """rooms.client.RoomClient publishing PanningTextureTrack instead of the moving bar."""

    def __init__(self, *, name: str, video: bool, audio: bool,
                 headers: dict[str, str] | None, width: int = 640, height: int = 480) -> None:
        super().__init__(name=name, video=video, audio=audio, headers=headers, width=width,
                         height=height)
        if self.peer.video is not None:
            self.peer.video.stop()
            self.peer.video = PanningTextureTrack(width, height)


def _system_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    line = Path("/proc/stat").read_text().splitlines()[0].split()
    values = [int(v) for v in line[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def _received(client: RoomClient) -> tuple[int, int]:
    """(video frames decoded, audio frames or packets) this client received from the others."""
    stats = client.stats().values()
    return (sum(s["video_frames"] for s in stats),
            sum(s["audio_frames"] + s["audio_packets"] for s in stats))


def _snapshot(server: ServerProcess, clients: list[RoomClient]) -> dict[str, Any]:
    busy, total = _system_busy_seconds()
    return {"t": time.monotonic(), "server": cpu_seconds(server.pid),
            "server_children": server.children_cpu_seconds(),
            "bench": cpu_seconds(os.getpid()), "busy": busy, "total": total,
            "received": [_received(c) for c in clients]}


async def measure(mode: str, seconds: float, width: int, height: int,
                  settle: float, content: str = "pattern") -> dict[str, Any]:
    if mode == "passthrough":
        server = ServerProcess(["server", "serve", "--demo"], name="passthrough")
    else:
        server = ServerProcess(["bench.transcode_server"], name="transcode")
    await server.start()
    sockets: list[Any] = []
    clients: list[RoomClient] = []
    try:
        if mode == "passthrough":
            applicant_room, staff_room, sockets = await open_room(server.url)
        else:
            applicant_room = staff_room = {"room_id": "bench", "token": "any"}
        client_class = TexturedRoomClient if content == "texture" else RoomClient
        for name, room in (("applicant", applicant_room), ("staff", staff_room)):
            clients.append(await client_class.connect(server.url, room["room_id"], room["token"],
                                                    name=name, width=width, height=height))
        joined = time.monotonic()
        for client in clients:
            await client.wait_for_video(1, timeout=20)
        first_frames_s = time.monotonic() - joined
        await asyncio.sleep(settle)
        before = _snapshot(server, clients)
        await asyncio.sleep(seconds)
        after = _snapshot(server, clients)
        for client in clients:
            if client.peer.answer_errors:
                raise RuntimeError(f"{client.name}: {client.peer.answer_errors}")
        await clients[1].hangup()
    except BaseException:
        print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        for client in clients:
            await client.close()
        for sock in sockets:
            await sock.close()
        await server.stop()

    wall = after["t"] - before["t"]
    cores = os.cpu_count() or 1

    def pct(key: str) -> float:
        return round(100 * (after[key] - before[key]) / wall, 1)

    machine_busy = 100 * (after["busy"] - before["busy"]) / (after["total"] - before["total"])
    fps = {}
    for client, (v0, a0), (v1, a1) in zip(clients, before["received"], after["received"],
                                          strict=True):
        fps[client.name] = {"video_fps": round((v1 - v0) / wall, 1),
                            "audio_frames_per_s": round((a1 - a0) / wall, 1)}
    return {
        "server_cpu_pct": pct("server"),
        "server_children_cpu_pct": pct("server_children"),
        "bench_clients_cpu_pct": pct("bench"),
        "machine_busy_pct": round(machine_busy * cores, 1),
        "window_s": round(wall, 2),
        "first_frames_after_join_s": round(first_frames_s, 2),
        "received": fps,
    }


async def run(seconds: float, width: int, height: int, settle: float,
              textured: bool) -> dict[str, Any]:
    announce_loopback()
    runs: dict[str, dict[str, Any]] = {}
    for content in ("pattern", "texture") if textured else ("pattern",):
        for mode in ("passthrough", "transcode"):
            result = await measure(mode, seconds, width, height, settle, content)
            runs[f"{mode}_{content}"] = result
            print(f"{mode} ({content}): {result}", flush=True)
    figures = _figures(runs["passthrough_pattern"], runs["transcode_pattern"], "")
    if textured:
        figures.update(_figures(runs["passthrough_texture"], runs["transcode_texture"],
                                "_textured"))
    figures["cpu_relay_detail"] = {
        "video": f"{width}x{height} @ 30 fps VP8 + 48 kHz mono Opus, both directions",
        "content": {
            "pattern": "rooms.client.PatternVideoTrack: a bright bar moving on flat grey "
                       "(headline figures; cheap to encode)",
            "texture": "bench.cpu_relay.PanningTextureTrack: random 8x8 blocks panning 4 px a "
                       "frame (the *_textured figures; closer to a camera's encoding cost)",
        },
        "window_s": seconds,
        "settle_s": settle,
        "runs": runs,
        "recording": ("pass-through: the real server remuxes all 4 tracks to disk as usual; "
                      "transcode: records nothing"),
        "cpu_unit": "% of one core; server_cpu_pct is the server process only (its private "
                    "redis-server is server_children_cpu_pct); bench_clients_cpu_pct is this "
                    "process (both participants encoding and decoding); machine_busy_pct is "
                    "every process on the machine, other users included",
    }
    return figures


def _figures(passthrough: dict[str, Any], transcode: dict[str, Any],
             suffix: str) -> dict[str, Any]:
    p = passthrough["server_cpu_pct"]
    t = transcode["server_cpu_pct"]
    return {
        f"cpu_passthrough_2p{suffix}_pct": p,
        f"cpu_transcode_2p{suffix}_pct": t,
        f"cpu_ratio_transcode_vs_passthrough_2p{suffix}": round(t / p, 2) if p else None,
        f"cpu_fps_passthrough_2p{suffix}": {k: v["video_fps"]
                                            for k, v in passthrough["received"].items()},
        f"cpu_fps_transcode_2p{suffix}": {k: v["video_fps"]
                                          for k, v in transcode["received"].items()},
    }


def note(figures: dict[str, Any]) -> str:
    text = (f"2-person call, moving bar: transcoding {figures['cpu_transcode_2p_pct']} % vs "
            f"pass-through {figures['cpu_passthrough_2p_pct']} % of one core "
            f"(x{figures['cpu_ratio_transcode_vs_passthrough_2p']}), transcoded fps "
            f"{figures['cpu_fps_transcode_2p']}. ")
    if "cpu_ratio_transcode_vs_passthrough_2p_textured" in figures:
        text += (f"Panning texture: {figures['cpu_transcode_2p_textured_pct']} % vs "
                 f"{figures['cpu_passthrough_2p_textured_pct']} % "
                 f"(x{figures['cpu_ratio_transcode_vs_passthrough_2p_textured']}), transcoded "
                 f"fps {figures['cpu_fps_transcode_2p_textured']}. ")
    text += ("ARCHITECTURE.md: one 3-person call 118 % vs 23.5 % (x5.0). A 3-person call "
             "decodes 3 and encodes 6 video streams when transcoding (2 and 2 here) and "
             "forwards 12 tracks instead of 4 when passing through; the transcoding cost "
             "depends strongly on how hard the picture is to encode, the pass-through cost "
             "only on packets.")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_relay")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--pattern-only", action="store_true",
                        help="skip the second pair of runs with the textured video")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.seconds, args.width, args.height, args.settle,
                              not args.pattern_only))
    figures["cpu_note"] = note(figures)
    merge_results("cpu_relay", figures)
    print({k: v for k, v in figures.items() if k != "cpu_relay_detail"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
