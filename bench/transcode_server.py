"""The transcoding baseline: a small server that speaks enough of the ``/room`` Socket.IO protocol
(docs/protocol.md) for rooms.client.RoomClient, built on ordinary aiortc WITHOUT the pass-through
hook. Each participant's tracks are decoded by aiortc as usual and forwarded to every other
participant through ``aiortc.contrib.media.MediaRelay``, so every subscriber's sender re-encodes
(VP8 / Opus). It records nothing (the real server remuxes every track to disk; that costs it
6–16 µs a packet, see ARCHITECTURE.md).

Protocol subset: ``room:join`` with any token (the first to join is the applicant, later ones staff)
→ a server-initiated ``room:offer`` (sent before the join's answer, as the real server does);
``room:answer``; ``room:participants`` on every join and leave; ``room:hangup`` → ``room:ended``.
Rooms are told apart by ``room_id`` (any number, any size; a room exists while someone is in it).
Only for benchmarks and their smoke test.

    python -m bench.transcode_server --port 8091
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
from typing import Any

import socketio
from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from bench.common import announce_loopback
from server import looplag
from server.background import background

logger = logging.getLogger("bench.transcode")
NAMESPACE = "/room"
CODECS = {"audio": ("audio/opus",), "video": ("video/vp8", "video/rtx")}


def codecs(kind: str) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    assert capabilities is not None
    return [c for c in capabilities.codecs if c.mimeType.lower() in CODECS[kind]]


class Peer:
    """One participant: one peer connection, the server always offering."""

    def __init__(self, sid: str, participant_id: str, role: str, server: TranscodeServer,
                 room_id: str) -> None:
        self.sid = sid
        self.room_id = room_id
        self.participant_id = participant_id
        self.role = role
        self.server = server
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.publish: dict[str, RTCRtpTransceiver] = {}
        self.published: dict[str, MediaStreamTrack] = {}
        # (transceiver, kind, publisher id) of every forwarded track
        self.subscriptions: list[tuple[RTCRtpTransceiver, str, str]] = []
        self.lock = asyncio.Lock()
        self.offer_pending = False
        self.renegotiate = False
        for kind in ("audio", "video"):
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(codecs(kind))
            self.publish[kind] = transceiver
        self.pc.on("track", self._on_track)

    def info(self) -> dict[str, Any]:
        return {"participant_id": self.participant_id, "role": self.role,
                "name": self.participant_id, "department": None}

    def subscribe(self, publisher: Peer, kind: str, track: MediaStreamTrack) -> None:
        # A relay proxy per subscriber: the sender gets decoded frames and encodes them itself.
        proxy = self.server.relay.subscribe(track)
        transceiver = self.pc.addTransceiver(proxy, direction="sendonly")
        transceiver.setCodecPreferences(codecs(kind))
        self.subscriptions.append((transceiver, kind, publisher.participant_id))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind in self.published:
            return
        self.published[track.kind] = track
        for other in self.server.room_peers(self.room_id):
            if other is not self:
                other.subscribe(self, track.kind, track)
                self.server.spawn(other.negotiate())

    async def negotiate(self) -> None:
        async with self.lock:
            if self.offer_pending:
                self.renegotiate = True
                return
            await self._send_offer()

    async def _send_offer(self) -> None:
        self.renegotiate = False
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer_pending = True
        tracks = [{"mid": t.mid, "kind": kind, "participant_id": pid,
                   "role": self.server.peers_by_id[pid].role if pid in self.server.peers_by_id
                   else "staff", "name": pid}
                  for t, kind, pid in self.subscriptions if t.mid is not None]
        await self.server.sio.emit("room:offer", {
            "sdp": self.pc.localDescription.sdp,
            "publish": {kind: t.mid for kind, t in self.publish.items()},
            "tracks": tracks,
        }, to=self.sid, namespace=NAMESPACE)

    async def answer(self, sdp: str) -> None:
        async with self.lock:
            if not self.offer_pending:
                raise ValueError("no pending offer")
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            self.offer_pending = False
            if self.renegotiate:
                await self._send_offer()


class TranscodeServer:
    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=[])
        self.app = web.Application()
        self.sio.attach(self.app)
        self.app.router.add_get("/healthz", self._healthz)
        self.relay = MediaRelay()
        self.peers: dict[str, Peer] = {}  # by socket id, every room
        self.peers_by_id: dict[str, Peer] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        for event, handler in (("room:join", self.on_join), ("room:answer", self.on_answer),
                               ("room:hangup", self.on_hangup)):
            self.sio.on(event, handler, namespace=NAMESPACE)
        self.sio.on("disconnect", self.on_disconnect, namespace=NAMESPACE)
        self.app.on_shutdown.append(self._shutdown)
        lag_probe = looplag.from_env()  # the same probe as the real server's
        if lag_probe is not None:
            self.app.cleanup_ctx.append(background("loop-lag-probe", lag_probe.run_for))

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "transcoding": True})

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("task failed", exc_info=task.exception())

    def room_peers(self, room_id: str) -> list[Peer]:
        return [p for p in self.peers.values() if p.room_id == room_id]

    async def _participants(self, room_id: str) -> None:
        payload = {"participants": [p.info() for p in self.room_peers(room_id)]}
        await self.sio.emit("room:participants", payload, room=f"room:{room_id}",
                            namespace=NAMESPACE)

    async def on_join(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data, dict) or "token" not in data or sid in self.peers:
            return {"ok": False, "error": {"code": "invalid_payload", "message": "bad join",
                                           "message_en": "bad join"}}
        room_id = str(data.get("room_id", ""))
        others = self.room_peers(room_id)
        role = "applicant" if not others else "staff"
        peer = Peer(sid, f"{role[0]}{next(self._ids)}", role, self, room_id)
        for other in others:
            for kind, track in other.published.items():
                peer.subscribe(other, kind, track)
        self.peers[sid] = peer
        self.peers_by_id[peer.participant_id] = peer
        await self.sio.enter_room(sid, f"room:{room_id}", namespace=NAMESPACE)
        await self._participants(room_id)
        await peer.negotiate()
        return {"ok": True, "participant_id": peer.participant_id, "role": role,
                "ice_servers": [], "participants": [p.info() for p in self.room_peers(room_id)]}

    async def on_answer(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        peer = self.peers.get(sid)
        if peer is None:
            return {"ok": False, "error": {"code": "unauthenticated", "message": "join first",
                                           "message_en": "join first"}}
        try:
            await peer.answer(data["sdp"])
        except Exception as exc:
            return {"ok": False, "error": {"code": "invalid_payload", "message": str(exc),
                                           "message_en": str(exc)}}
        return {"ok": True}

    async def on_hangup(self, sid: str, data: Any = None) -> dict[str, Any]:
        peer = self.peers.get(sid)
        if peer is None:
            return {"ok": False, "error": {"code": "unauthenticated", "message": "join first",
                                           "message_en": "join first"}}
        await self.sio.emit("room:ended", {"reason": "hangup"}, room=f"room:{peer.room_id}",
                            namespace=NAMESPACE)
        await self.close_all(peer.room_id)
        return {"ok": True}

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        peer = self.peers.pop(sid, None)
        if peer is None:
            return
        self.peers_by_id.pop(peer.participant_id, None)
        await peer.pc.close()
        await self._participants(peer.room_id)

    async def close_all(self, room_id: str | None = None) -> None:
        """Close one room's peers, or every room's."""
        peers = [p for p in self.peers.values() if room_id is None or p.room_id == room_id]
        for peer in peers:
            self.peers.pop(peer.sid, None)
            self.peers_by_id.pop(peer.participant_id, None)
        await asyncio.gather(*(p.pc.close() for p in peers), return_exceptions=True)

    async def _shutdown(self, app: web.Application) -> None:
        await self.close_all()
        for task in list(self._tasks):
            task.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transcode_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    announce_loopback()
    server = TranscodeServer()
    web.run_app(server.app, host=args.host, port=args.port,
                print=lambda _: print(f"transcoding server on {args.host}:{args.port}",
                                      flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
