"""The pure views: what a kiosk is shown of a department and a ticket, and a desk of its staff
member, from values alone (no Redis)."""

import datetime as dt

from signaling.accounts import User
from signaling.departments import Department
from signaling.eta import DEFAULT_HANDLING_S
from signaling.store import Ticket
from signaling.views import WaitBasis, department_view, staff_view, ticket_view

TZ = dt.timezone(dt.timedelta(hours=8))
TAX = Department.from_dict({"id": "tax", "name_zh": "税务", "name_en": "Taxation", "prefix": "税",
                            "hours": {"mon-fri": ["09:00-17:00"]}})
TAX01 = User(username="tax01", display_name="税务坐席01", role="staff",
             departments=("tax", "tax-b"))


def _ticket(status: str, **changes: object) -> Ticket:
    base: dict[str, object] = {"ticket_id": "t1", "number": "税A001", "department": "tax",
                               "status": status, "seq": 1, "created_at": 1000.0}
    return Ticket(**{**base, **changes})  # type: ignore[arg-type]


def test_a_department_open_now_has_no_next_opening() -> None:
    monday = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    assert department_view(TAX, monday, ["个人所得税汇算清缴"]) == {
        "id": "tax", "name_zh": "税务", "name_en": "Taxation",
        "matters": ["个人所得税汇算清缴"],
        "open_now": True, "next_open": None, "hours": "mon-fri 09:00-17:00", "skill": None}


def test_a_closed_department_says_when_it_opens() -> None:
    view = department_view(TAX, dt.datetime(2026, 11, 23, 18, 0, tzinfo=TZ))
    assert view["open_now"] is False
    assert view["next_open"] == dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ).timestamp()


def test_a_waiting_ticket_has_its_position_and_an_estimate() -> None:
    basis = WaitBasis.of(on_duty=2, available=0, recent_handling=[100.0, 200.0, 3.0])
    assert basis.handling_s == 150.0
    view = ticket_view(_ticket("waiting", also=("market",), priority=True), 3, basis)
    assert view == {"ticket_id": "t1", "number": "税A001", "department": "tax",
                    "also": ["market"], "priority": True, "channel": "kiosk",
                    "status": "waiting", "position": 3, "eta_seconds": 300.0,
                    "created_at": 1000.0, "hall": ""}


def test_nobody_on_duty_or_no_basis_means_no_estimate() -> None:
    assert ticket_view(_ticket("waiting"), 1, WaitBasis.of(0, 0, []))["eta_seconds"] is None
    assert ticket_view(_ticket("waiting"), 1, None)["eta_seconds"] is None
    assert WaitBasis.of(1, 0, []).handling_s == DEFAULT_HANDLING_S


def test_a_ticket_out_of_the_queue_has_no_position_or_estimate() -> None:
    for status in ("ringing", "connected", "ended", "cancelled", "abandoned"):
        view = ticket_view(_ticket(status), 4, WaitBasis(1, 0, 100.0))
        assert (view["position"], view["eta_seconds"]) == (0, None), status


def test_a_staff_view_shows_the_wrap_up_end_only_during_wrap_up() -> None:
    queues, longest = {"tax": 2, "tax-b": 0}, {"tax": 990.0, "tax-b": None}
    view = staff_view(TAX01, {"presence": "wrap_up", "wrap_until": "1010.5"}, queues, longest, 1)
    assert view == {"username": "tax01", "display_name": "税务坐席01",
                    "departments": ["tax", "tax-b"], "presence": "wrap_up", "reason": "",
                    "wrap_up_until": 1010.5, "queues": queues, "longest": longest,
                    "callbacks": 1}
    away = staff_view(TAX01, {"presence": "away", "reason": "missed", "wrap_until": "1010.5"},
                      queues, longest, 0)
    assert (away["presence"], away["reason"], away["wrap_up_until"]) == ("away", "missed", None)


def test_a_staff_member_never_seen_is_offline() -> None:
    view = staff_view(TAX01, {}, {}, {}, 0)
    assert (view["presence"], view["reason"], view["wrap_up_until"]) == ("offline", "", None)
