"""Appointment slots (预约) of a department: its booking rules, the slots built from its service
hours, closed days and the working-day calendar, and whether an arrival is within a slot's
window. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from rooms.config import ConfigError
from signaling.departments import Department
from signaling.workdays import WorkCalendar


@dataclass(frozen=True)
class BookingRules:
    """What the admin sets per department. capacity 0: the department takes no bookings."""

    slot_minutes: int = 30
    capacity: int = 0
    days_ahead: int = 7
    # An arrival counts from `early_minutes` before the slot's start to `late_minutes` after;
    # a booking nobody arrived for is marked no-show once the late limit has passed.
    early_minutes: int = 10
    late_minutes: int = 15

    def __post_init__(self) -> None:
        for name, low, high in (("slot_minutes", 5, 240), ("capacity", 0, 100),
                                ("days_ahead", 0, 60), ("early_minutes", 0, 120),
                                ("late_minutes", 0, 120)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be a whole number from {low} to {high}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BookingRules:
        if not isinstance(data, Mapping):
            raise ConfigError("booking rules must be an object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown field(s) {', '.join(sorted(unknown))}")
        return cls(**dict(data))


@dataclass(frozen=True)
class Slot:
    """One bookable span: [start, end) on the hall's clock (aware datetimes)."""

    start: dt.datetime
    end: dt.datetime


def build_slots(dept: Department, rules: BookingRules, calendar: WorkCalendar,
                now: dt.datetime) -> list[Slot]:
    """The slots from `now` (aware, the hall's clock) to `rules.days_ahead` days on: whole
    slots inside each open span of the department's hours, on working days of the calendar
    (public holidays off, adjusted working days on with that weekday's hours) that are not
    the department's closed days; a slot that has started is no longer offered."""
    if rules.capacity == 0:
        return []
    out: list[Slot] = []
    step = dt.timedelta(minutes=rules.slot_minutes)
    for offset in range(rules.days_ahead + 1):
        day = now.date() + dt.timedelta(days=offset)
        if day in dept.closed_days or not calendar.is_workday(day):
            continue
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=now.tzinfo)
        for span_start, span_end in dept.hours[day.weekday()]:
            start = midnight + dt.timedelta(minutes=span_start)
            close = midnight + dt.timedelta(minutes=span_end)
            while start + step <= close:
                if start > now:
                    out.append(Slot(start, start + step))
                start += step
    return out


class Arrival(StrEnum):
    """Whether an applicant with a booking for a slot may take their ticket now."""
    ON_TIME = "on_time"
    EARLY = "early"
    LATE = "late"


def arrival(slot_start: float, now: float, rules: BookingRules) -> Arrival:
    """Epoch seconds in; on time from early_minutes before the start to late_minutes after."""
    if now < slot_start - rules.early_minutes * 60:
        return Arrival.EARLY
    if now > slot_start + rules.late_minutes * 60:
        return Arrival.LATE
    return Arrival.ON_TIME
