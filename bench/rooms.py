"""Server CPU per 3-person and per 6-person room, pass-through (the real server, recording every
track as it always does) against the transcoding baseline (bench/transcode_server.py: aiortc +
MediaRelay, every subscriber re-encodes), with the same input; rooms per core; server CPU per
forwarded packet; the server's event-loop lag; a late joiner's first frames.

The clients share the machine with the server (2 cores here), so they are made cheap without
being dishonest:

- **Publishers send pre-encoded media.** A few seconds of a camera-like picture (random 8x8
  blocks panning 4 px a frame, bench.recording's input) are encoded once with libvpx (640x480 @ 30
  fps, realtime, ~1 Mbit/s, keyframe every 3 s) and one second of a tone with Opus (20 ms);
  each publisher loops those packets at 30 fps / 50 packets a second with continuous timestamps.
  aiortc's RTCRtpSender packetizes an ``av.Packet`` from a track without encoding it. A keyframe
  request (PLI/FIR from the server) makes the publisher jump to the loop's next keyframe at
  once, as a browser encodes one on request.
- **Subscribers count, they do not decode**, except one subscriber per room (its first client)
  that decodes every video frame it receives with libvpx (in worker threads), to show that what
  is forwarded decodes at full rate. rooms.passthrough is installed in the client processes, so
  received tracks yield one ``av.Packet`` per reassembled frame: a counted frame is a complete
  frame out of aiortc's jitter buffer.
- Runs with several rooms put their participants in ``--procs`` (2) worker processes: one event
  loop cannot take in several rooms' packets (it fell ~50 MB behind in its sockets with 4 rooms).

Each configuration runs on its own fresh server. Rooms on the real server come from the ticket
flow (kiosk ticket → a staff member accepts, bench.common.open_room; one bench staff account per
room, written into the server's Redis with a session); the third to sixth participants get room
tokens written with ``RoomDirectory.create_token`` (role ``guide``). On the transcoding server, any
token joins ``bench-<n>``.

Measured over a steady window (``--seconds``) after every participant has frames from every
other and ``--settle`` seconds: the server process's utime + stime (/proc, all threads) as % of one
core; the RTP packets every subscriber received (``getStats`` inbound-rtp ``packetsReceived``:
what the server forwarded) and every publisher sent; frames received per (subscriber, publisher)
pair and decoded by the decoding subscribers; the server's event-loop lag from its probe
(server/looplag.py, switched on with ``YUNZHEN_LOOP_LAG_PROBE``).

The real server runs on the frame path (``pt``: media.forwarding = frame) and on the RTP path
(``rt``: media.forwarding = rtp) in the same run: ``us_per_packet_rtp``, ``rooms_per_core_3p_rtp``
and ``late_join_first_frame_ms_rtp`` stand next to the frame path's figures.

    python -m bench.rooms [--seconds 15] [--plan pt3:1,pt3:5,rt3:1,rt3:5,tc3:1,pt6:1,tc6:1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import av
import redis.asyncio as aioredis
import socketio
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from bench.common import ROOT, ServerProcess, cpu_seconds, merge_results, open_room, percentile
from bench.dispatch import machine_busy, redis_url_from_log
from bench.recording import encode_audio, encode_texture
from rooms import passthrough
from rooms.client import NAMESPACE, RemoteStats, RoomClient, RoomPeer, SendAnswer
from server import looplag
from signaling.accounts import AccountPolicy, Accounts, hash_password
from signaling.client import SignalingClient
from signaling.room_directory import RoomDirectory
from signaling.sessions import Sessions
from signaling.store import Store

RESULTS = ROOT / "bench" / "results" / "rooms.json"
SCALE_RESULTS = ROOT / "bench" / "results" / "scale.json"
WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_TB = Fraction(1, 90000)
AUDIO_TB = Fraction(1, 48000)
# Two concurrent 6-person rooms are left out: the bench process cannot take in the ~11,000
# packets a second the server forwards to their 12 participants (its sockets overflow).
DEFAULT_PLAN = "pt3:1,pt3:5,rt3:1,rt3:5,tc3:1,pt6:1,tc6:1"
FULL_RATE_FPS = 29.0
CLIENT_RCVBUF = 4 * 1024 * 1024
# The real server's two forwarding paths (media.forwarding), by bench mode.
FORWARDING = {"passthrough": "frame", "rtp": "rtp"}
FORWARDING_ENV = "YUNZHEN_MEDIA_FORWARDING"


# --- pre-encoded publishers ----------------------------------------------------------------------

def encode_camera(seconds: float, seed: int = 1) -> list[av.Packet]:
    """A camera-like VP8 stream at about 1 Mbit/s, what a browser sends at 640x480 on a LAN:
    random 8x8 blocks panning 4 px a frame, and five of the 60 rows of blocks drawn afresh every
    frame (motion alone compresses to ~0.5 Mbit/s). libvpx realtime, keyframe every 3 s."""
    return encode_texture(seconds, bit_rate=1_200_000, redrawn_rows=5, seed=seed)


@dataclass
class Precoded:
    """The media every publisher loops: VP8 frames (with the keyframes' indexes) and Opus
    packets, as bytes."""

    video: list[bytes]
    keyframes: list[int]
    audio: list[bytes]

    @classmethod
    def make(cls, seconds: float) -> Precoded:
        video = encode_camera(seconds)
        audio = encode_audio(1.0)
        keyframes = [i for i, p in enumerate(video) if p.is_keyframe]
        assert keyframes and keyframes[0] == 0, keyframes
        return cls([bytes(p) for p in video], keyframes, [bytes(p) for p in audio])

    @property
    def video_bitrate(self) -> float:
        return sum(len(p) for p in self.video) * 8 * FPS / len(self.video)


class _LoopTrack(MediaStreamTrack):
    """Loops encoded payloads in real time: payload n goes out at start + n * period with
    timestamp n * ticks, whatever position of the loop it comes from."""

    def __init__(self, payloads: list[bytes], period: float, ticks: int,
                 time_base: Fraction) -> None:
        super().__init__()
        self._payloads = payloads
        self._period = period
        self._ticks = ticks
        self._time_base = time_base
        self._start: float | None = None
        self._n = 0
        self._pos = 0

    def _advance(self) -> None:
        self._pos = (self._pos + 1) % len(self._payloads)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            delay = self._start + self._n * self._period - now
            if delay > 0:
                await asyncio.sleep(delay)
        packet = av.Packet(self._payloads[self._pos])
        packet.pts = packet.dts = self._n * self._ticks
        packet.time_base = self._time_base
        self._n += 1
        self._advance()
        return packet


class PrecodedVideoTrack(_LoopTrack):
    kind = "video"

    def __init__(self, media: Precoded) -> None:
        super().__init__(media.video, 1 / FPS, 90000 // FPS, VIDEO_TB)
        self._keyframes = media.keyframes
        self._want_keyframe = False
        self.keyframe_requests = 0

    @property
    def frames_sent(self) -> int:
        return self._n

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._want_keyframe = True

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self._want_keyframe:
            # The next frame sent is the loop's next keyframe: decodable on its own, at once.
            self._want_keyframe = False
            self._pos = next((k for k in self._keyframes if k >= self._pos), self._keyframes[0])
        return await super().recv()


class PrecodedAudioTrack(_LoopTrack):
    kind = "audio"

    def __init__(self, media: Precoded) -> None:
        super().__init__(media.audio, 0.020, 960, AUDIO_TB)


# --- counting subscribers ---------------------------------------------------------------------

class BenchPeer(RoomPeer):
    """RoomPeer publishing pre-encoded media, counting what it receives, decoding video only when
    ``decode``."""

    def __init__(self, send_answer: SendAnswer, *, name: str, media: Precoded | None,
                 decode: bool) -> None:
        super().__init__(send_answer, name=name, video=False, audio=False)
        self.decode = decode
        self.rcvbuf = 0  # the receive buffer the kernel granted (it reports twice the request)
        if media is not None:
            self.video = PrecodedVideoTrack(media)  # type: ignore[assignment]
            self.audio = PrecodedAudioTrack(media)  # type: ignore[assignment]

    async def _on_offer(self, payload: dict[str, Any]) -> None:
        await super()._on_offer(payload)
        self._enlarge_receive_buffers()
        video = self.video
        if isinstance(video, PrecodedVideoTrack):
            for transceiver in self.pc.getTransceivers():
                if transceiver.sender.track is video:
                    passthrough.relay_keyframe_requests(transceiver.sender,
                                                        video.request_keyframe)

    def _enlarge_receive_buffers(self) -> None:
        """The participants stand in for browsers on other machines, with their own kernels: a
        bench process briefly descheduled on a busy machine must not lose what the server
        forwarded because its sockets' 208 KiB (the default) filled up. The server's sockets keep
        the default; drops on both sides are counted (udp_drops_*)."""
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.receiver.transport
            connection = getattr(getattr(dtls, "transport", None), "_connection", None)
            for protocol in getattr(connection, "_protocols", []):
                sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
                if sock is None:
                    continue
                # Capped by net.core.rmem_max; what was granted goes into the results.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
                self.rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    async def _consume(self, track: MediaStreamTrack, stats: RemoteStats) -> None:
        decoder = (av.VideoCodecContext.create("vp8", "r")
                   if self.decode and track.kind == "video" else None)
        try:
            while True:
                data = await track.recv()
                if track.kind == "audio":
                    stats.audio_packets += 1
                    continue
                stats.video_packets += 1
                if decoder is None:
                    frames = 1
                else:
                    try:
                        # In a worker thread: PyAV decodes without the GIL, so the event loop
                        # (every participant's sockets) keeps running meanwhile.
                        packet = cast(av.Packet, data)
                        frames = len(await asyncio.to_thread(decoder.decode, packet))
                    except av.FFmpegError:
                        stats.video_decode_errors += 1
                        continue
                if frames:
                    if stats.first_video_frame_at is None:
                        stats.first_video_frame_at = time.monotonic()
                    stats.video_frames += frames
                    self._changed.set()
        except MediaStreamError:
            pass

    async def rtp_counts(self) -> tuple[int, int]:
        """(RTP packets received, RTP packets sent) over the peer connection so far."""
        report = await self.pc.getStats()
        received = sum(getattr(s, "packetsReceived", 0) for s in report.values()
                       if s.type == "inbound-rtp")
        sent = sum(getattr(s, "packetsSent", 0) for s in report.values()
                   if s.type == "outbound-rtp")
        return received, sent


class BenchClient(RoomClient):
    """A RoomClient around a BenchPeer."""

    def __init__(self, *, name: str, media: Precoded | None, decode: bool) -> None:
        self.name = name
        self.participant_id: str | None = None
        self.role: str | None = None
        self.ice_servers: list[dict[str, Any]] = []
        self._headers: dict[str, str] = {}
        self.sio = socketio.AsyncClient(reconnection=False)
        self.peer: BenchPeer = BenchPeer(self._send_answer, name=name, media=media,
                                         decode=decode)
        for event in ("room:offer", "room:participants", "room:ended"):
            self.sio.on(event, self._handler(self.peer, event), namespace=NAMESPACE)

    @classmethod
    async def join(cls, base_url: str, room: dict[str, str], *, name: str,
                   media: Precoded | None, decode: bool, timeout: float = 20.0) -> BenchClient:
        client = cls(name=name, media=media, decode=decode)
        try:
            # The room's base: the path prefix of its worker behind nginx ("" for one process).
            path = f"{room.get('base', '').strip('/')}/socket.io".lstrip("/")
            await client.sio.connect(base_url, namespaces=[NAMESPACE], transports=["websocket"],
                                     wait_timeout=timeout, socketio_path=path)
            answer = await client._call("room:join", {"room_id": room["room_id"],
                                                      "token": room["token"]}, timeout)
        except BaseException:
            await client.close()
            raise
        client.participant_id = answer["participant_id"]
        client.role = answer["role"]
        client.peer.participants = answer.get("participants", [])
        return client


# --- rooms on a server ---------------------------------------------------------------------------

@dataclass
class BenchRoom:
    room_id: str
    clients: list[BenchClient]
    sockets: list[SignalingClient]


class ClientWorker:
    """A child process running some rooms' participants, driven over a pipe: ``join``,
    ``wait`` (every participant has video from every other), ``counts``, ``close``."""

    def __init__(self, url: str, rooms: list[tuple[int, list[dict[str, str]]]],
                 media: Precoded, size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._lock = asyncio.Lock()
        self.process = context.Process(target=_worker_main, args=(child, url, rooms, media, size),
                                       name="rooms-bench-clients", daemon=True)
        self.process.start()
        child.close()

    async def call(self, command: str, timeout: float = 30.0) -> Any:
        async with self._lock:
            self._conn.send((command, timeout))
            if not await asyncio.to_thread(self._conn.poll, timeout + 30):
                raise TimeoutError(f"client worker: no answer to {command}")
            status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"client worker, {command}: {value}")
        return value

    async def close(self) -> None:
        if self.process.is_alive():
            try:
                await self.call("close")
            except (OSError, EOFError, RuntimeError, TimeoutError):
                pass
            await asyncio.to_thread(self.process.join, 15)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join)
        self._conn.close()


def _worker_main(conn: Connection, url: str, rooms: list[tuple[int, list[dict[str, str]]]],
                 media: Precoded, size: int) -> None:
    asyncio.run(_worker(conn, url, rooms, media, size))


async def _worker(conn: Connection, url: str, specs: list[tuple[int, list[dict[str, str]]]],
                  media: Precoded, size: int) -> None:
    passthrough.install(["127.0.0.1"])
    rooms: list[BenchRoom] = []
    try:
        while True:
            command, timeout = await asyncio.to_thread(conn.recv)
            try:
                value: Any = None
                if command == "join":
                    for n, tokens in specs:
                        room = BenchRoom(tokens[0]["room_id"], [], [])
                        rooms.append(room)
                        for j, token in enumerate(tokens):
                            room.clients.append(await BenchClient.join(
                                url, token, name=f"r{n}p{j}", media=media, decode=j == 0))
                elif command == "wait":
                    await wait_all_see_all(rooms, size, timeout)
                elif command == "counts":
                    value = await client_counts(rooms)
                    errors = [f"{c.name}: {c.peer.answer_errors}" for room in rooms
                              for c in room.clients if c.peer.answer_errors]
                    if errors:
                        raise RuntimeError("; ".join(errors))
                elif command == "close":
                    conn.send(("ok", None))
                    return
                conn.send(("ok", value))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for room in rooms:
            for client in room.clients:
                await client.close()


class Setup:
    """One server (pass-through or transcoding) with its rooms; `env`: more of its environment
    (settings such as YUNZHEN_ADDRESS_FAILURES)."""

    def __init__(self, mode: str, lag_file: Path, env: dict[str, str] | None = None,
                 workers: int = 0) -> None:
        self.mode = mode
        env = {**(env or {}), looplag.ENV: str(lag_file)}
        # The real server, on the frame path ("passthrough") or the RTP path ("rtp").
        self.real = mode in FORWARDING
        if self.real:
            env[FORWARDING_ENV] = FORWARDING[mode]
            # workers: `serve --workers N` behind nginx (server/workers.py), rooms placed by load.
            more = ["--workers", str(workers)] if workers else []
            self.server = ServerProcess(["server", "serve", "--demo", *more], name="rooms",
                                        env=env)
        else:
            self.server = ServerProcess(["bench.transcode_server"], name="rooms-transcode",
                                        env=env)
        self.rooms: list[BenchRoom] = []
        self.workers: list[ClientWorker] = []
        self.store: Store | None = None
        self._redis: Any = None
        self._cookies: list[str] = []

    async def start(self, count: int) -> None:
        await self.server.start()
        if not self.real:
            return
        self._redis = aioredis.from_url(redis_url_from_log(self.server), decode_responses=True)
        self.store = Store(self._redis)
        # One staff account per room, with a session (a login per room would only measure
        # scrypt); in the tax department, so each ticket rings the one staff member available.
        password_hash = hash_password("bench-unused-password")
        accounts = Accounts(self._redis, AccountPolicy())
        sessions = Sessions(self._redis, accounts, AccountPolicy())
        for n in range(count):
            username = f"roomsbench{n:02d}"
            await accounts.put(username, display_name=f"压测{n:02d}", role="staff",
                               departments=("tax",), password_hash=password_hash)
            user = await accounts.user(username)
            assert user is not None
            token = await sessions.create(user, "", "bench")
            self._cookies.append(f"yz_session={token}")

    async def tokens(self, n: int, size: int) -> tuple[str, list[dict[str, str]],
                                                       list[SignalingClient]]:
        """Room ``n``'s id, ``size`` room tokens, and the sockets that keep its call open."""
        if not self.real:
            room_id = f"bench-{n}"
            return room_id, [{"room_id": room_id, "token": "any"}] * size, []
        applicant, staff, sockets = await open_room(self.server.url, "tax",
                                                    cookie=self._cookies[n])
        room_id = applicant["room_id"]
        tokens = [applicant, staff]
        for k in range(size - 2):
            tokens.append({"room_id": room_id, "base": applicant.get("base", ""),
                           "token": await self.extra_token(room_id, f"g-bench{n}-{k}",
                                                           f"导服{k}")})
        return room_id, tokens, sockets

    async def extra_token(self, room_id: str, participant_id: str, name: str) -> str:
        if self.store is None:
            return "any"
        return await RoomDirectory(self.store).create_token(
            room_id, role="guide", participant_id=participant_id, name=name, department="",
            ticket_id="")

    async def open(self, count: int, size: int, media: Precoded, procs: int = 1) -> None:
        """Open ``count`` rooms of ``size``. With ``procs`` > 1 (and more than one room) the
        participants run in that many worker processes, rooms shared out among them (one event
        loop cannot keep up with several rooms' packets); otherwise in this process."""
        procs = min(procs, count)
        specs: list[list[tuple[int, list[dict[str, str]]]]] = [[] for _ in range(procs)]
        for n in range(count):
            room_id, tokens, sockets = await self.tokens(n, size)
            room = BenchRoom(room_id, [], sockets)
            self.rooms.append(room)
            if procs > 1:
                specs[n % procs].append((n, tokens))
                continue
            for j, token in enumerate(tokens):
                room.clients.append(await BenchClient.join(
                    self.server.url, token, name=f"r{n}p{j}", media=media, decode=j == 0))
        if procs > 1:
            self.workers = [ClientWorker(self.server.url, spec, media, size) for spec in specs]
            await asyncio.gather(*(w.call("join", 60.0) for w in self.workers))

    async def close(self) -> None:
        for worker in self.workers:
            await worker.close()
        for room in self.rooms:
            for client in room.clients:
                await client.close()
            for sock in room.sockets:
                await sock.close()
        if self._redis is not None:
            await self._redis.aclose()
        await self.server.stop()


def udp_state(pid: int) -> tuple[int, int]:
    """(datagrams the kernel dropped because a receive buffer was full, bytes waiting to be
    read) over a process's UDP sockets: the ``drops`` and ``rx_queue`` columns of /proc/net/udp
    for the socket inodes the process holds open. Bytes waiting at the end of a window mean the
    process fell behind: what it has not read yet is counted as not received."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    drops = queued = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 12 and fields[9] in inodes:
                drops += int(fields[12])
                queued += int(fields[4].split(":")[1], 16)
    return drops, queued


async def client_counts(rooms: list[BenchRoom]) -> dict[str, Any]:
    """What the participants of ``rooms`` (in this process) sent and received so far, and this
    process's CPU time and UDP state."""
    sent: dict[str | None, int] = {}
    for room in rooms:
        for client in room.clients:
            video = client.peer.video
            if isinstance(video, PrecodedVideoTrack):
                sent[client.participant_id] = video.frames_sent
    return {
        "rtp": [[await c.peer.rtp_counts() for c in room.clients] for room in rooms],
        "frames": [[{pid: (s.video_frames, s.audio_packets, s.video_decode_errors)
                     for pid, s in c.peer._remote.items()} for c in room.clients]
                   for room in rooms],
        "sent": sent,
        "cpu": cpu_seconds(os.getpid()),
        "udp": udp_state(os.getpid()),
        "rcvbuf": [c.peer.rcvbuf for room in rooms for c in room.clients],
    }


async def _snapshot(setup: Setup) -> dict[str, Any]:
    t = time.monotonic()
    # With client workers, this process's rooms have no participants of their own.
    parts = [await client_counts([r for r in setup.rooms if r.clients])]
    parts += await asyncio.gather(*(w.call("counts") for w in setup.workers))
    return {"t": t, "server": cpu_seconds(setup.server.pid),
            "server_children": setup.server.children_cpu_seconds(),
            "bench": sum(p["cpu"] for p in parts), "busy": machine_busy(),
            "rtp": [room for p in parts for room in p["rtp"]],
            "frames": [room for p in parts for room in p["frames"]],
            "sent": {k: v for p in parts for k, v in p["sent"].items()},
            "udp_server": udp_state(setup.server.pid),
            "udp_bench": (sum(p["udp"][0] for p in parts), sum(p["udp"][1] for p in parts)),
            "rcvbuf": min((b for p in parts for b in p["rcvbuf"]), default=0)}


def _lag(lag_file: Path, start: float, end: float) -> dict[str, Any]:
    samples = looplag.read_samples(lag_file, start, end) if lag_file.exists() else []
    if not samples:
        return {"samples": 0}
    return {"samples": len(samples), "p50_ms": round(percentile(samples, 50), 2),
            "p99_ms": round(percentile(samples, 99), 2), "max_ms": round(max(samples), 2)}


async def _wait_all_see_all(setup: Setup, size: int, timeout: float) -> None:
    await asyncio.gather(wait_all_see_all(setup.rooms, size, timeout),
                         *(w.call("wait", timeout) for w in setup.workers))


async def wait_all_see_all(rooms: list[BenchRoom], size: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        missing = [(c.name, len([s for s in c.peer._remote.values() if s.video_frames]))
                   for room in rooms for c in room.clients
                   if len([s for s in c.peer._remote.values() if s.video_frames]) < size - 1]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"participants without video from every other: {missing}")
        await asyncio.sleep(0.1)


async def late_joins(setup: Setup, size: int, media: Precoded, joins: int) -> dict[str, Any]:
    """A participant joins the running room 0 (publishing too), ``joins`` times one after the
    other: from the start of its join to its first decoded frame of each publisher."""
    room = setup.rooms[0]
    per_join: list[dict[str, float]] = []
    for k in range(joins):
        # One participant id for every join: the server replaces the previous joiner, still in
        # its grace period for coming back, as it does for a reloaded page.
        token = await setup.extra_token(room.room_id, "g-late", "迟到")
        start = time.monotonic()
        client = await BenchClient.join(setup.server.url, {"room_id": room.room_id,
                                                           "token": token},
                                        name=f"late{k}", media=media, decode=True)
        try:
            deadline = start + 15
            while True:
                firsts = {pid: s.first_video_frame_at for pid, s in client.peer._remote.items()
                          if s.first_video_frame_at is not None}
                if len(firsts) >= size:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"late joiner {k}: first frames only from {firsts}; offers "
                        f"{client.peer.offers}, {client.peer.pc.connectionState}, "
                        f"{client.peer.stats()}")
                await asyncio.sleep(0.005)
            per_join.append({pid: round((t - start) * 1000, 1) for pid, t in firsts.items()})
        finally:
            await client.close()
        await asyncio.sleep(1.0)
    every = [ms for join in per_join for ms in join.values()]
    last = [max(join.values()) for join in per_join]
    return {"joins": per_join,
            "first_frame_p50_ms": round(percentile(every, 50), 1),
            "first_frame_max_ms": round(max(every), 1),
            "all_publishers_p50_ms": round(percentile(last, 50), 1)}


