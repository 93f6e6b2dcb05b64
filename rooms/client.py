"""A Python participant: an aiortc peer that joins a room through the same Socket.IO signaling as
a browser, publishes a synthetic camera (moving pattern) and microphone (a tone), and counts what
it receives from every other participant. Benchmarks and end-to-end tests use it.

``RoomPeer`` is the media side and knows nothing of Socket.IO: give it the server's events and a
way to send answers (tests bridge it straight to a Room). ``RoomClient`` wraps it in a Socket.IO
connection to the ``/room`` namespace.

If rooms.passthrough is installed in this process (the server runs here too), received tracks
yield encoded ``av.Packet``s; the peer then decodes video itself so that its counts are real.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import av
import socketio
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError

logger = logging.getLogger(__name__)

NAMESPACE = "/room"
AUDIO_RATE = 48000


class SyntheticVideoTrack(VideoStreamTrack):
    """A synthetic camera at 30 fps: a subclass draws the grey levels of each picture; the colour
    planes stay neutral."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self.frames = 0

    def luma(self, line_size: int) -> bytes:
        """The luma plane of picture number ``self.frames``: ``height`` rows of ``line_size``."""
        raise NotImplementedError

    async def recv(self) -> av.VideoFrame:  # type: ignore[override]
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(self.luma(frame.planes[0].line_size))
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.frames += 1
        return frame


class PatternVideoTrack(SyntheticVideoTrack):
    """A bright bar moving over a grey picture."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__(width, height)

    def luma(self, line_size: int) -> bytes:
        bar = max(8, self.width // 16)
        x = (self.frames * 8) % (self.width - bar)
        row = b"\x50" * x + b"\xeb" * bar + b"\x50" * (self.width - bar - x)
        return (row + b"\x00" * (line_size - self.width)) * self.height


class ToneAudioTrack(MediaStreamTrack):
    """A synthetic microphone: a 440 Hz tone, 20 ms frames of mono s16 at 48 kHz."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0) -> None:
        super().__init__()
        samples = array.array("h", (int(8000 * math.sin(2 * math.pi * frequency * i / AUDIO_RATE))
                                    for i in range(AUDIO_RATE)))
        self._second = samples.tobytes()
        self._samples = int(AUDIO_PTIME * AUDIO_RATE)
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += self._samples
            await asyncio.sleep(self._start + self._pts / AUDIO_RATE - time.time())
        frame = av.AudioFrame(format="s16", layout="mono", samples=self._samples)
        offset = (self._pts % AUDIO_RATE) * 2
        frame.planes[0].update(self._second[offset:offset + self._samples * 2])
        frame.pts = self._pts
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


@dataclass
class RemoteStats:
    """What this peer received from one other participant."""

    participant_id: str
    name: str = ""
    video_packets: int = 0
    video_frames: int = 0
    video_decode_errors: int = 0
    audio_packets: int = 0
    audio_frames: int = 0
    track_seen_at: float | None = None
    first_video_frame_at: float | None = None
    # The codec its video was decoded with ("vp8" or "h264"), once a video track came.
    video_codec: str = ""

    @property
    def first_frame_delay(self) -> float | None:
        """Seconds from the video track being offered to its first decoded frame."""
        if self.first_video_frame_at is None or self.track_seen_at is None:
            return None
        return self.first_video_frame_at - self.track_seen_at


SendAnswer = Callable[[str], Awaitable[None]]


