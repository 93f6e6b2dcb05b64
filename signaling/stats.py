"""Statistics, the pure part: how queue-log entries fold into per-day rollup counters (day ×
department × hall), the fixed wait-time buckets whose counts merge across days and departments,
percentiles read back from merged buckets, and rows summed by day, week or month."""

from __future__ import annotations

import datetime as dt
import logging
import math
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# Upper bounds (seconds, inclusive) of the wait-time buckets; one more bucket holds the longer
# waits. Fixed for good: a rollup's counts are only comparable with the same bounds.
WAIT_BOUNDS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1200, 1800,
               3600)
WAIT_FIELDS = tuple(f"w{i}" for i in range(len(WAIT_BOUNDS) + 1))
RATING_FIELDS = tuple(f"r{n}" for n in range(1, 6))
# The counters of a rollup hash (and of every row the API answers).
COUNTERS = ("consultations", "answered", "abandoned", "dropped", "callbacks", "invites", "joint",
            "completed", "talk_s")
FIELDS = COUNTERS + WAIT_FIELDS + RATING_FIELDS
GROUPS = ("day", "week", "month")
# The bad-rating cases of a row (counted from the case hashes, by the day each opened): opened,
# still open, closed, open past their due date, closed on or before it.
CASE_FIELDS = ("cases_opened", "cases_open", "cases_closed", "cases_overdue", "cases_on_time")
# A rating of this score or better counts as satisfied (满意率).
SATISFIED_FROM = 4


def wait_field(seconds: float) -> str:
    """The bucket field a wait of ``seconds`` is counted in."""
    for i, bound in enumerate(WAIT_BOUNDS):
        if seconds <= bound:
            return WAIT_FIELDS[i]
    return WAIT_FIELDS[-1]


def percentile(counts: Mapping[str, int], share: float) -> float | None:
    """The wait (seconds) below which ``share`` (0..1) of the counted waits lie, from bucket
    counts (summed over any days and departments): linear within the bucket that holds the
    rank; the open last bucket answers its lower bound. None when nothing was counted."""
    total = sum(int(counts.get(name, 0)) for name in WAIT_FIELDS)
    if total == 0:
        return None
    rank = share * total
    seen = 0
    for i, name in enumerate(WAIT_FIELDS):
        n = int(counts.get(name, 0))
        if n and seen + n >= rank:
            if i == len(WAIT_BOUNDS):
                return float(WAIT_BOUNDS[-1])
            low = 0.0 if i == 0 else float(WAIT_BOUNDS[i - 1])
            return round(low + (WAIT_BOUNDS[i] - low) * max(rank - seen, 0) / n, 1)
        seen += n
    return float(WAIT_BOUNDS[-1])


@dataclass(frozen=True)
class Cell:
    """Where a count goes: a day (YYYY-MM-DD, the hall's calendar), a department and a hall
    ('' for an anonymous kiosk or no ticket)."""

    day: str
    department: str
    hall: str

    @property
    def month(self) -> str:
        return self.day[:7]


@dataclass
class TicketContext:
    """What the consumer remembers of a ticket between its log entries: where its ENTER was
    counted, whether it was answered and whether a second department joined."""

    day: str
    department: str
    hall: str
    answered: bool = False
    joint: bool = False

    def cell(self, department: str = "") -> Cell:
        return Cell(self.day, department or self.department, self.hall)

    def fields(self) -> dict[str, str]:
        return {"day": self.day, "department": self.department, "hall": self.hall,
                "answered": "1" if self.answered else "", "joint": "1" if self.joint else ""}

    @classmethod
    def from_fields(cls, data: Mapping[str, str]) -> TicketContext | None:
        if not data.get("day"):
            return None
        return cls(data["day"], data.get("department", ""), data.get("hall", ""),
                   data.get("answered") == "1", data.get("joint") == "1")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value >= 0 else 0.0