async def measure(mode: str, size: int, count: int, media: Precoded, seconds: float,
                  settle: float, joins: int = 0, keep_log: Path | None = None,
                  procs: int = 1, workers: int = 0) -> dict[str, Any]:
    fd, name = tempfile.mkstemp(prefix="yunzhen-looplag-", suffix=".txt")
    os.close(fd)
    lag_file = Path(name)
    setup = Setup(mode, lag_file, workers=workers)
    setup.server.keep_log = keep_log
    try:
        await setup.start(count)
        await asyncio.sleep(1.0)
        idle_end = time.monotonic()
        idle_lag = _lag(lag_file, idle_end - 1.0, idle_end)
        joined = time.monotonic()
        await setup.open(count, size, media, procs)
        await _wait_all_see_all(setup, size, timeout=60)
        first_frames_s = time.monotonic() - joined
        await asyncio.sleep(settle)
        before = await _snapshot(setup)
        await asyncio.sleep(seconds)
        after = await _snapshot(setup)
        await asyncio.sleep(1.2)  # the probe writes its samples once a second
        lag = _lag(lag_file, before["t"], after["t"])
        late = await late_joins(setup, size, media, joins) if joins else None
        errors = [f"{c.name}: {c.peer.answer_errors}" for room in setup.rooms
                  for c in room.clients if c.peer.answer_errors]
        if errors:
            raise RuntimeError("; ".join(errors))
    except BaseException:
        print(setup.server.log_tail(), file=sys.stderr)
        raise
    finally:
        await setup.close()
        lag_file.unlink(missing_ok=True)
    return _result(mode, size, count, before, after, lag, idle_lag, first_frames_s, late)


