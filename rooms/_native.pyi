"""rooms._native (rooms/native/*.c), for mypy."""

from collections.abc import Callable, Sequence
from typing import Any

from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

class RemoteBitrateEstimator:
    """aiortc.rate.RemoteBitrateEstimator's rules in C (rooms/native/rate.c)."""

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int,
            ssrc: int) -> tuple[int, list[int]] | None: ...

class JitterBuffer:
    """aiortc.jitterbuffer.JitterBuffer in C (rooms/native/jitter.c)."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None: ...
    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]: ...

def vp8_depayload(payload: bytes) -> bytes: ...

class Srtp:
    """A pylibsrtp session's protect and unprotect, in C (rooms/native/srtp.c)."""

    def __init__(self, owner: object, session: int, protect: int, unprotect: int,
                 protect_rtcp: int, unprotect_rtcp: int) -> None: ...
    def protect(self, packet: bytes) -> bytes: ...
    def unprotect(self, packet: bytes) -> bytes: ...
    def protect_rtcp(self, packet: bytes) -> bytes: ...
    def unprotect_rtcp(self, packet: bytes) -> bytes: ...

RTP_CACHE: int
REORDER_WINDOW: int
RETIRED_SOURCES: int

class RtpSink:
    """A synchronous SRTP send on an aiortc DTLS transport, in C (rooms/native/sink.c)."""

    sent: int
    dropped: int

    def __init__(self, dtls: object, nominated: dict[int, Any], connected: object,
                 make_srtp: Callable[[Any], Srtp]) -> None: ...
    def send(self, packet: bytes) -> bool: ...
    def send_rtcp(self, packet: bytes) -> bool: ...

class LegWriter:
    """One RTP leg's rewriting, packets and NACK cache, in C (rooms/native/leg.c)."""

    drops: int
    packets: int
    octets: int
    ntp_timestamp: int
    rtp_timestamp: int
    live: bool
    gate: Callable[[bytes], bool] | None

    def __init__(self, first_sequence: int, first_timestamp: int,
                 first_rtx_sequence: int) -> None: ...
    def configure(self, payload_type: int, ssrc: int, rtx_payload_type: int, rtx_ssrc: int,
                  mid: bytes, abs_send_time_header: int, audio_level_header: int) -> None: ...
    def rewrite(self, source: int, sequence: int, timestamp: int, now: float,
                clock_rate: float) -> tuple[int, int] | None: ...
    def write(self, source: int, sequence: int, timestamp: int, marker: int, payload: bytes,
              audio_level: tuple[bool, int] | None, now: float, wall: float,
              clock_rate: float) -> tuple[bytes, int] | None: ...
    def retransmit(self, sequence: int) -> bytes | None: ...
    def clear(self) -> None: ...
    def attach(self, sink: RtpSink, mime_type: str, clock_rate: float) -> None: ...
    def detach(self) -> None: ...

def forward(legs: Sequence[LegWriter], packet: RtpPacket, codec: RTCRtpCodecParameters,
            now: float, wall: float) -> int: ...

class StreamStatistics:
    """aiortc.rtcrtpreceiver.StreamStatistics in C (rooms/native/stats.c)."""

    base_seq: int | None
    max_seq: int | None
    cycles: int
    packets_received: int
    jitter: int
    packets_expected: int
    packets_lost: int
    fraction_lost: int

    def __init__(self, clockrate: int) -> None: ...
    def add(self, packet: RtpPacket, now: float | None = None) -> None: ...

class NackGenerator:
    """aiortc.rtcrtpreceiver.NackGenerator in C (rooms/native/stats.c)."""

    max_seq: int | None
    missing: set[int]

    def add(self, packet: RtpPacket) -> bool: ...
    def truncate(self) -> None: ...

FEEDBACK_REMB: int
FEEDBACK_NACK: int
FEEDBACK_PLI: int
FEEDBACK_ERROR: int

class Route:
    """How Inbound takes one source's media packets (rooms/native/inbound.c)."""

    packets: int

    def __init__(self, *, receiver: object, codec: RTCRtpCodecParameters,
                 writers: list[LegWriter] | None, clock: Callable[[], float] | None,
                 on_level: Callable[[int, int], None] | None,
                 estimator: RemoteBitrateEstimator | None, statistics: StreamStatistics,
                 nacks: NackGenerator | None, jitter: JitterBuffer,
                 on_feedback: Callable[[int, Any], None], on_frame: Callable[[Any], None],
                 active: dict[int, Any], now_datetime: Callable[[], Any],
                 decoder_error: Any, payload_type: int, video: bool, vp8: bool,
                 extension_ids: tuple[int, ...]) -> None: ...

class Inbound:
    """A DTLS transport's datagram_received, in C for the sources in ``routes``
    (rooms/native/inbound.c)."""

    routes: dict[int, Route | None]

    def __init__(self, original: Callable[[bytes, Any], None], dtls: object, connected: object,
                 srtp: Srtp, slow: Callable[[bytes, int], None], rtcp: Callable[[bytes], None],
                 router: object) -> None: ...
    def __call__(self, data: bytes, addr: Any) -> None: ...
