"""The signaling layer's configuration: the hall's clock, what a socket may send, and the queue's
policy times (passed to the queue script with every operation). The service's config loader
composes it from the top-level settings of the TOML file and YUNZHEN_* variables."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from rooms.config import ConfigError

# Bounds of the policy times, in seconds. A ticket's grace also covers the moment between taking
# it and its kiosk's socket being counted, so it cannot be (nearly) zero.
MIN_TICKET_GRACE = 5
MAX_POLICY_S = 3600
MAX_CALLBACK_KEEP_DAYS = 3650


@dataclass(frozen=True)
class SignalingConfig:
    # The hall's time zone: service hours are local times.
    timezone: str = "Asia/Shanghai"
    # Largest Socket.IO payload accepted, in bytes.
    max_payload_bytes: int = 64 * 1024
    # Seconds a staff member whose desk sockets are all gone stays on duty (not rung) before
    # going offline: a page reload or a short network drop does not sign them off.
    staff_grace: float = 20.0
    # Seconds an applicant whose sockets are all gone keeps their place before the ticket is
    # abandoned; also the time a new ticket has for its first socket to be counted.
    ticket_grace: float = 60.0
    # Seconds before a staff member who declined or missed a ticket may be rung for it again.
    decline_cooldown: float = 30.0
    # Days a call-back request (the applicant's name and phone number) is kept, done or not,
    # before the clock deletes it (PIPL: no longer than its purpose needs).
    callback_keep_days: int = 30

    def __post_init__(self) -> None:
        if self.max_payload_bytes < 1024:
            raise ConfigError("max_payload_bytes must be at least 1024")
        for name, low in (("staff_grace", 0), ("ticket_grace", MIN_TICKET_GRACE),
                          ("decline_cooldown", 0)):
            value = getattr(self, name)
            if not low <= value <= MAX_POLICY_S:
                raise ConfigError(f"{name}: {value:g} is not between {low} and {MAX_POLICY_S} "
                                  "seconds")
        if not 1 <= self.callback_keep_days <= MAX_CALLBACK_KEEP_DAYS:
            raise ConfigError(f"callback_keep_days: {self.callback_keep_days} is not between 1 "
                              f"and {MAX_CALLBACK_KEEP_DAYS}")
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
