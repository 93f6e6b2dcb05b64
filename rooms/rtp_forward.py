"""RTP-level forwarding (media.forwarding = "rtp"): each RTP packet a publisher sends goes to every
subscriber's leg with its SSRC, payload type, sequence number, timestamp and header extensions
rewritten, then is encrypted by the subscriber's transport; no frame is assembled or re-packetized.

The pieces of aiortc each leg borrows (private names, listed in rooms/passthrough.py 8.–12.): the
sender's negotiated parameters, its RTCP loop (sender reports from the counters a leg keeps up to
date) and its transport's SRTP session and ICE pair (``rtp_sender``: a packet is forwarded with
no coroutine from the receiver's hook to the socket). The per-packet work is in C:
rooms._native.LegWriter holds a leg's rules (sequence and timestamp rewriting, the packets'
bytes, the NACK cache), and ``rooms._native.forward`` hands a publisher's packet to all its
legs at once, each sent on its RtpSink and counted for its sender reports. Keyframe starts,
looked for only until a video leg's first, are found here. Both have no asyncio and are tested
synchronously.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import (
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket

from rooms import passthrough
from rooms._native import LegWriter, RtpSink

logger = logging.getLogger(__name__)

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def extension_headers(negotiated: Iterable[RTCRtpHeaderExtensionParameters],
                      mid: str | None) -> tuple[bytes, int, int]:
    """What a leg writes in the one-byte form of header extensions (RFC 8285), each only when
    the subscriber negotiated it: the mid's whole element (b"" for none), and the first bytes
    of the abs-send-time and audio level (RFC 6464) elements (-1 for none). An id above 14
    cannot be written in this form; the extension is then left out, as is a mid over 16
    bytes (aiortc offers ids from 1 up)."""
    ids = {e.uri: e.id for e in negotiated if 0 < e.id <= 14}
    mid_bytes = (mid or "").encode()
    mid_element = (bytes(((ids[MID] << 4) | (len(mid_bytes) - 1),)) + mid_bytes
                   if MID in ids and 0 < len(mid_bytes) <= 16 else b"")
    return (mid_element, (ids[ABS_SEND_TIME] << 4) | 2 if ABS_SEND_TIME in ids else -1,
            ids[AUDIO_LEVEL] << 4 if AUDIO_LEVEL in ids else -1)


def vp8_starts_keyframe(payload: bytes) -> bool:
    """True when an RTP VP8 payload (RFC 7741) is the first packet of a keyframe."""
    if len(payload) < 1:
        return False
    descriptor = payload[0]
    # S (start of partition) and partition index 0: the VP8 payload header follows.
    if not descriptor & 0x10 or descriptor & 0x07:
        return False
    offset = 1
    if descriptor & 0x80:
        if len(payload) < 2:
            return False
        extension = payload[1]
        offset = 2
        if extension & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if extension & 0x40:  # L: TL0PICIDX
            offset += 1
        if extension & 0x30:  # T or K: TID/Y/KEYIDX
            offset += 1
    # VP8 payload header: P bit clear on a keyframe.
    return len(payload) > offset and not payload[offset] & 0x01


_H264_KEY_NALS = (5, 7)  # an IDR slice, or an SPS (which comes first in a keyframe)


def h264_starts_keyframe(payload: bytes) -> bool:
    """True when an RTP H.264 payload (RFC 6184, packetization-mode 1) holds the start of an IDR
    slice or an SPS."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal == 24:  # STAP-A: 16-bit sizes, then the NAL units
        offset = 1
        while offset + 2 < len(payload):
            size = int.from_bytes(payload[offset:offset + 2], "big")
            if payload[offset + 2] & 0x1F in _H264_KEY_NALS:
                return True
            offset += 2 + size
        return False
    if nal == 28:  # FU-A: the start fragment names the NAL type
        return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in _H264_KEY_NALS
    return nal in _H264_KEY_NALS


def starts_keyframe(codec_name: str, payload: bytes) -> bool:
    if codec_name == "vp8":
        return vp8_starts_keyframe(payload)
    if codec_name == "h264":
        return h264_starts_keyframe(payload)
    return True


class RtpLeg(MediaStreamTrack):
    """One subscriber's copy of one published track, forwarded packet by packet.

    It is the track of the subscriber's sendonly transceiver only so that aiortc negotiates and
    starts the sender: the sender's own RTP loop waits in ``recv`` until the leg stops, and
    packets reach the sender's transport through ``rooms._native.forward`` on ``writer``, which
    sends once the sender has started and its loop runs (``writer.live``). A video leg starts at
    a keyframe, asked from the publisher by ``request_keyframe``.
    """

    def __init__(self, kind: str, request_keyframe: Callable[[], None], label: str) -> None:
        super().__init__()
        self.kind = kind
        self.label = label
        self.retransmits = 0
        self._request_keyframe = request_keyframe
        self._sender: RTCRtpSender | None = None
        self._sink: RtpSink | None = None
        self._codec_name = ""
        self._stopped = asyncio.Event()
        # The numbering, the packets' bytes, the NACK cache and the send (rooms/native/leg.c).
        self.writer = LegWriter(random.getrandbits(16), random.getrandbits(32),
                                random.getrandbits(16))
        if kind == "video":
            self.writer.gate = self._starts_keyframe

    @property
    def packets(self) -> int:
        return self.writer.packets

    @property
    def drops(self) -> int:
        """Packets not forwarded: of another codec, or refused by the rewriting rules."""
        return self.writer.drops

    def bind(self, sender: RTCRtpSender) -> None:
        """Take the negotiated parameters of ``sender`` when it starts, and answer its NACKs."""
        self._sender = sender
        passthrough.report_leg(sender, self.writer)
        passthrough.capture_send_parameters(sender, self._on_send)
        passthrough.answer_nacks(sender, self._retransmit)

    def _on_send(self, parameters: RTCRtpSendParameters) -> None:
        codec = parameters.codecs[0]
        assert self._sender is not None and codec.payloadType is not None
        rtx_payload_type = next(
            (other.payloadType for other in parameters.codecs
             if other.mimeType.lower().endswith("/rtx")
             and other.parameters.get("apt") == codec.payloadType
             and other.payloadType is not None), -1)
        # aiortc calls send() again on every renegotiation; the numbering goes on.
        self.writer.configure(codec.payloadType, self._sender._ssrc, rtx_payload_type,
                              self._sender._rtx_ssrc,
                              *extension_headers(parameters.headerExtensions, parameters.muxId))
        self._codec_name = codec.name.lower()
        self._sink = passthrough.rtp_sender(self._sender)
        self.writer.attach(self._sink, codec.mimeType.lower(), codec.clockRate)

    async def recv(self) -> RtpPacket:  # type: ignore[override]
        # The sender's RTP loop is running: the leg goes live; it never yields anything itself.
        if not self.writer.live and self.readyState == "live":
            self.writer.live = True
            if self.writer.gate is not None:
                self._request_keyframe()
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()
        self.writer.detach()

    def _starts_keyframe(self, payload: bytes) -> bool:
        """The gate of a video leg: open at a keyframe's first packet; until then each packet
        asks the publisher for one."""
        if starts_keyframe(self._codec_name, payload):
            return True
        self._request_keyframe()
        return False

    async def _retransmit(self, sequence_number: int) -> None:
        """Answer a NACK from the cache: RTX where negotiated, else the packet again."""
        data = self.writer.retransmit(sequence_number)
        if data is not None and self._sink is not None and self._sink.send(data):
            self.retransmits += 1
