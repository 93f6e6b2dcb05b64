"""The signaling layer's configuration: the hall's clock and what a socket may send. The service's
config loader composes it from the top-level settings of the TOML file and YUNZHEN_* variables."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from rooms.config import ConfigError


@dataclass(frozen=True)
class SignalingConfig:
    # The hall's time zone: service hours are local times.
    timezone: str = "Asia/Shanghai"
    # Largest Socket.IO payload accepted, in bytes.
    max_payload_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.max_payload_bytes < 1024:
            raise ConfigError("max_payload_bytes must be at least 1024")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"timezone: {self.timezone!r} is not a known time zone") from None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_time(self, when: float) -> dt.datetime:
        """An epoch time on the hall's clock."""
        return dt.datetime.fromtimestamp(when, self.zone)
