"""好差评 per department against a real Redis: only the departments that took part in the call may
be rated, each once, one RATE entry per department in the queue log, and a 1 or 2 opens a case
for that department only, due 15 working days later."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import socketio

from recordings.archive import Archive
from recordings.audit import Audit
from signaling import keys
from signaling.accounts import AccountPolicy, Accounts
from signaling.cases import Cases
from signaling.config import SignalingConfig
from signaling.errors import SignalError
from signaling.fanout import Fanout
from signaling.privacy import CONSENT_NOTICE_VERSION
from signaling.ratings import Rating, parse_ratings
from signaling.snapshots import Snapshots
from signaling.store import Store, Ticket
from signaling.tickets import Tickets
from tests.support.audit import AUDIT_KEY
from tests.support.streams import stream_entries

# 2026-09-30 10:00 in Shanghai: the last working day before the National Day holiday.
OPENED = dt.datetime(2026, 9, 30, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


async def _tickets(store: Store, tmp_path: Path) -> Tickets:
    config = SignalingConfig()
    audit = Audit(store.redis, AUDIT_KEY)
    archive = Archive(store.redis, tmp_path, audit)
    cases = Cases(store.redis, config, config.calendar(), audit, now=lambda: OPENED)
    fanout = Fanout(socketio.AsyncServer(), store, Snapshots(store),
                    Accounts(store.redis, AccountPolicy()))
    return Tickets(config, store, fanout, archive, audit, cases, "n1", now=lambda: OPENED)


async def _served(store: Store, *, joined: dict[str, str]) -> Ticket:
    """A tax ticket tax01 served, with the 会商 departments in `joined` (dept -> invitee)."""
    code, ticket, _, _ = await store.create_ticket("tax", OPENED - 600,
                                                   consent_version=CONSENT_NOTICE_VERSION)
    assert code == "ok" and ticket is not None
    await store.connection("staff", "tax01", "n1", 1, OPENED - 600)
    await store.set_presence("tax01", "available", OPENED - 600)
    await store.connection("ticket", ticket.ticket_id, "n1", 1, OPENED - 600)
    await store.dispatch("tax", OPENED - 599)
    assert await store.accept(ticket.ticket_id, "tax01", OPENED - 598) == "ok"
    for dept, user in joined.items():
        await store.set_ticket_joined(ticket.ticket_id, dept, user)
    await store.finish_ticket(ticket.ticket_id, OPENED - 60)
    fresh = await store.ticket(ticket.ticket_id)
    assert fresh is not None
    return fresh


async def test_each_department_that_took_part_is_rated_once_and_logged(
        store: Store, tmp_path: Path) -> None:
    tickets = await _tickets(store, tmp_path)
    ticket = await _served(store, joined={"market": "market01"})
    assert await tickets.rating_options(ticket) == [{"department": "tax"},
                                                    {"department": "market"}]
    opened = await tickets.rate(ticket, [
        Rating("tax", 2, ("long_wait", "unclear_notice"), "等了很久"),
        Rating("market", 5, ("friendly",))])
    assert len(opened) == 1
    log = [e for e in await stream_entries(store.redis, keys.LOG) if e["event"] == "RATE"]
    assert [(e["ticket"], e["department"], e["staff"], e["detail"]) for e in log] == [
        (ticket.ticket_id, "tax", "tax01", "2"), (ticket.ticket_id, "market", "market01", "5")]
    row = await store.redis.hgetall(keys.TICKET(ticket.ticket_id))
    assert (row["rating"], row["rating:tax"], row["rating:market"]) == ("2", "2", "5")
    assert row["case:tax"] == opened[0] and "case:market" not in row
    # A case for tax only, due 15 working days after 30 September: 27 October 2026.
    case = await store.redis.hgetall(keys.CASE(opened[0]))
    assert (case["department"], case["score"], case["state"], case["due"], case["closed_at"],
            case["staff"], case["reasons"], case["comment"]) == (
        "tax", "2", "opened", "2026-10-27", "", "tax01", "long_wait,unclear_notice", "等了很久")
    assert float(case["opened_at"]) == OPENED and case["ticket_id"] == ticket.ticket_id
    assert await store.redis.zrange(keys.CASES, 0, -1) == opened
    assert await store.redis.zrange(keys.DEPT_CASES("tax"), 0, -1) == opened
    assert await store.redis.zrange(keys.DEPT_CASES("market"), 0, -1) == []
    # Once: the same ticket cannot be rated again, for any department.
    again = await store.ticket(ticket.ticket_id)
    assert again is not None and await tickets.rating_options(again) == []
    with pytest.raises(SignalError) as refused:
        await tickets.rate(again, [Rating("market", 1)])
    assert refused.value.code == "bad_state"
    assert len([e for e in await stream_entries(store.redis, keys.LOG)
                if e["event"] == "RATE"]) == 2


async def test_a_department_that_took_no_part_is_refused_and_nothing_is_stored(
        store: Store, tmp_path: Path) -> None:
    tickets = await _tickets(store, tmp_path)
    ticket = await _served(store, joined={"market": "market01"})
    with pytest.raises(SignalError) as refused:
        await tickets.rate(ticket, [Rating("tax", 1), Rating("hrss", 1)])
    assert refused.value.name == "forbidden.rating_department"
    assert refused.value.status == 403 and refused.value.extra == {"department": "hrss"}
    row = await store.redis.hgetall(keys.TICKET(ticket.ticket_id))
    assert "rating" not in row and "rating:tax" not in row
    assert not await store.redis.exists(keys.CASES)
    assert not [e for e in await stream_entries(store.redis, keys.LOG) if e["event"] == "RATE"]
    # Afterwards the right ones still can be rated; the single-department form is the own one.
    assert await tickets.rate(ticket, parse_ratings({"rating": 4}, "tax")) == []
    log = [e for e in await stream_entries(store.redis, keys.LOG) if e["event"] == "RATE"]
    assert [(e["department"], e["staff"], e["detail"]) for e in log] == [("tax", "tax01", "4")]


async def test_a_ticket_still_waiting_cannot_be_rated(store: Store, tmp_path: Path) -> None:
    tickets = await _tickets(store, tmp_path)
    code, ticket, _, _ = await store.create_ticket("tax", OPENED,
                                                   consent_version=CONSENT_NOTICE_VERSION)
    assert code == "ok" and ticket is not None
    with pytest.raises(SignalError) as refused:
        await tickets.rate(ticket, [Rating("tax", 1)])
    assert refused.value.code == "bad_state"
    assert not await store.redis.exists(keys.CASES)


@pytest.mark.parametrize("payload, why", [
    ({}, "rating or ratings"),
    ({"rating": 3, "ratings": []}, "rating or ratings"),
    ({"ratings": []}, "no department"),
    ({"ratings": [{"department": "tax", "score": 6}]}, "1 to 5"),
    ({"ratings": [{"department": "tax", "score": True}]}, "1 to 5"),
    ({"ratings": [{"department": "tax", "score": 2}, {"department": "tax", "score": 5}]},
     "twice"),
    ({"ratings": [{"department": "tax", "score": 5, "reasons": ["long_wait"]}]}, "reasons"),
    ({"ratings": [{"department": "tax", "score": 1, "reasons": ["clear"]}]}, "reasons"),
    ({"ratings": [{"department": "tax", "score": 1, "comment": "x" * 201}]}, "comment"),
    ({"ratings": [{"department": "tax", "score": 1, "staff": "tax02"}]}, "entry"),
    ({"ratings": ["tax"]}, "entry"),
])
def test_malformed_ratings_are_refused(payload: dict[str, object], why: str) -> None:
    with pytest.raises(SignalError) as refused:
        parse_ratings(payload, "tax")
    assert refused.value.name == "invalid_payload.ratings"
    assert why in refused.value.message_en


def test_a_middle_rating_may_tick_reasons_of_either_kind() -> None:
    rating = parse_ratings({"ratings": [{"department": "tax", "score": 3,
                                         "reasons": ["long_wait", "friendly"]}]}, "tax")[0]
    assert rating.reasons == ("long_wait", "friendly") and not rating.bad
