from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

class RemoteBitrateEstimator:
    """aiortc.rate.RemoteBitrateEstimator's rules in C (rooms/_native.c)."""

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int,
            ssrc: int) -> tuple[int, list[int]] | None: ...

class JitterBuffer:
    """aiortc.jitterbuffer.JitterBuffer in C (rooms/_native.c)."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None: ...
    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]: ...

def vp8_depayload(payload: bytes) -> bytes: ...