def _result(mode: str, size: int, count: int, before: dict[str, Any], after: dict[str, Any],
            lag: dict[str, Any], idle_lag: dict[str, Any], first_frames_s: float,
            late: dict[str, Any] | None) -> dict[str, Any]:
    wall = after["t"] - before["t"]
    server_s = after["server"] - before["server"]
    forwarded = sent = 0
    received_fps: list[float] = []
    decoded_fps: list[float] = []
    audio_pps: list[float] = []
    decode_errors = 0
    sent_fps = {pid: (n - before["sent"].get(pid, 0)) / wall for pid, n in after["sent"].items()}
    delivered: list[float] = []  # frames received / frames the publisher sent, per pair
    for r, room in enumerate(after["rtp"]):
        for c, (rx, tx) in enumerate(room):
            rx0, tx0 = before["rtp"][r][c]
            forwarded += rx - rx0
            sent += tx - tx0
            for pid, (frames, audio, errs) in after["frames"][r][c].items():
                f0, a0, e0 = before["frames"][r][c].get(pid, (0, 0, 0))
                fps = (frames - f0) / wall
                if sent_fps.get(pid):
                    delivered.append(fps / sent_fps[pid])
                (decoded_fps if c == 0 else received_fps).append(fps)
                audio_pps.append((audio - a0) / wall)
                decode_errors += errs - e0
    all_fps = received_fps + decoded_fps
    cpu_pct = 100 * server_s / wall
    return {
        "mode": mode, "participants": size, "rooms": count, "window_s": round(wall, 2),
        "server_cpu_pct": round(cpu_pct, 1),
        "server_cpu_per_room_pct": round(cpu_pct / count, 1),
        "server_children_cpu_pct": round(
            100 * (after["server_children"] - before["server_children"]) / wall, 1),
        "bench_clients_cpu_pct": round(100 * (after["bench"] - before["bench"]) / wall, 1),
        "machine_busy_pct": round(100 * (after["busy"] - before["busy"]) / wall, 1),
        "rtp_sent_by_publishers_per_s": round(sent / wall, 1),
        "rtp_forwarded_per_s": round(forwarded / wall, 1),
        "us_per_forwarded_packet": round(server_s * 1e6 / forwarded, 1) if forwarded else None,
        # Every packet received (and recorded) or sent counted once.
        "us_per_packet_in_or_out": round(server_s * 1e6 / (forwarded + sent), 1)
        if forwarded + sent else None,
        "fps_sent_min": round(min(sent_fps.values()), 1) if sent_fps else None,
        "fps_received_min": round(min(all_fps), 1) if all_fps else None,
        "fps_received_mean": round(sum(all_fps) / len(all_fps), 1) if all_fps else None,
        "fps_received_lowest_pairs": [round(f, 1) for f in sorted(all_fps)[:4]],
        "fps_decoded_min": round(min(decoded_fps), 1) if decoded_fps else None,
        "fps_decoded_mean": round(sum(decoded_fps) / len(decoded_fps), 1) if decoded_fps
        else None,
        "delivered_min": round(min(delivered), 3) if delivered else None,
        "decode_errors": decode_errors,
        "udp_drops_server": after["udp_server"][0] - before["udp_server"][0],
        "udp_drops_bench": after["udp_bench"][0] - before["udp_bench"][0],
        "udp_unread_bytes_server_at_end": after["udp_server"][1],
        "udp_unread_bytes_bench_at_end": after["udp_bench"][1],
        "bench_socket_rcvbuf_bytes": after["rcvbuf"],
        "audio_packets_per_s_min": round(min(audio_pps), 1) if audio_pps else None,
        "loop_lag": lag,
        "loop_lag_idle": idle_lag,
        "first_frames_after_joins_s": round(first_frames_s, 2),
        **({"late_join": late} if late is not None else {}),
    }


