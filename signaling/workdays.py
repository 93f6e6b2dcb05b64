"""Working days on the Chinese calendar: the State Council's public holidays and adjusted working
days (the `chinese-calendar` package), plus configured extra holidays and working days for the
years the package does not know yet (they also override it). 差评 case deadlines count in them."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

import chinese_calendar

logger = logging.getLogger(__name__)

# The farthest a deadline may lie: adding working days stops with an error rather than looping
# over a calendar that (misconfigured) has no working day at all.
MAX_SCAN_DAYS = 3660


class WorkCalendar:
    """Whether a day is a working day: the extra lists first, then chinese-calendar, and for a
    year it has no data for, Monday to Friday."""

    def __init__(self, extra_holidays: Iterable[dt.date] = (),
                 extra_workdays: Iterable[dt.date] = ()) -> None:
        self._holidays = frozenset(extra_holidays)
        self._workdays = frozenset(extra_workdays)
        both = self._holidays & self._workdays
        if both:
            raise ValueError("both a holiday and a working day: "
                             + ", ".join(sorted(d.isoformat() for d in both)))
        self._unknown_years: set[int] = set()

    def is_workday(self, day: dt.date) -> bool:
        if day in self._holidays:
            return False
        if day in self._workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._unknown_years:
                # Said once per year: the operator should add that year's holidays to the
                # settings once the State Council publishes them.
                self._unknown_years.add(day.year)
                logger.warning("chinese-calendar has no data for %d: Monday to Friday are "
                               "working days there, apart from extra_holidays/extra_workdays",
                               day.year)
            return day.weekday() < 5

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after `start` (counted from the next working day: `start`
        itself never counts); `start` for n = 0."""
        if n < 0:
            raise ValueError("n must be 0 or more")
        day, left = start, n
        for _ in range(MAX_SCAN_DAYS):
            if left == 0:
                return day
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                left -= 1
        raise ValueError(f"no {n} working days within {MAX_SCAN_DAYS} days of {start}")

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after `start` up to and including `end` (0 when end <= start)."""
        count, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            count += self.is_workday(day)
        return count


def parse_dates(name: str, values: Iterable[str]) -> tuple[dt.date, ...]:
    """ISO dates (YYYY-MM-DD) of a setting; ValueError naming the setting and the bad value."""
    out = []
    for value in values:
        try:
            out.append(dt.date.fromisoformat(value.strip()))
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not a YYYY-MM-DD date") from None
    return tuple(out)