@dataclass
class Tally:
    """Counter increments folded from queue-log entries, per cell, and the tickets whose context
    changed (to be written back with the counts, in one transaction)."""

    zone: zoneinfo.ZoneInfo
    contexts: dict[str, TicketContext] = field(default_factory=dict)
    counts: dict[Cell, dict[str, int]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    def day_of(self, when: float) -> str:
        return dt.datetime.fromtimestamp(when, self.zone).date().isoformat()

    def add(self, cell: Cell, name: str, n: int = 1) -> None:
        by_field = self.counts.setdefault(cell, {})
        by_field[name] = by_field.get(name, 0) + n

    def _context(self, entry: Mapping[str, str], when: float) -> TicketContext:
        """The ticket's context; one made from the entry itself when its ENTER was not seen (the
        log was trimmed before, or the ticket predates the consumer)."""
        ticket = entry.get("ticket", "")
        context = self.contexts.get(ticket)
        if context is None:
            context = TicketContext(self.day_of(when), entry.get("department", ""), "")
            if ticket:
                self.contexts[ticket] = context
        return context

    def fold(self, entry: Mapping[str, str]) -> None:
        """Count one queue-log entry (signaling/keys.py documents its fields). Everything about
        a ticket counts on the day and in the hall of its ENTER, so a row's answered never
        exceeds its consultations; callbacks count on their own day, hall ''."""
        event = entry.get("event", "")
        when = _number(entry.get("time", ""))
        ticket = entry.get("ticket", "")
        if event == "ENTER":
            context = TicketContext(self.day_of(when), entry.get("department", ""),
                                    entry.get("hall", ""))
            self.contexts[ticket] = context
            self.changed.add(ticket)
            self.add(context.cell(), "consultations")
        elif event == "CONNECT":
            context = self._context(entry, when)
            context.answered = True
            self.changed.add(ticket)
            self.add(context.cell(), "answered")
            self.add(context.cell(), wait_field(_number(entry.get("detail", ""))))
        elif event in ("ABANDON", "CANCEL"):
            context = self._context(entry, when)
            # A call cut off by a dead server process was answered: dropped, not abandoned.
            self.add(context.cell(), "dropped" if context.answered else "abandoned")
        elif event == "COMPLETE":
            context = self._context(entry, when)
            self.add(context.cell(), "completed")
            self.add(context.cell(), "talk_s", round(_number(entry.get("detail", ""))))
        elif event == "INVITE":
            self.add(self._context(entry, when).cell(), "invites")
        elif event == "JOIN":
            context = self._context(entry, when)
            if not context.joint:
                context.joint = True
                self.changed.add(ticket)
                self.add(context.cell(), "joint")
        elif event == "RATE":
            score = entry.get("detail", "")
            if score in ("1", "2", "3", "4", "5"):
                context = self._context(entry, when)
                self.add(context.cell(entry.get("department", "")), f"r{score}")
        elif event == "CALLBACK":
            self.add(Cell(self.day_of(when), entry.get("department", ""), ""), "callbacks")
        self.changed.discard("")


def case_counts(case: Mapping[str, str], today: dt.date,
                zone: zoneinfo.ZoneInfo) -> dict[str, int]:
    """One case hash (id, department, hall, opened_at, due, state, closed_at) as case counters.
    Overdue: not closed and its due date has passed; on time: closed on or before its due
    date (the hall's calendar)."""
    try:
        due = dt.date.fromisoformat(case.get("due", ""))
    except ValueError:
        due = None
    counts = dict.fromkeys(CASE_FIELDS, 0)
    counts["cases_opened"] = 1
    if case.get("state") == "closed":
        counts["cases_closed"] = 1
        closed_at = _number(case.get("closed_at", ""))
        closed_on = dt.datetime.fromtimestamp(closed_at, zone).date() if closed_at else today
        counts["cases_on_time"] = int(due is not None and closed_on <= due)
    else:
        counts["cases_open"] = 1
        counts["cases_overdue"] = int(due is not None and due < today)
    return counts


def empty_row() -> dict[str, int]:
    return dict.fromkeys(FIELDS + CASE_FIELDS, 0)


def merge(into: dict[str, int], counts: Mapping[str, Any]) -> None:
    """Add a rollup hash's counters into a row (unknown fields are left out)."""
    for name, value in counts.items():
        if name in into:
            try:
                into[name] += int(value)
            except ValueError:
                logger.warning("stats: counter %s is not a number: %r", name, value)


def period_of(day: dt.date, group: str) -> str:
    """The label of the day's period: the day, its ISO week (2026-W05) or its month."""
    if group == "day":
        return day.isoformat()
    if group == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()[:7]


def days(start: dt.date, end: dt.date) -> Iterable[dt.date]:
    for n in range((end - start).days + 1):
        yield start + dt.timedelta(days=n)


def view(row: Mapping[str, int]) -> dict[str, Any]:
    """A row as the API answers it: the counters and the figures made from them. Abandoned:
    tickets that ended (cancelled, or the applicant left) before anyone answered. 满意率
    (satisfaction): the share of ratings of 4 or 5 among all ratings."""
    ratings = {str(n): int(row.get(f"r{n}", 0)) for n in range(1, 6)}
    rated = sum(ratings.values())
    consultations = int(row.get("consultations", 0))
    completed = int(row.get("completed", 0))
    return {
        **{name: int(row.get(name, 0)) for name in COUNTERS},
        "wait_p50_s": percentile(row, 0.5),
        "wait_p90_s": percentile(row, 0.9),
        "talk_avg_s": round(row.get("talk_s", 0) / completed, 1) if completed else None,
        "joint_share": round(row.get("joint", 0) / consultations, 4) if consultations else None,
        "ratings": ratings,
        "rated": rated,
        "satisfaction": (round(sum(ratings[str(n)] for n in range(SATISFIED_FROM, 6)) / rated, 4)
                         if rated else None),
        **{name: int(row.get(name, 0)) for name in CASE_FIELDS},
        "cases_on_time_rate": (round(row.get("cases_on_time", 0) / row["cases_closed"], 4)
                               if row.get("cases_closed") else None),
    }
