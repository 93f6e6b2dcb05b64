"""Department settings: validation that names the field, service hours, and the departments file."""

import datetime as dt
from pathlib import Path

import pytest

from server.config import ConfigError
from server.seed import load_departments_file
from signaling.departments import Department

ROOT = Path(__file__).resolve().parents[2]
TZ = dt.timezone(dt.timedelta(hours=8))


def _tax(**changes: object) -> Department:
    base = {"id": "tax", "name_zh": "税务", "name_en": "Taxation", "prefix": "税",
            "hours": {"mon-fri": ["09:00-12:00", "13:30-17:00"], "sat": "09:00-12:00"},
            "closed_days": ["2026-10-01"]}
    return Department.from_dict({**base, **changes})


def test_service_hours_weekdays_lunch_break_and_closed_days() -> None:
    tax = _tax()
    monday = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    assert tax.is_open(monday)
    assert not tax.is_open(monday.replace(hour=12, minute=30))      # lunch
    assert tax.next_open(monday.replace(hour=12, minute=30)) == monday.replace(hour=13, minute=30)
    assert not tax.is_open(dt.datetime(2026, 11, 29, 10, 0, tzinfo=TZ))   # Sunday
    assert tax.next_open(dt.datetime(2026, 11, 28, 18, 0, tzinfo=TZ)) == \
        dt.datetime(2026, 11, 30, 9, 0, tzinfo=TZ)
    assert not tax.is_open(dt.datetime(2026, 10, 1, 10, 0, tzinfo=TZ))   # holiday (a Thursday)
    assert tax.hours_text() == "mon-fri 09:00-12:00,13:30-17:00; sat 09:00-12:00"
    never = _tax(hours={})
    assert never.next_open(monday) is None


def test_settings_round_trip_through_json() -> None:
    tax = _tax(backups=[{"group": "tax-b", "after": 60}], ring_timeout=20)
    assert Department.from_dict(tax.to_dict()) == tax


@pytest.mark.parametrize(("changes", "field"), [
    ({"id": "Tax!"}, "id"),
    ({"prefix": "税务局"}, "prefix"),
    ({"ring_timeout": 1}, "ring_timeout"),
    ({"max_misses": 1.5}, "max_misses"),
    ({"max_queue": True}, "max_queue"),
    ({"hours": {"mon": ["9-17"]}}, "hours.mon"),
    ({"hours": {"fri-mon": ["09:00-17:00"]}}, "fri-mon"),
    ({"hours": {"mon": ["17:00-09:00"]}}, "hours.mon"),
    ({"closed_days": ["tomorrow"]}, "closed_days"),
    ({"backups": [{"group": "tax", "after": 5}]}, "backups"),
    ({"backups": [{"group": "b", "after": -1}]}, "backups"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_setting_is_refused_naming_the_field(changes: dict[str, object],
                                                   field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        _tax(**changes)


def test_the_example_departments_file_loads() -> None:
    departments = load_departments_file(ROOT / "docs" / "departments.example.toml")
    assert [d.id for d in departments] == ["tax", "market"]
    assert departments[0].backups[0].group == "tax-b"


def test_a_bad_departments_file_names_the_department_and_field(tmp_path: Path) -> None:
    path = tmp_path / "departments.toml"
    path.write_text('[[department]]\nid = "tax"\nname_zh = "税务"\nname_en = "Tax"\n'
                    'prefix = "税"\nwrap_up = 9999\n')
    with pytest.raises(ConfigError, match=r"department tax: wrap_up"):
        load_departments_file(path)
    path.write_text("[[department]\n")
    with pytest.raises(ConfigError, match=r"departments\.toml"):
        load_departments_file(path)


def test_a_list_of_matters_in_the_settings_points_to_the_catalogue() -> None:
    with pytest.raises(ConfigError, match=r"matters: .*matter catalogue \(事项库"):
        _tax(matters=["发票"])