class RoomPeer:
    """The media side of a participant: answers the server's offers, publishes, counts."""

    def __init__(self, send_answer: SendAnswer, *, name: str = "", video: bool = True,
                 audio: bool = True, width: int = 640, height: int = 480) -> None:
        self.name = name
        # max-bundle, not aiortc's default "balanced": with "balanced", the second and later
        # video m-lines of a first offer stay on a transport that bundling then discards.
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.video: VideoStreamTrack | None = PatternVideoTrack(width, height) if video else None
        self.audio = ToneAudioTrack() if audio else None
        self.participants: list[dict[str, Any]] = []
        self.ended = asyncio.Event()
        self.ended_reason: str | None = None
        self.offers = 0
        self.answer_errors: list[str] = []
        # A shared screen: set it before sending room:share {on: true}.
        self.screen: MediaStreamTrack | None = None
        self._screen_mid: str | None = None
        self._send_answer = send_answer
        self._remote: dict[str, RemoteStats] = {}
        self._mids: dict[str, dict[str, Any]] = {}
        self._events: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner = asyncio.create_task(self._run(), name=f"room-peer {name}")
        self._closed = False
        self.pc.on("track", self._on_track)

    async def handle(self, event: str, payload: dict[str, Any]) -> None:
        """A server event; handled in order on the peer's own task, like a network would."""
        self._events.put_nowait((event, payload))

    def stats(self) -> dict[str, dict[str, Any]]:
        return {pid: {**asdict(s), "first_frame_delay": s.first_frame_delay}
                for pid, s in self._remote.items()}

    def remote(self, participant_id: str) -> RemoteStats | None:
        return self._remote.get(participant_id)

    async def wait_for_video(self, min_frames: int, timeout: float,
                             participant_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Wait until every remote participant (or just ``participant_id``) has given at least
        ``min_frames`` decoded video frames; raises TimeoutError with the counts otherwise."""
        def done() -> bool:
            if participant_id is not None:
                s = self._remote.get(participant_id)
                return s is not None and s.video_frames >= min_frames
            return bool(self._remote) and all(s.video_frames >= min_frames
                                              for s in self._remote.values()
                                              if s.track_seen_at is not None)

        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: fewer than {min_frames} video frames: "
                                   f"{self.stats()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass
        return self.stats()

    async def _run(self) -> None:
        while True:
            item = await self._events.get()
            if item is None:
                return
            event, payload = item
            try:
                if event == "room:offer":
                    await self._on_offer(payload)
                elif event == "room:participants":
                    self.participants = list(payload.get("participants", []))
                    for p in self.participants:
                        stats = self._remote.get(p["participant_id"])
                        if stats is not None:
                            stats.name = p.get("name", "")
                elif event == "room:ended":
                    self.ended_reason = payload.get("reason")
                    self.ended.set()
            except Exception as exc:
                logger.exception("%s: handling %s failed", self.name, event)
                self.answer_errors.append(f"{event}: {exc}")

    async def _on_offer(self, payload: dict[str, Any]) -> None:
        self.offers += 1
        for track in payload.get("tracks", []):
            self._mids[track["mid"]] = track
        # The track events fire inside setRemoteDescription, with the mids above known.
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=payload["sdp"], type="offer"))
        publish = payload.get("publish", {})
        if self._screen_mid is not None and self._screen_mid != publish.get("screen"):
            # The share stopped: the server made that m-line inactive.
            transceiver = self._transceiver(self._screen_mid)
            if transceiver is not None:
                transceiver.direction = "inactive"
        self._screen_mid = publish.get("screen")
        for kind, source in (("audio", self.audio), ("video", self.video),
                             ("screen", self.screen)):
            transceiver = self._transceiver(publish.get(kind))
            if transceiver is None:
                continue
            if source is not None:
                if transceiver.sender.track is None:
                    transceiver.sender.replaceTrack(source)
                transceiver.direction = "sendonly"
            else:
                transceiver.direction = "inactive"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self._send_answer(self.pc.localDescription.sdp)

    def _transceiver(self, mid: str | None) -> RTCRtpTransceiver | None:
        if mid is None:
            return None
        return next((t for t in self.pc.getTransceivers() if t.mid == mid), None)

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next((t for t in self.pc.getTransceivers() if t.receiver.track is track),
                           None)
        info = self._mids.get(transceiver.mid or "") if transceiver is not None else None
        if info is None:
            logger.warning("%s: a %s track that no offer announced", self.name, track.kind)
            return
        pid = info["participant_id"]
        # A screen share is counted apart from the camera, under "<participant_id>/screen".
        key = f"{pid}/screen" if info.get("source") == "screen" else pid
        stats = self._remote.setdefault(key, RemoteStats(pid, name=info.get("name", "")))
        # The server's one video codec, as negotiated: VP8, or H.264 on an h264 server.
        codecs = getattr(transceiver, "_codecs", None) or []
        codec = "h264" if any(c.name.lower() == "h264" for c in codecs) else "vp8"
        if track.kind == "video":
            stats.track_seen_at = time.monotonic()
            stats.video_codec = codec
        task = asyncio.create_task(self._consume(track, stats), name=f"{self.name} <- {pid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _consume(self, track: MediaStreamTrack, stats: RemoteStats) -> None:
        decoder: av.VideoCodecContext | None = None
        try:
            while True:
                data = await track.recv()
                if track.kind == "audio":
                    if isinstance(data, av.Packet):
                        stats.audio_packets += 1
                    else:
                        stats.audio_frames += 1
                    continue
                if isinstance(data, av.Packet):
                    stats.video_packets += 1
                    if decoder is None:
                        decoder = (av.VideoCodecContext.create("h264", "r")
                                   if stats.video_codec == "h264"
                                   else av.VideoCodecContext.create("vp8", "r"))
                    try:
                        frames = len(decoder.decode(data))
                    except av.FFmpegError:
                        stats.video_decode_errors += 1
                        continue
                else:
                    frames = 1
                if frames:
                    if stats.first_video_frame_at is None:
                        stats.first_video_frame_at = time.monotonic()
                    stats.video_frames += frames
                    self._changed.set()
        except MediaStreamError:
            pass

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._events.put_nowait(None)
        await self._runner
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pc.close()
        for source in (self.video, self.audio, self.screen):
            if source is not None:
                source.stop()


class RoomClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class RoomClient:
    """A participant over Socket.IO: ``await RoomClient.connect(base_url, room_id, token)``."""

    def __init__(self, *, name: str, video: bool, audio: bool,
                 headers: dict[str, str] | None, width: int = 640, height: int = 480) -> None:
        self.name = name
        self.participant_id: str | None = None
        self.role: str | None = None
        self.ice_servers: list[dict[str, Any]] = []
        self.room_id = ""
        self._token = ""
        # The path prefix of the process that hosts the room ("" or "/n/<name>": the grant's).
        self._base = ""
        self._headers = headers or {}
        self._media = {"video": video, "audio": audio, "width": width, "height": height}
        self.sio, self.peer = self._connection()

    def _connection(self) -> tuple[socketio.AsyncClient, RoomPeer]:
        """A new socket and peer connection (the first, or one to reconnect with)."""
        sio = socketio.AsyncClient(reconnection=False)
        peer = RoomPeer(self._send_answer, name=self.name, video=bool(self._media["video"]),
                        audio=bool(self._media["audio"]), width=int(self._media["width"]),
                        height=int(self._media["height"]))
        for event in ("room:offer", "room:participants", "room:ended"):
            sio.on(event, self._handler(peer, event), namespace=NAMESPACE)
        return sio, peer

    @staticmethod
    def _handler(peer: RoomPeer, event: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def handle(payload: dict[str, Any]) -> None:
            await peer.handle(event, payload)
        return handle

    @classmethod
    async def connect(cls, base_url: str, room_id: str, token: str, *, name: str = "",
                      video: bool = True, audio: bool = True,
                      width: int = 640, height: int = 480,
                      headers: dict[str, str] | None = None,
                      timeout: float = 10.0, base: str = "") -> RoomClient:
        """`base`: the grant's ("" or "/n/<name>"), the path prefix of the hosting process."""
        client = cls(name=name or "python", video=video, audio=audio, headers=headers,
                     width=width, height=height)
        client.room_id, client._token, client._base = room_id, token, base
        try:
            await client._join(base_url, timeout)
        except BaseException:
            await client.close()
            raise
        return client

    async def reconnect(self, base_url: str, timeout: float = 10.0,
                        base: str | None = None) -> None:
        """Join the room again with the same token, on ``base_url`` (the process that hosts it
        now, after the one it was on died): a new socket and peer connection, new counts. The
        room must know the participant again, so RoomClientError (not_found) while it does not
        yet; the caller retries. ``base``: the room's new base, when it moved to another."""
        if base is not None:
            self._base = base
        await self.close()
        self.sio, self.peer = self._connection()
        await self._join(base_url, timeout)

    async def _join(self, base_url: str, timeout: float) -> None:
        await self.sio.connect(base_url, headers=self._headers, namespaces=[NAMESPACE],
                               transports=["websocket"], wait_timeout=timeout,
                               socketio_path=f"{self._base.strip('/')}/socket.io".lstrip("/"))
        answer = await self._call("room:join", {"room_id": self.room_id, "token": self._token},
                                  timeout)
        self.participant_id = answer["participant_id"]
        self.role = answer["role"]
        self.ice_servers = answer.get("ice_servers", [])
        self.peer.participants = answer.get("participants", [])

    async def _call(self, event: str, payload: dict[str, Any],
                    timeout: float = 10.0) -> dict[str, Any]:
        answer = await self.sio.call(event, payload, namespace=NAMESPACE, timeout=timeout)
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise RoomClientError(error.get("code", "internal"),
                                  error.get("message_en", str(answer)))
        return answer

    async def _send_answer(self, sdp: str) -> None:
        await self._call("room:answer", {"sdp": sdp})

    def stats(self) -> dict[str, dict[str, Any]]:
        return self.peer.stats()

    async def wait_for_video(self, min_frames: int, timeout: float,
                             participant_id: str | None = None) -> dict[str, dict[str, Any]]:
        return await self.peer.wait_for_video(min_frames, timeout, participant_id)

    async def hangup(self) -> None:
        await self._call("room:hangup", {})

    async def close(self) -> None:
        try:
            if self.sio.connected:
                await self.sio.disconnect()
        finally:
            await self.peer.close()