# --- the plan and the figures --------------------------------------------------------------------

def parse_plan(text: str) -> list[tuple[str, int, int]]:
    """"pt3:1,tc6:1" → [("passthrough", 3, 1), ("transcode", 6, 1)]."""
    plan = []
    for item in text.split(","):
        kind, _, rooms = item.strip().partition(":")
        mode = {"pt": "passthrough", "rt": "rtp", "tc": "transcode"}.get(kind[:2])
        if mode is None or not kind[2:].isdigit() or not rooms.isdigit():
            raise ValueError(f"plan item {item!r}: expected pt<size>:<rooms>, rt<size>:<rooms> or "
                             "tc<size>:<rooms>")
        size, count = int(kind[2:]), int(rooms)
        if not 2 <= size <= 8 or count < 1:
            raise ValueError(f"plan item {item!r}: 2 to 8 participants, at least one room")
        plan.append((mode, size, count))
    return plan


def _limit(run: dict[str, Any]) -> str | None:
    """What kept a run below full frame rate, if anything."""
    if (run["fps_received_min"] or 0) >= FULL_RATE_FPS:
        return None
    load = (f"bench process {run['bench_clients_cpu_pct']} %, server "
            f"{run['server_cpu_pct']} %, whole machine {run['machine_busy_pct']} % of a core")
    if (run["fps_sent_min"] or 0) < FULL_RATE_FPS:
        return f"the bench clients: publishers sent only {run['fps_sent_min']} fps ({load})"
    if run["udp_drops_bench"]:
        return (f"the bench clients: their sockets dropped {run['udp_drops_bench']} datagrams "
                f"({load})")
    unread = run.get("udp_unread_bytes_bench_at_end", 0)
    if unread > 1_000_000:
        return (f"the bench clients: {unread / 1e6:.0f} MB were still unread in their sockets at "
                f"the end of the window (they fell behind; {load})")
    lost = (f"{run['delivered_min']} of the frames sent reached the worst pair, with "
            f"{run['udp_drops_server']} datagrams dropped at the server's sockets and none at "
            f"the bench's")
    if run["bench_clients_cpu_pct"] >= 90:
        # One event loop thread runs every participant: near a full core it may be the limit.
        return f"not determined: {lost}; the bench process was near a full core ({load})"
    return f"the server: {lost} ({load})"


