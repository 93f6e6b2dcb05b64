"""A participant of a room: their one RTCPeerConnection to the server and its negotiation.

The server is always the offerer. One offer is outstanding at a time: a renegotiation asked for
while an answer is pending is sent right after that answer arrives.

Renegotiation in aiortc 1.16 can add m-lines: ``createOffer`` keeps the existing sections (same
mids, same order) and appends new transceivers; with ``bundlePolicy=max-bundle`` a transceiver
added later reuses the first one's ICE/DTLS transport, and ``setRemoteDescription(answer)`` starts
its sender on the already connected transport. Tests in tests/rooms check this end to end.
A removed track's transceiver is set ``inactive``; its m-line stays (m-lines are never removed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from rooms import passthrough
from rooms.errors import InvalidAnswer, NoPendingOffer, RoomClosed, ShareLimit, UnsupportedCodec
from rooms.forwarder import ForwardedTrack, TrackForwarder
from rooms.roles import OBSERVER_ROLES
from rooms.rtp_forward import RtpLeg

logger = logging.getLogger(__name__)

SignalFn = Callable[[str, dict[str, Any]], Awaitable[None]]

# The one codec set everybody uses, so every track can be forwarded to everybody as it is. The
# video codec is the server's (MediaConfig.video_codec): VP8 by default, or H.264.
CODEC_MIME_TYPES = {"audio": ("audio/opus",), "video": ("video/VP8", "video/rtx")}
H264_MIME_TYPES = ("video/H264", "video/rtx")
# H.264 as offered: constrained baseline (what Chromium's OpenH264 and hardware encoders send,
# and aiortc's packetizer takes), packetization-mode 1 (FU-A and STAP-A; mode 0 would need a NAL
# unit per packet). aiortc also offers 42001f (baseline); one profile keeps forwarding simple.
H264_PARAMETERS = {"level-asymmetry-allowed": "1", "packetization-mode": "1",
                   "profile-level-id": "42e01f"}
VIDEO_CODEC_NAMES = {"vp8": "VP8", "h264": "H.264"}

# What a participant publishes, by purpose: its transceiver's kind, and the `source` others are
# told in the offer's `tracks`.
PURPOSES = {"audio": ("audio", "microphone"), "video": ("video", "camera"),
            "screen": ("video", "screen")}
# Roles that only receive (a silent supervisor): they publish nothing, and nobody receives them.
# Screen shares started per participant: every share adds an m-line for each other participant
# (m-lines are never removed), and their answers must stay under signaling's SDP limit.
MAX_SHARES = 10


def preferred_codecs(kind: str, video_codec: str = "vp8") -> list[RTCRtpCodecCapability]:
    """The codecs every m-line of ``kind`` offers: Opus for audio, ``video_codec`` (+ RTX) for
    video."""
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    assert capabilities is not None
    h264 = kind == "video" and video_codec == "h264"
    wanted = [m.lower() for m in (H264_MIME_TYPES if h264 else CODEC_MIME_TYPES[kind])]
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() in wanted
              and (not h264 or c.mimeType.lower() != "video/h264"
                   or c.parameters == H264_PARAMETERS)]
    if not any(c.mimeType.lower() == wanted[0] for c in codecs):
        raise RuntimeError(f"aiortc offers no {wanted[0]} codec"
                           + (f" with {H264_PARAMETERS}" if h264 else ""))
    return codecs


@dataclass
class Subscription:
    """A track of another participant, sent to this participant on one sendonly transceiver."""

    publisher_id: str
    kind: str
    source: str  # microphone, camera or screen
    transceiver: RTCRtpTransceiver
    track: ForwardedTrack | RtpLeg
    info: dict[str, Any]  # role and name of the publisher, for the offer's `tracks`
    active: bool = True


class Participant:
    def __init__(self, *, room_id: str, participant_id: str, role: str, name: str,
                 department: str | None, signal: SignalFn, video_codec: str = "vp8") -> None:
        self.room_id = room_id
        self.video_codec = video_codec
        self.participant_id = participant_id
        self.role = role
        self.name = name
        self.department = department
        self.joined_at = time.time()
        self.closed = False
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.publish: dict[str, RTCRtpTransceiver] = {}
        self.subscriptions: list[Subscription] = []
        self.published: dict[str, TrackForwarder] = {}
        self.offers = 0
        # What the participant says it sends: a muted microphone or a camera turned off still
        # sends (silence, black frames); everybody is told through room:participants.
        self.audio_on = True
        self.video_on = True
        self.sharing = False
        self.shares = 0
        # The connection dropped (socket or peer connection): the place is kept for the
        # room's reconnect grace, everybody is shown "reconnecting", a rejoin replaces this one.
        self.reconnecting = False
        self.lost_at: float | None = None
        # From the audio level of what they send (TrackForwarder's SpeakingDetector).
        self.speaking = False
        self._signal = signal
        self._lock = asyncio.Lock()
        self._offer_pending = False
        self._renegotiate = False
        # Set while no offer waits for its answer (and none is due): the connection is as the
        # server last described it.
        self._negotiated = asyncio.Event()
        self._negotiated.set()
        # Screen share changes, one at a time (Room.share).
        self.share_lock = asyncio.Lock()
        if self.observer:
            # An offer needs an m-line before anything is forwarded; this one carries nothing.
            self.pc.addTransceiver("audio", direction="inactive")
            return
        for kind in ("audio", "video"):
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(preferred_codecs(kind, video_codec))
            passthrough.decode_inline(transceiver.receiver)
            passthrough.use_native_parts(transceiver.receiver)
            self.publish[kind] = transceiver

    def __repr__(self) -> str:
        return f"Participant(room={self.room_id} id={self.participant_id} role={self.role})"

    @property
    def observer(self) -> bool:
        """Receives everybody, publishes nothing (a silent supervisor)."""
        return self.role in OBSERVER_ROLES

    def info(self) -> dict[str, Any]:
        return {"participant_id": self.participant_id, "role": self.role, "name": self.name,
                "department": self.department, "observer": self.observer,
                "muted": not self.audio_on or self.observer,
                "camera_off": not self.video_on or self.observer, "sharing": self.sharing,
                "reconnecting": self.reconnecting, "speaking": self.speaking}

    def receive_inline(self) -> None:
        """Take the media arriving on this connection without aiortc's receive queue (passthrough
        14.); call it once the connection is up."""
        transports = {id(t.receiver.transport): t.receiver.transport
                      for t in self.pc.getTransceivers()}
        for transport in transports.values():
            if not passthrough.receive_inline(transport):
                logger.warning("room %s participant %s: the transport is not connected; its "
                               "media keeps aiortc's receive path", self.room_id,
                               self.participant_id)

    def purpose_of(self, transceiver: RTCRtpTransceiver) -> str | None:
        """audio, video or screen: what ``transceiver`` receives from this participant."""
        return next((purpose for purpose, t in self.publish.items() if t is transceiver), None)

    def start_share(self) -> None:
        """Receive a screen: a recvonly video transceiver, added at the first share and made
        recvonly again at the next ones; renegotiate afterwards."""
        if self.shares >= MAX_SHARES:
            raise ShareLimit(f"{self.participant_id} started {MAX_SHARES} screen shares already")
        self.shares += 1
        self.sharing = True
        transceiver = self.publish.get("screen")
        if transceiver is None:
            transceiver = self.pc.addTransceiver("video", direction="recvonly")
            transceiver.setCodecPreferences(preferred_codecs("video", self.video_codec))
            # Reused from share to share: a packet dropped at a direction change would stall it.
            passthrough.keep_receiving(transceiver.receiver)
            passthrough.decode_inline(transceiver.receiver)
            passthrough.use_native_parts(transceiver.receiver)
            self.publish["screen"] = transceiver
        else:
            transceiver.direction = "recvonly"

    def stop_share(self) -> None:
        """Stop receiving the screen (the transceiver goes inactive); renegotiate afterwards."""
        self.sharing = False
        transceiver = self.publish.get("screen")
        if transceiver is not None:
            transceiver.direction = "inactive"

    def subscribe(self, forwarder: TrackForwarder, publisher: Participant,
                  purpose: str) -> Subscription:
        """Add a sendonly transceiver carrying ``forwarder``'s track (what ``publisher`` publishes
        for ``purpose``); renegotiate afterwards."""
        track = forwarder.subscribe(self.participant_id)
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(preferred_codecs(forwarder.kind, self.video_codec))
        passthrough.relay_keyframe_requests(transceiver.sender, forwarder.request_keyframe)
        if isinstance(track, RtpLeg):
            # The level travels in the forwarded packet's own extension.
            track.bind(transceiver.sender)
        elif forwarder.kind == "audio":
            frame_track = track
            passthrough.forward_audio_levels(transceiver.sender, lambda: frame_track.last_level)
        subscription = Subscription(publisher_id=publisher.participant_id, kind=forwarder.kind,
                                    source=PURPOSES[purpose][1], transceiver=transceiver,
                                    track=track,
                                    info={"role": publisher.role, "name": publisher.name})
        self.subscriptions.append(subscription)
        return subscription

    def subscribed(self, publisher_id: str, source: str) -> bool:
        """True when this participant receives ``publisher_id``'s ``source`` track already."""
        return any(s.publisher_id == publisher_id and s.source == source and s.active
                   for s in self.subscriptions)

    def unsubscribe(self, publisher_id: str, source: str | None = None) -> bool:
        """Stop the tracks of ``publisher_id`` (only its ``source`` one if given); True when a
        renegotiation should follow."""
        changed = False
        for subscription in self.subscriptions:
            if (subscription.publisher_id == publisher_id and subscription.active
                    and source in (None, subscription.source)):
                subscription.active = False
                subscription.track.stop()
                subscription.transceiver.direction = "inactive"
                changed = True
        return changed

    def offer_payload(self) -> dict[str, Any]:
        tracks = [
            {"mid": s.transceiver.mid, "kind": s.kind, "participant_id": s.publisher_id,
             "role": s.info["role"], "name": s.info["name"], "source": s.source}
            for s in self.subscriptions if s.active and s.transceiver.mid is not None
        ]
        description = self.pc.localDescription
        return {"sdp": description.sdp,
                "publish": {purpose: t.mid for purpose, t in self.publish.items()
                            if purpose != "screen" or self.sharing},
                "tracks": tracks}

    async def negotiate(self) -> None:
        """Send a new offer now, or right after the pending answer arrives."""
        async with self._lock:
            # Reconnecting: its peer connection may be closed; the rejoin makes a new one.
            if self.closed or self.reconnecting:
                return
            if self._offer_pending:
                self._renegotiate = True
                return
            await self._send_offer()

    async def _send_offer(self) -> None:
        self._renegotiate = False
        # setLocalDescription gathers the ICE candidates before returning, so the SDP is complete.
        self._negotiated.clear()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._offer_pending = True
        self.offers += 1
        payload = self.offer_payload()
        logger.info("room %s participant %s: offer #%d (%d forwarded track(s))", self.room_id,
                    self.participant_id, self.offers, len(payload["tracks"]))
        await self._signal("room:offer", payload)

    async def answer(self, sdp: str) -> None:
        async with self._lock:
            if self.closed:
                raise RoomClosed(f"participant {self.participant_id} has left")
            if not self._offer_pending:
                raise NoPendingOffer(f"no offer is waiting for an answer from "
                                     f"{self.participant_id}")
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:
                logger.warning("room %s participant %s: answer refused: %s", self.room_id,
                               self.participant_id, exc)
                if "remote video description" in str(exc):
                    # aiortc found no codec in common on a video m-line: the client cannot do
                    # the one video codec this server forwards.
                    name = VIDEO_CODEC_NAMES.get(self.video_codec, self.video_codec)
                    raise UnsupportedCodec(f"the answer has no usable video codec: this server "
                                        f"sends and receives only {name} video, which the "
                                        f"client does not support") from exc
                raise InvalidAnswer(f"the answer cannot be used: {exc}") from exc
            self._offer_pending = False
            if self._renegotiate:
                await self._send_offer()
            else:
                self._negotiated.set()

    async def wait_negotiated(self, timeout: float) -> bool:
        """Wait until no offer waits for its answer; False after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._negotiated.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def signal(self, event: str, payload: dict[str, Any]) -> None:
        """Send an event to this participant; a failure is logged, never raised."""
        if self.closed:
            return
        try:
            await self._signal(event, payload)
        except Exception:
            logger.exception("room %s participant %s: sending %s failed", self.room_id,
                             self.participant_id, event)

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._negotiated.set()
        logger.info("room %s participant %s: closing (%s)", self.room_id, self.participant_id,
                    reason)
        for subscription in self.subscriptions:
            subscription.track.stop()
        forwarders = list(self.published.values())
        self.published.clear()
        for forwarder in forwarders:
            await forwarder.close()
        try:
            await self.pc.close()
        except Exception:
            logger.exception("room %s participant %s: closing the peer connection failed",
                             self.room_id, self.participant_id)
