"""The signaling layer's configuration: the hall's clock, what a socket may send, the queue's
policy times (passed to the queue script with every operation) and the abuse limits. The
service's config loader composes it from the top-level settings of the TOML file and YUNZHEN_*
variables."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from rooms.config import ConfigError
from signaling.workdays import WorkCalendar, parse_dates

# Bounds of the policy times, in seconds. A ticket's grace also covers the moment between taking
# it and its kiosk's socket being counted, so it cannot be (nearly) zero.
MIN_TICKET_GRACE = 5
MAX_POLICY_S = 3600
MAX_CALLBACK_KEEP_DAYS = 3650
MAX_TICKET_KEEP_HOURS = 24 * 365
# The abuse limits that count something (0 turns one off), and their upper bound.
COUNT_LIMITS = ("max_tickets_per_socket", "max_tickets_per_address",
                "ticket_creations_per_minute", "callbacks_per_minute",
                "callbacks_per_phone_per_day", "max_sockets_per_address")
MAX_COUNT_LIMIT = 1_000_000
# Bounds of a 差评 case's deadline and of its near-due warning, in working days.
MAX_CASE_DUE_WORKING_DAYS = 250
# Every abuse limit off: for load tests and benchmarks, whose thousands of clients come from one
# address (the settings' names; each is 0).
NO_LIMITS: dict[str, int] = {name: 0 for name in (*COUNT_LIMITS, "events_per_second")}


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
    # Hours an ended ticket (cancelled, abandoned, ended) stays in Redis before it expires: the
    # applicant's page can still show and rate it meanwhile.
    ticket_keep_hours: int = 48
    # Abuse limits of the anonymous side (kiosks and home browsers; 0 turns a limit off). A
    # client's address is the one signaling/forwarded.py finds behind the trusted proxies; a
    # registered kiosk (signaling/limits.py `is_registered_device`) holds one open ticket per
    # device instead (signaling/devices.py) and is held to none of its address's limits.
    # Open tickets (waiting, ringing or in a call) one /kiosk socket may hold.
    max_tickets_per_socket: int = 1
    # Open tickets of all the sockets of one client address.
    max_tickets_per_address: int = 3
    # Tickets taken, and call-backs requested, per client address per minute.
    ticket_creations_per_minute: int = 6
    callbacks_per_minute: int = 3
    # Call-back requests for one phone number per day.
    callbacks_per_phone_per_day: int = 3
    # /kiosk sockets open at once from one client address.
    max_sockets_per_address: int = 20
    # Events one socket may send per second on any namespace (a token bucket of event_burst;
    # 0 turns it off).
    events_per_second: float = 20.0
    event_burst: int = 40
    # 好差评: a rating of 1 or 2 opens a case for the department, due this many working days
    # after the day it opened (counted from the next working day; signaling/workdays.py), and
    # supervisors are alerted when it is this many working days or fewer from its due date.
    case_due_working_days: int = 15
    case_warn_working_days: int = 3
    # Extra holidays and working days (YYYY-MM-DD) on top of chinese-calendar's: for the years
    # it does not know yet (it raises for them; Monday to Friday are then working days) and for
    # local days off. A date may not be in both.
    extra_holidays: tuple[str, ...] = ()
    extra_workdays: tuple[str, ...] = ()

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
        if not 1 <= self.ticket_keep_hours <= MAX_TICKET_KEEP_HOURS:
            raise ConfigError(f"ticket_keep_hours: {self.ticket_keep_hours} is not between 1 "
                              f"and {MAX_TICKET_KEEP_HOURS}")
        for name in COUNT_LIMITS:
            value = getattr(self, name)
            if not 0 <= value <= MAX_COUNT_LIMIT:
                raise ConfigError(f"{name}: {value} is not between 0 (no limit) and "
                                  f"{MAX_COUNT_LIMIT}")
        if not 0 <= self.events_per_second <= 10_000:
            raise ConfigError(f"events_per_second: {self.events_per_second:g} is not between 0 "
                              "(no limit) and 10000")
        if not 1 <= self.event_burst <= MAX_COUNT_LIMIT:
            raise ConfigError(f"event_burst: {self.event_burst} is not between 1 and "
                              f"{MAX_COUNT_LIMIT}")
        if not 1 <= self.case_due_working_days <= MAX_CASE_DUE_WORKING_DAYS:
            raise ConfigError(f"case_due_working_days: {self.case_due_working_days} is not "
                              f"between 1 and {MAX_CASE_DUE_WORKING_DAYS}")
        if not 0 <= self.case_warn_working_days < self.case_due_working_days:
            raise ConfigError(f"case_warn_working_days: {self.case_warn_working_days} is not "
                              "between 0 and case_due_working_days - 1")
        try:
            self.calendar()
        except ValueError as error:
            raise ConfigError(str(error)) from None
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"timezone: {self.timezone!r} is not a known time zone") from None

    def calendar(self) -> WorkCalendar:
        """The working-day calendar with the extra days of the settings."""
        return WorkCalendar(parse_dates("extra_holidays", self.extra_holidays),
                            parse_dates("extra_workdays", self.extra_workdays))

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_time(self, when: float) -> dt.datetime:
        """An epoch time on the hall's clock."""
        return dt.datetime.fromtimestamp(when, self.zone)
