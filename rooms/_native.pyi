class RemoteBitrateEstimator:
    """aiortc.rate.RemoteBitrateEstimator's rules in C (rooms/_native.c)."""

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int,
            ssrc: int) -> tuple[int, list[int]] | None: ...