def figures(runs: dict[str, dict[str, Any]], media: Precoded, args: argparse.Namespace
            ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    failed = {k: r["error"] for k, r in runs.items() if "error" in r}
    runs = {k: r for k, r in runs.items() if "error" not in r}
    for size in (3, 6):
        pt = {r["rooms"]: r for r in runs.values()
              if r["mode"] == "passthrough" and r["participants"] == size}
        tc = {r["rooms"]: r for r in runs.values()
              if r["mode"] == "transcode" and r["participants"] == size}
        if 1 in pt:
            out[f"cpu_passthrough_{size}p_room_pct"] = pt[1]["server_cpu_pct"]
        if 1 in tc:
            out[f"cpu_transcode_{size}p_room_pct"] = tc[1]["server_cpu_pct"]
            out[f"fps_transcode_{size}p_min"] = tc[1]["fps_received_min"]
        if 1 in pt and 1 in tc and pt[1]["server_cpu_pct"]:
            out[f"cpu_ratio_transcode_vs_passthrough_{size}p"] = round(
                tc[1]["server_cpu_pct"] / pt[1]["server_cpu_pct"], 2)
            # When the transcoder cannot keep 30 fps, the plain ratio flatters it: per frame
            # delivered to a subscriber is the fairer comparison.
            if tc[1]["fps_received_mean"] and pt[1]["fps_received_mean"]:
                out[f"cpu_ratio_transcode_vs_passthrough_{size}p_per_delivered_frame"] = round(
                    (tc[1]["server_cpu_pct"] / tc[1]["fps_received_mean"])
                    / (pt[1]["server_cpu_pct"] / pt[1]["fps_received_mean"]), 2)
        if pt:
            most = max(pt)
            run = pt[most]
            per_room = run["server_cpu_per_room_pct"]
            out[f"rooms_per_core_{size}p"] = round(100 / per_room, 1) if per_room else None
            out[f"rooms_per_core_{size}p_check"] = {
                "basis": f"100 / server CPU per room measured with {most} concurrent "
                         f"{size}-person room(s) ({per_room} % of a core each)",
                "concurrent_rooms": most,
                "fps_sent_min": run["fps_sent_min"],
                "fps_received_min": run["fps_received_min"],
                "fps_decoded_min": run["fps_decoded_min"],
                "delivered_min": run["delivered_min"],
                "full_frame_rate": (run["fps_received_min"] or 0) >= FULL_RATE_FPS,
                "server_delivered_all_sent": (run["delivered_min"] or 0) >= 0.97,
                "limited_by": _limit(run),
            }
    main_run = max((r for r in runs.values()
                    if r["mode"] == "passthrough" and r["participants"] == 3),
                   key=lambda r: r["rooms"], default=None)
    if main_run is not None:
        out["us_per_packet"] = main_run["us_per_forwarded_packet"]
        out["loop_lag_p99_ms"] = main_run["loop_lag"].get("p99_ms")
        out["us_per_packet_basis"] = (
            f"server CPU time / RTP packets the subscribers received, {main_run['rooms']} "
            f"3-person room(s); every run: rooms_detail.runs.*.us_per_forwarded_packet")
        out["loop_lag_basis"] = (
            f"probe samples every 10 ms in the server, {main_run['rooms']} 3-person room(s); "
            f"idle server: p99 {main_run['loop_lag_idle'].get('p99_ms')} ms")
    late = next((r["late_join"] for r in runs.values()
                 if "late_join" in r and r["mode"] == "passthrough"), None)
    if late is not None:
        out["late_join_first_frame_ms"] = late["first_frame_p50_ms"]
        out["late_join_all_publishers_p50_ms"] = late["all_publishers_p50_ms"]
    out.update(rtp_figures(runs))
    ratio = out.get("cpu_ratio_transcode_vs_passthrough_3p")
    rpc = out.get("rooms_per_core_3p")
    check = out.get("rooms_per_core_3p_check", {})
    out["goals"] = {
        "rooms_per_core_3p_at_least_5": None if rpc is None else
        bool(rpc >= 5 and check.get("full_frame_rate")),
        "transcode_at_least_5x_passthrough_3p": None if ratio is None else ratio >= 5,
        **rtp_goals(out),
    }
    out["rooms_detail"] = {
        "media": (f"each publisher: 640x480 @ {FPS} fps VP8 pre-encoded once with libvpx "
                  f"(realtime, keyframe every 3 s, panning texture, "
                  f"{media.video_bitrate / 1000:.0f} kbit/s) looped from {args.loop_seconds} s, "
                  "jumping to the next keyframe on a PLI; Opus 20 ms packets of a 440 Hz tone"),
        "subscribers": "count frames and RTP packets; the first client of each room decodes "
                       "every video frame (fps_decoded_*)",
        "recording": "pass-through: the real server records every track (remux) as always; "
                     "transcode: records nothing",
        "video_kbit_s": round(media.video_bitrate / 1000),
        "video_bytes_per_frame": round(sum(len(p) for p in media.video) / len(media.video)),
        "window_s": args.seconds, "settle_s": args.settle, "plan": args.plan,
        "cpu_unit": "% of one core; server_cpu_pct is the server process (all threads), "
                    "server_children_cpu_pct its private redis-server, bench_clients_cpu_pct "
                    "this process (every participant), machine_busy_pct every process on the "
                    "machine (other users included)",
        "runs": runs,
        "failed_runs": failed,
    }
    return out


def rtp_figures(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The RTP path's figures (media.forwarding = "rtp"), next to the frame path's, from the
    ``rt3:<n>`` runs of the same plan."""
    out: dict[str, Any] = {}
    rt = {r["rooms"]: r for r in runs.values() if r["mode"] == "rtp" and r["participants"] == 3}
    if not rt:
        return out
    if 1 in rt:
        out["cpu_rtp_3p_room_pct"] = rt[1]["server_cpu_pct"]
    most = max(rt)
    run = rt[most]
    per_room = run["server_cpu_per_room_pct"]
    out["us_per_packet_rtp"] = run["us_per_forwarded_packet"]
    out["rooms_per_core_3p_rtp"] = round(100 / per_room, 1) if per_room else None
    out["rooms_per_core_3p_rtp_check"] = {
        "basis": f"100 / server CPU per room measured with {most} concurrent 3-person room(s) "
                 f"on media.forwarding = rtp ({per_room} % of a core each); us_per_packet_rtp: "
                 "server CPU time / RTP packets the subscribers received, same run",
        "concurrent_rooms": most,
        "fps_received_min": run["fps_received_min"],
        "fps_decoded_min": run["fps_decoded_min"],
        "delivered_min": run["delivered_min"],
        "full_frame_rate": (run["fps_received_min"] or 0) >= FULL_RATE_FPS,
        "loop_lag_p99_ms": run["loop_lag"].get("p99_ms"),
    }
    late = next((r["late_join"] for r in rt.values() if "late_join" in r), None)
    if late is not None:
        out["late_join_first_frame_ms_rtp"] = late["first_frame_p50_ms"]
        out["late_join_all_publishers_p50_ms_rtp"] = late["all_publishers_p50_ms"]
    return out


def rtp_goals(out: dict[str, Any]) -> dict[str, bool | None]:
    """Issue 15's goals: <= 30 us per forwarded packet, >= 25 three-person rooms per core at
    full frame rate, a late joiner's first frame within 300 ms."""
    us = out.get("us_per_packet_rtp")
    rpc = out.get("rooms_per_core_3p_rtp")
    late = out.get("late_join_first_frame_ms_rtp")
    check = out.get("rooms_per_core_3p_rtp_check", {})
    return {
        "rtp_us_per_packet_at_most_30": None if us is None else us <= 30,
        "rtp_rooms_per_core_3p_at_least_25": None if rpc is None else
        bool(rpc >= 25 and check.get("full_frame_rate")),
        "rtp_late_join_at_most_300_ms": None if late is None else late <= 300,
    }


def note(out: dict[str, Any]) -> str:
    parts = []
    for size in (3, 6):
        check = out.get(f"rooms_per_core_{size}p_check", {})
        if f"cpu_passthrough_{size}p_room_pct" in out:
            parts.append(
                f"{size}-person room: pass-through {out[f'cpu_passthrough_{size}p_room_pct']} % "
                f"of a core, transcoding {out.get(f'cpu_transcode_{size}p_room_pct')} % "
                f"(x{out.get(f'cpu_ratio_transcode_vs_passthrough_{size}p')}, transcoded "
                f"min fps {out.get(f'fps_transcode_{size}p_min')}); "
                f"{out.get(f'rooms_per_core_{size}p')} rooms per core "
                f"({check.get('basis')}; full frame rate there: "
                f"{check.get('full_frame_rate')})")
    if "us_per_packet_rtp" in out:
        parts.append(f"RTP path: {out['us_per_packet_rtp']} us per forwarded packet (frame "
                     f"path {out.get('us_per_packet')}), {out.get('rooms_per_core_3p_rtp')} "
                     f"three-person rooms per core (frame path {out.get('rooms_per_core_3p')})")
    failed = out.get("rooms_detail", {}).get("failed_runs")
    if failed:
        parts.append(f"runs that failed: {', '.join(failed)}")
    goals = out.get("goals", {})
    parts.append(f"goals: >= 5 three-person rooms per core: "
                 f"{'met' if goals.get('rooms_per_core_3p_at_least_5') else 'NOT met'}; "
                 f">= 5x less CPU than transcoding: "
                 f"{'met' if goals.get('transcode_at_least_5x_passthrough_3p') else 'NOT met'}")
    return ". ".join(parts) + "."


async def run(args: argparse.Namespace) -> dict[str, Any]:
    passthrough.install(["127.0.0.1"])
    plan = parse_plan(args.plan)
    media = Precoded.make(args.loop_seconds)
    print(f"media: {len(media.video)} frames, keyframes {media.keyframes}, "
          f"{media.video_bitrate / 1000:.0f} kbit/s", flush=True)
    runs: dict[str, dict[str, Any]] = {}
    late_done: set[str] = set()
    for mode, size, count in plan:
        joins = 0
        if mode in FORWARDING and size == 3 and count == 1 and mode not in late_done:
            joins = args.late_joins
            late_done.add(mode)
        key = f"{mode}_{size}p_x{count}"
        try:
            log = args.keep_logs / f"{key}.log" if args.keep_logs else None
            result = await measure(mode, size, count, media, args.seconds, args.settle, joins,
                                   log, args.procs)
        except Exception as exc:
            # One configuration that cannot run (a busy machine: participants never all see
            # each other) leaves the others' figures standing; the error is in the results.
            result = {"mode": mode, "participants": size, "rooms": count,
                      "error": f"{type(exc).__name__}: {exc}"[:2000]}
            if joins:
                late_done.discard(mode)
        runs[key] = result
        print(f"{key}: {json.dumps(result, ensure_ascii=False)}", flush=True)
    out = figures(runs, media, args)
    out["rooms_note"] = note(out)
    return out


async def scale(args: argparse.Namespace) -> dict[str, Any]:
    """3-person rooms at full frame rate on the default (RTP) path on one process, and with two
    worker processes behind nginx (`serve --workers 2`), in the same run: 1, 2, 3, … rooms until
    a run misses full frame rate or `--scale` rooms."""
    passthrough.install(["127.0.0.1"])
    media = Precoded.make(args.loop_seconds)
    full: dict[int, dict[str, Any] | None] = {}
    runs: dict[str, Any] = {}
    for workers in (0, 2):
        full[workers] = None
        for count in range(1, args.scale + 1):
            result = await measure("rtp", 3, count, media, args.seconds, args.settle,
                                   procs=args.procs if count > 1 else 1, workers=workers)
            runs[f"{workers or 1}proc_{count}rooms"] = result
            print(f"{workers or 1} proc(s), {count} room(s): fps min "
                  f"{result['fps_received_min']}", flush=True)
            if (result["fps_received_min"] or 0) < FULL_RATE_FPS:
                break
            full[workers] = result
    one, two = full[0], full[2]
    out: dict[str, Any] = {
        "rooms_3p_full_rate_1proc": one["rooms"] if one else 0,
        "rooms_3p_full_rate_2procs": two["rooms"] if two else 0,
        "rooms_3p_scale_basis": (
            f"3-person rooms on the RTP path at >= {FULL_RATE_FPS} fps for every subscriber, "
            f"1, 2, 3, … rooms "
            f"(at most {args.scale}), {args.seconds} s each; participants in this machine's "
            f"bench processes too"),
        "rooms_3p_scale_runs": {k: {f: r[f] for f in (
            "rooms", "server_cpu_pct", "server_children_cpu_pct", "fps_received_min",
            "delivered_min", "bench_clients_cpu_pct", "machine_busy_pct")}
            for k, r in runs.items()},
    }
    if one and one["server_cpu_per_room_pct"]:
        out["rooms_per_core_3p_1proc"] = round(100 / one["server_cpu_per_room_pct"], 1)
    if one and two:
        out["rooms_3p_2procs_ratio"] = round(two["rooms"] / one["rooms"], 2)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rooms")
    parser.add_argument("--plan", default=DEFAULT_PLAN,
                        help="runs, one after the other: pt<size>:<rooms> (pass-through) or "
                             "tc<size>:<rooms> (transcoding), comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--procs", type=int, default=2,
                        help="processes for the participants of runs with several rooms")
    parser.add_argument("--late-joins", type=int, default=5,
                        help="late joiners timed in the first 1-room 3-person pass-through run")
    parser.add_argument("--loop-seconds", type=float, default=6.0,
                        help="seconds of video encoded once and looped by every publisher")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep-logs", type=Path, default=None,
                        help="copy each server's log into this directory")
    parser.add_argument("--scale", type=int, default=0,
                        help="instead of the plan: 3-person rooms at full frame rate with one "
                             "process and with two workers, up to this many rooms "
                             "(bench/results/scale.json)")
    args = parser.parse_args(argv)
    try:
        parse_plan(args.plan)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.scale:
        merge_results("rooms_scale", asyncio.run(scale(args)), path=SCALE_RESULTS)
        return 0
    out = asyncio.run(run(args))
    merge_results("rooms", out, path=args.out)
    print({k: v for k, v in out.items() if k != "rooms_detail"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
