"""A department's configuration: names, service hours, queue and ring settings, and its
backup tiers (AB岗). Pure values with validation; `from_dict` errors name the field at fault."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rooms.config import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
ALL_DAY = {"mon-sun": ["00:00-24:00"]}


@dataclass(frozen=True)
class Tier:
    """A backup group that is offered the department's tickets once they waited `after` s."""

    group: str
    after: float

    def __post_init__(self) -> None:
        if not _ID.match(self.group):
            raise ConfigError(f"backups.group: {self.group!r} is not a valid group id")
        if self.after < 0:
            raise ConfigError("backups.after must not be negative")


@dataclass(frozen=True)
class Department:
    id: str
    name_zh: str
    name_en: str
    prefix: str
    # weekday (0 = Monday) -> open spans in minutes from midnight, [start, end)
    hours: tuple[tuple[tuple[int, int], ...], ...] = ((( 0, 1440),),) * 7
    closed_days: tuple[dt.date, ...] = ()
    ring_timeout: float = 15.0
    ring_pause: float = 5.0
    max_misses: int = 2
    wrap_up: float = 10.0
    max_queue: int = 50
    backups: tuple[Tier, ...] = field(default=())

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ConfigError(f"id: {self.id!r} must be lower-case letters, digits, - or _")
        for name in ("name_zh", "name_en", "prefix"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > 64:
                raise ConfigError(f"{name} must be text of 1 to 64 characters")
        if len(self.prefix) > 2:
            raise ConfigError("prefix must be one or two characters (the hall number's start)")
        if not 3 <= self.ring_timeout <= 120:
            raise ConfigError("ring_timeout must be between 3 and 120 seconds")
        if not 0 <= self.ring_pause <= 60:
            raise ConfigError("ring_pause must be between 0 and 60 seconds")
        if not 1 <= self.max_misses <= 10:
            raise ConfigError("max_misses must be between 1 and 10")
        if not 0 <= self.wrap_up <= 600:
            raise ConfigError("wrap_up must be between 0 and 600 seconds")
        if not 1 <= self.max_queue <= 10_000:
            raise ConfigError("max_queue must be between 1 and 10000")
        if len(self.hours) != 7:
            raise ConfigError("hours must cover the seven weekdays")
        if any(t.group == self.id for t in self.backups):
            raise ConfigError("backups: a department cannot back itself up")

    # service hours ------------------------------------------------------------------------------
    def is_open(self, when: dt.datetime) -> bool:
        """Whether the department serves at `when` (a local, naive or aware, datetime)."""
        if when.date() in self.closed_days:
            return False
        minute = when.hour * 60 + when.minute
        return any(start <= minute < end for start, end in self.hours[when.weekday()])

    def next_open(self, when: dt.datetime) -> dt.datetime | None:
        """The next moment the department opens after `when`, within two weeks; None if never."""
        if self.is_open(when):
            return when
        day = when.replace(second=0, microsecond=0)
        for offset in range(15):
            date = (day + dt.timedelta(days=offset)).date()
            if date in self.closed_days:
                continue
            for start, _end in sorted(self.hours[date.weekday()]):
                moment = dt.datetime.combine(date, dt.time(), tzinfo=when.tzinfo) + \
                    dt.timedelta(minutes=start)
                if moment > when:
                    return moment
        return None

    def hours_text(self) -> str:
        """The hours as written in the configuration, e.g. `mon-fri 09:00-17:00`."""
        return "; ".join(f"{days} {','.join(spans)}" for days, spans in _hours_out(self.hours))

    # (de)serialization ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hours"] = {days: spans for days, spans in _hours_out(self.hours)}
        out["closed_days"] = [d.isoformat() for d in self.closed_days]
        out["backups"] = [{"group": t.group, "after": t.after} for t in self.backups]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Department:
        if not isinstance(data, Mapping):
            raise ConfigError("a department must be an object")
        known = {"id", "name_zh", "name_en", "prefix", "hours", "closed_days",
                 "ring_timeout", "ring_pause", "max_misses", "wrap_up", "max_queue", "backups"}
        if "matters" in data:
            raise ConfigError("matters: a department's matters are kept in the matter catalogue "
                              "(事项库, at /admin), not in its settings")
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown field(s) {', '.join(sorted(unknown))}")
        for name in ("id", "name_zh", "name_en", "prefix"):
            if not isinstance(data.get(name), str):
                raise ConfigError(f"{name} is required (text)")
        values: dict[str, Any] = {k: data[k] for k in ("id", "name_zh", "name_en", "prefix")}
        values["hours"] = _hours_in(data.get("hours", ALL_DAY))
        closed = data.get("closed_days", [])
        if not isinstance(closed, list):
            raise ConfigError("closed_days must be a list of dates (YYYY-MM-DD)")
        try:
            values["closed_days"] = tuple(sorted(dt.date.fromisoformat(d) for d in closed))
        except (TypeError, ValueError):
            raise ConfigError("closed_days must be a list of dates (YYYY-MM-DD)") from None
        for name, kind in (("ring_timeout", float), ("ring_pause", float), ("max_misses", int),
                           ("wrap_up", float), ("max_queue", int)):
            if name in data:
                value = data[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or (
                        kind is int and not float(value).is_integer()):
                    raise ConfigError(f"{name} must be a {'whole ' if kind is int else ''}number")
                values[name] = kind(value)
        backups = data.get("backups", [])
        if not isinstance(backups, list):
            raise ConfigError("backups must be a list of {group, after}")
        tiers = []
        for entry in backups:
            if not isinstance(entry, Mapping) or set(entry) != {"group", "after"} or \
                    not isinstance(entry["group"], str) or \
                    isinstance(entry["after"], bool) or not isinstance(entry["after"], int | float):
                raise ConfigError("backups entries must be {group: id, after: seconds}")
            tiers.append(Tier(entry["group"], float(entry["after"])))
        values["backups"] = tuple(sorted(tiers, key=lambda t: t.after))
        return cls(**values)


def _day_range(text: str) -> list[int]:
    parts = text.split("-")
    if len(parts) == 1 and parts[0] in DAYS:
        return [DAYS.index(parts[0])]
    if len(parts) == 2 and parts[0] in DAYS and parts[1] in DAYS:
        first, last = DAYS.index(parts[0]), DAYS.index(parts[1])
        if first <= last:
            return list(range(first, last + 1))
    raise ConfigError(f"hours: {text!r} is not a weekday or a range like mon-fri")


def _hours_in(data: Any) -> tuple[tuple[tuple[int, int], ...], ...]:
    if not isinstance(data, Mapping):
        raise ConfigError('hours must be an object like {"mon-fri": ["09:00-17:00"]}')
    week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    for days, spans in data.items():
        if isinstance(spans, str):
            spans = [s for s in spans.split(",") if s]
        if not isinstance(spans, list):
            raise ConfigError(f"hours.{days} must be a list of HH:MM-HH:MM spans")
        for span in spans:
            match = _SPAN.match(span.strip()) if isinstance(span, str) else None
            if not match:
                raise ConfigError(f"hours.{days}: {span!r} is not HH:MM-HH:MM")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if m1 > 59 or m2 > 59 or not 0 <= start < end <= 1440:
                raise ConfigError(f"hours.{days}: {span!r} is not a span within one day")
            for day in _day_range(str(days)):
                week[day].append((start, end))
    return tuple(tuple(sorted(spans)) for spans in week)


def _hours_out(hours: tuple[tuple[tuple[int, int], ...], ...]) -> list[tuple[str, list[str]]]:
    """Group equal consecutive weekdays back into ranges (mon-fri)."""
    out: list[tuple[str, list[str]]] = []
    day = 0
    while day < 7:
        last = day
        while last + 1 < 7 and hours[last + 1] == hours[day]:
            last += 1
        if hours[day]:
            spans = [f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}"
                     for s, e in hours[day]]
            days = DAYS[day] if day == last else f"{DAYS[day]}-{DAYS[last]}"
            out.append((days, spans))
        day = last + 1
    return out
