"""RTP-level forwarding (media.forwarding = "rtp"): each RTP packet a publisher sends goes to every
subscriber's leg with its SSRC, payload type, sequence number, timestamp and header extensions
rewritten, then is encrypted by the subscriber's transport; no frame is assembled or re-packetized.

The pieces of aiortc each leg borrows (private names, listed in rooms/passthrough.py 8.–12.): the
sender's negotiated parameters, its RTCP loop (sender reports from the counters a leg keeps up to
date) and its transport's SRTP session and ICE pair (``rtp_sender``: a packet is forwarded with
no coroutine from the receiver's hook to the socket). Pure rules (sequence and timestamp
rewriting, keyframe starts, the packets' bytes) have no asyncio and are tested synchronously.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable, Iterable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket

from rooms import passthrough

logger = logging.getLogger(__name__)

# Rewritten packets kept per leg to answer a subscriber's NACK: about 2 s of 640x480 video.
RTP_CACHE = 512
# How far behind the newest packet sent a late packet may still go out: libsrtp refuses to
# protect an index older than its replay window (128), and a subscriber has given up on it by then.
REORDER_WINDOW = 64
# Sources a leg remembers having left: a late retransmission of one must not switch back to it.
RETIRED_SOURCES = 8

# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_OFFSET = 2_208_988_800
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
_HEADER = struct.Struct("!BBHII")      # V=2 P X CC, M PT, sequence number, timestamp, SSRC
_EXTENSIONS = struct.Struct("!HH")     # the one-byte form's profile 0xBEDE, length in words


def ntp_time(now: float) -> int:
    """``now`` (Unix seconds) as a 64-bit NTP timestamp."""
    return int((now + NTP_OFFSET) * (1 << 32))


def rtp_bytes(payload_type: int, marker: int, sequence: int, timestamp: int, ssrc: int,
              extensions: bytes, payload: bytes) -> bytes:
    """An RTP packet (RFC 3550) with no CSRC: the 12-byte header, ``extensions`` (a whole
    extension block or nothing) and ``payload``."""
    return _HEADER.pack(0x90 if extensions else 0x80, (marker << 7) | payload_type,
                        sequence, timestamp, ssrc) + extensions + payload


class ExtensionWriter:
    """The header extensions of one leg's packets in the one-byte form (RFC 8285), written
    directly: the leg's mid, abs-send-time, and on audio the publisher's level (RFC 6464), each
    only when the subscriber negotiated it. (An id above 14 cannot be written in this form; the
    extension is then left out, as is a mid over 16 bytes: aiortc offers ids from 1 up.)"""

    def __init__(self, negotiated: Iterable[RTCRtpHeaderExtensionParameters],
                 mid: str | None) -> None:
        ids = {e.uri: e.id for e in negotiated if 0 < e.id <= 14}
        mid_bytes = (mid or "").encode()
        self._mid = (bytes(((ids[MID] << 4) | (len(mid_bytes) - 1),)) + mid_bytes
                     if MID in ids and 0 < len(mid_bytes) <= 16 else b"")
        self._abs_send_time = (ids[ABS_SEND_TIME] << 4) | 2 if ABS_SEND_TIME in ids else None
        self._audio_level = ids[AUDIO_LEVEL] << 4 if AUDIO_LEVEL in ids else None

    def block(self, now: float, audio_level: tuple[bool, int] | None) -> bytes:
        """The extension block of a packet sent at ``now`` (Unix seconds), or b"" for none."""
        body = self._mid
        if self._abs_send_time is not None:
            # 6.18 fixed-point seconds, the low 24 bits.
            body += bytes((self._abs_send_time,)) + (
                int((now + NTP_OFFSET) * (1 << 18)) & 0xFFFFFF).to_bytes(3, "big")
        if audio_level is not None and self._audio_level is not None:
            body += bytes((self._audio_level, (audio_level[0] << 7) | audio_level[1]))
        if not body:
            return b""
        body += b"\0" * (-len(body) % 4)
        return _EXTENSIONS.pack(0xBEDE, len(body) // 4) + body


def _newer16(a: int, b: int) -> bool:
    """True when 16-bit sequence number ``a`` comes after ``b`` (RFC 1982 arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class SequenceRewriter:
    """One leg's output numbering: the input's sequence numbers and timestamps plus an offset, so
    gaps, reordering and retransmissions survive; when the input source changes (a new SSRC: a
    track replaced, a screen share restarted) the offsets are chosen again so the output goes on
    from where it was, its timestamp advanced by the wall-clock time in between."""

    def __init__(self, first_sequence: int, first_timestamp: int) -> None:
        self._source: int | None = None
        self._retired: list[int] = []
        self._seq_offset = 0
        self._ts_offset = 0
        self._next_sequence = first_sequence & 0xFFFF
        self._next_timestamp = first_timestamp & 0xFFFFFFFF
        self._max_sequence: int | None = None
        # The first output sequence number of the current source: a late packet of the source
        # from before it would reuse a number already sent (SRTP refuses to protect it twice).
        self._source_start = self._next_sequence
        self._last_timestamp = 0
        self._last_time = 0.0

    def rewrite(self, source: int, sequence: int, timestamp: int, now: float,
                clock_rate: int) -> tuple[int, int] | None:
        """The output (sequence number, timestamp) of an input packet, or None to drop it (it
        belongs to a source this leg has left, comes from before the source's first packet here,
        or more than REORDER_WINDOW too late)."""
        if source != self._source:
            if source in self._retired:
                return None
            if self._source is not None:
                self._retired = [*self._retired, self._source][-RETIRED_SOURCES:]
                assert self._max_sequence is not None
                self._next_sequence = (self._max_sequence + 1) & 0xFFFF
                elapsed = max(1, int((now - self._last_time) * clock_rate))
                self._next_timestamp = (self._last_timestamp + elapsed) & 0xFFFFFFFF
            self._source = source
            self._source_start = self._next_sequence
            self._seq_offset = (self._next_sequence - sequence) & 0xFFFF
            self._ts_offset = (self._next_timestamp - timestamp) & 0xFFFFFFFF
        out_sequence = (sequence + self._seq_offset) & 0xFFFF
        if _newer16(self._source_start, out_sequence):
            return None
        out_timestamp = (timestamp + self._ts_offset) & 0xFFFFFFFF
        if self._max_sequence is None or _newer16(out_sequence, self._max_sequence):
            self._max_sequence = out_sequence
            self._last_timestamp = out_timestamp
            self._last_time = now
        elif (self._max_sequence - out_sequence) & 0xFFFF > REORDER_WINDOW:
            return None
        return out_sequence, out_timestamp


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
    packets reach the sender's transport through ``forward``. A video leg starts at a keyframe,
    asked from the publisher by ``request_keyframe``.
    """

    def __init__(self, kind: str, request_keyframe: Callable[[], None], label: str,
                 clock_fn: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.kind = kind
        self.label = label
        self.packets = 0
        self.retransmits = 0
        self.drops = 0
        self._request_keyframe = request_keyframe
        self._clock = clock_fn
        self._sender: RTCRtpSender | None = None
        self._codec: RTCRtpCodecParameters | None = None
        self._publisher_codec: RTCRtpCodecParameters | None = None
        self._rtx_payload_type: int | None = None
        self._rtx_sequence = 0
        self._active = False
        self._need_keyframe = kind == "video"
        self._stopped = asyncio.Event()
        self._writer: ExtensionWriter | None = None
        self._send: Callable[[bytes], bool] | None = None
        # Sent packets by sequence number modulo RTP_CACHE, to answer NACKs:
        # (sequence number, marker, timestamp, extension block, payload).
        self._cache: dict[int, tuple[int, int, int, bytes, bytes]] = {}
        self._rewriter: SequenceRewriter | None = None

    def bind(self, sender: RTCRtpSender) -> None:
        """Take the negotiated parameters of ``sender`` when it starts, and answer its NACKs."""
        self._sender = sender
        passthrough.capture_send_parameters(sender, self._on_send)
        passthrough.answer_nacks(sender, self._retransmit)

    def _on_send(self, parameters: RTCRtpSendParameters) -> None:
        codec = parameters.codecs[0]
        self._codec = codec
        self._publisher_codec = None
        self._writer = ExtensionWriter(parameters.headerExtensions, parameters.muxId)
        assert self._sender is not None
        self._send = passthrough.rtp_sender(self._sender)
        for other in parameters.codecs:
            if (other.mimeType.lower().endswith("/rtx")
                    and other.parameters.get("apt") == codec.payloadType):
                self._rtx_payload_type = other.payloadType
        # aiortc calls send() again on every renegotiation; the numbering goes on.
        if self._rewriter is None:
            self._rewriter = SequenceRewriter(random.getrandbits(16), random.getrandbits(32))
            self._rtx_sequence = random.getrandbits(16)

    async def recv(self) -> RtpPacket:  # type: ignore[override]
        # The sender's RTP loop is running: the leg goes live; it never yields anything itself.
        if not self._active and self.readyState == "live":
            self._active = True
            if self._need_keyframe:
                self._request_keyframe()
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()
        self._cache.clear()

    def forward(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> None:
        """Rewrite ``packet`` (the publisher's, decrypted, RTX undone) for this leg and send it."""
        sender = self._sender
        own = self._codec
        send = self._send
        if (not self._active or sender is None or own is None or own.payloadType is None
                or self._rewriter is None or send is None or self.readyState != "live"):
            return
        if codec is not self._publisher_codec:
            # The publisher's codec objects change only on renegotiation: compare names then.
            if own.mimeType.lower() != codec.mimeType.lower():
                self.drops += 1
                return
            self._publisher_codec = codec
        if self._need_keyframe:
            if not starts_keyframe(own.name.lower(), packet.payload):
                self._request_keyframe()
                return
            self._need_keyframe = False
        rewritten = self._rewriter.rewrite(packet.ssrc, packet.sequence_number,
                                           packet.timestamp, self._clock(), own.clockRate)
        if rewritten is None:
            self.drops += 1
            return
        sequence, timestamp = rewritten
        slot = sequence % RTP_CACHE
        sent = self._cache.get(slot)
        if sent is not None and sent[0] == sequence:
            return  # the publisher's retransmission of a packet this leg sent: SRTP refuses it
        assert self._writer is not None
        now = time.time()
        extensions = self._writer.block(now, packet.extensions.audio_level)
        self._cache[slot] = (sequence, packet.marker, timestamp, extensions, packet.payload)
        data = rtp_bytes(own.payloadType, packet.marker, sequence, timestamp, sender._ssrc,
                         extensions, packet.payload)
        if not send(data):
            return
        self.packets += 1
        passthrough.count_sent(sender, ntp_time(now), timestamp, len(packet.payload))

    async def _retransmit(self, sequence_number: int) -> None:
        """Answer a NACK from the cache: RTX where negotiated, else the packet again."""
        sender = self._sender
        own = self._codec
        sent = self._cache.get(sequence_number % RTP_CACHE)
        if (sender is None or own is None or own.payloadType is None or self._send is None
                or sent is None or sent[0] != sequence_number):
            return
        sequence, marker, timestamp, extensions, payload = sent
        if self._rtx_payload_type is not None:  # RFC 4588: the original number, then payload
            data = rtp_bytes(self._rtx_payload_type, marker, self._rtx_sequence, timestamp,
                             sender._rtx_ssrc, extensions, sequence.to_bytes(2, "big") + payload)
            self._rtx_sequence = (self._rtx_sequence + 1) & 0xFFFF
        else:
            data = rtp_bytes(own.payloadType, marker, sequence, timestamp, sender._ssrc,
                             extensions, payload)
        if self._send(data):
            self.retransmits += 1
