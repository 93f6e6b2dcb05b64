"""The working-day calendar of 差评 case deadlines: the real 2026 holidays and adjusted working
days (chinese-calendar), the configured extra days for a year it does not know, and the
settings that stop a start."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from server.config import ConfigError, load_config
from signaling.config import SignalingConfig
from signaling.workdays import WorkCalendar

D = dt.date


def test_national_day_2026_is_off_and_its_adjusted_saturday_works() -> None:
    calendar = WorkCalendar()
    for day in range(1, 8):
        assert not calendar.is_workday(D(2026, 10, day)), day
    assert calendar.is_workday(D(2026, 10, 8))
    # The adjusted working Saturday after the holiday; the Sunday after it is off.
    assert calendar.is_workday(D(2026, 10, 10))
    assert not calendar.is_workday(D(2026, 10, 11))
    # The Mid-autumn weekend before it (Sat 26 and Sun 27 September) stays off.
    assert not calendar.is_workday(D(2026, 9, 26))


def test_a_case_opened_before_national_day_is_due_after_it() -> None:
    calendar = WorkCalendar()
    # From Wed 30 Sept: 8, 9, 10 (Sat, adjusted), 12-16, 19-23, 26, 27 October.
    assert calendar.add_working_days(D(2026, 9, 30), 15) == D(2026, 10, 27)
    # Opened on a holiday: the count starts on the next working day (8 October).
    assert calendar.add_working_days(D(2026, 10, 3), 1) == D(2026, 10, 8)
    # No working day between 30 Sept and 3 Oct: the same due date.
    assert calendar.add_working_days(D(2026, 10, 3), 15) == D(2026, 10, 27)
    # Plain weeks: 15 working days are three weeks.
    assert calendar.add_working_days(D(2026, 11, 2), 15) == D(2026, 11, 23)
    assert calendar.add_working_days(D(2026, 11, 2), 0) == D(2026, 11, 2)
    assert calendar.working_days_between(D(2026, 9, 30), D(2026, 10, 27)) == 15


def test_a_year_the_package_does_not_know_uses_the_extra_lists() -> None:
    plain = WorkCalendar()
    # 2027 is past chinese-calendar 1.11's data: Monday to Friday.
    assert plain.is_workday(D(2027, 1, 1))
    assert plain.add_working_days(D(2026, 12, 24), 15) == D(2027, 1, 14)
    configured = WorkCalendar(extra_holidays=[D(2027, 1, 1)], extra_workdays=[D(2027, 1, 9)])
    assert not configured.is_workday(D(2027, 1, 1))
    assert configured.is_workday(D(2027, 1, 9))  # a Saturday made a working day
    # 25, 28-31 Dec (5), 4-8 Jan (10: 1 Jan off), Sat 9 (11), 11-14 (15).
    assert configured.add_working_days(D(2026, 12, 24), 15) == D(2027, 1, 14)
    configured2 = WorkCalendar(extra_holidays=[D(2027, 1, 1)])
    assert configured2.add_working_days(D(2026, 12, 24), 15) == D(2027, 1, 15)
    # An extra holiday overrides the package too (a local day off in a known year).
    local = WorkCalendar(extra_holidays=[D(2026, 10, 9)])
    assert not local.is_workday(D(2026, 10, 9))


def test_the_settings_are_checked_at_start(tmp_path: Path) -> None:
    path = tmp_path / "yunzhen.toml"
    path.write_text('case_due_working_days = 10\nextra_holidays = ["2027-01-01", "2027-02-10"]\n'
                    'extra_workdays = ["2027-02-07"]\n', encoding="utf-8")
    config = load_config(path, env={"YUNZHEN_CASE_WARN_WORKING_DAYS": "2"})
    signaling = config.signaling
    assert signaling.case_due_working_days == 10 and signaling.case_warn_working_days == 2
    assert not signaling.calendar().is_workday(D(2027, 2, 10))
    assert signaling.calendar().is_workday(D(2027, 2, 7))
    for env, name in (({"YUNZHEN_EXTRA_HOLIDAYS": "2027-13-01"}, "extra_holidays"),
                      ({"YUNZHEN_EXTRA_WORKDAYS": "tomorrow"}, "extra_workdays"),
                      ({"YUNZHEN_CASE_DUE_WORKING_DAYS": "0"}, "case_due_working_days"),
                      ({"YUNZHEN_CASE_WARN_WORKING_DAYS": "15"}, "case_warn_working_days"),
                      ({"YUNZHEN_EXTRA_HOLIDAYS": "2027-01-01",
                        "YUNZHEN_EXTRA_WORKDAYS": "2027-01-01"}, "both")):
        with pytest.raises(ConfigError, match=name):
            load_config(env=env)
    with pytest.raises(ConfigError):
        SignalingConfig(case_due_working_days=300)
