"""The queue script (signaling/queue.lua) against a real Redis server: order, dispatch, ring
outcomes, wrap-up, backup tiers, connections and grace periods, and the event log."""

from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from server.seed import seed_demo
from signaling import keys
from signaling.accounts import AccountPolicy, Accounts, hash_password
from signaling.config import SignalingConfig
from signaling.departments import Department, Tier
from signaling.privacy import CONSENT_NOTICE_VERSION as CONSENT
from signaling.queue import Code, Event, EventKind, Events, QueueScript
from signaling.states import Presence, TicketStatus
from signaling.store import Duty, Store
from tests.support.streams import stream_entries

NODE = "node-a"


async def _staff(store: Store, username: str, pools: tuple[str, ...], *, available_at: float
                 | None = None) -> None:
    await Accounts(store.redis, AccountPolicy()).put(
        username, display_name=username, role="staff", departments=pools,
        password_hash=hash_password("x"))
    await store.connection("staff", username, NODE, 1, 0.0)
    if available_at is not None:
        code, presence, _ = await store.set_presence(username, "available", available_at)
        assert (code, presence) == ("ok", "available")


async def _ticket(store: Store, dept: str, now: float, connect: bool = True,
                  **options: Any) -> tuple[str, Events]:
    """A new ticket; with `connect`, its applicant's socket is counted on NODE, as the kiosk
    namespace does (a ticket nobody holds is abandoned after the 60 s grace)."""
    code, ticket, token, events = await store.create_ticket(dept, now, consent_version=CONSENT,
                                                            **options)
    assert code == "ok" and ticket is not None and token
    if connect:
        await store.connection("ticket", ticket.ticket_id, NODE, 1, now)
    return ticket.ticket_id, events

async def _call_on(store: Store, node: str) -> str:
    """tax01 (desk on `node`) in a call with a tax ticket in room r1 hosted by `node`, at 3.0."""
    await Accounts(store.redis, AccountPolicy()).put(
        "tax01", display_name="t", role="staff", departments=("tax",), password_hash="x")
    await store.connection("staff", "tax01", node, 1, 0.0)
    await store.set_presence("tax01", "available", 1.0)
    ticket, _ = await _ticket(store, "tax", 2.0)
    await store.accept(ticket, "tax01", 3.0)
    await store.put_room("r1", node=node, ticket_id=ticket, department="tax", staff="tax01",
                         now=3.0)
    return ticket



def _rings(events: list[Event]) -> list[tuple[str, str]]:
    return [(a, b) for kind, a, b in events if kind == "ring"]


async def test_hall_numbers_and_first_come_first_served_with_a_priority_lane(
        store: Store) -> None:
    a, _ = await _ticket(store, "tax", 1.0)
    b, _ = await _ticket(store, "tax", 2.0)
    p, _ = await _ticket(store, "tax", 3.0, priority=True)
    c, _ = await _ticket(store, "fund", 4.0)
    numbers = [(await store.ticket(t)).number for t in (a, b, p, c)]  # type: ignore[union-attr]
    assert numbers == ["税A001", "税A002", "税B001", "积A001"]
    assert await store.waiting("tax") == [p, a, b]
    assert await store.longest_since("tax") == 1.0


async def test_unknown_department_and_full_queue_queue_nothing(store: Store) -> None:
    refused = await store.create_ticket("mars", 1.0, consent_version=CONSENT)
    assert refused.code == "unknown_department"
    dept = await store.department("hrss")
    assert dept is not None
    await store.put_department(Department.from_dict({**dept.to_dict(), "max_queue": 2}))
    await _ticket(store, "hrss", 1.0)
    await _ticket(store, "hrss", 2.0)
    assert (await store.create_ticket("hrss", 3.0, consent_version=CONSENT))[0] == "queue_full"
    assert len(await store.waiting("hrss")) == 2


async def test_dispatch_rings_the_longest_idle_staff_member_once(store: Store) -> None:
    await _staff(store, "tax02", ("tax",), available_at=50.0)
    await _staff(store, "tax01", ("tax",), available_at=60.0)
    t1, events = await _ticket(store, "tax", 70.0)
    assert _rings(events) == [(t1, "tax02")]
    assert _rings(await store.dispatch("tax", 71.0)) == []
    t2, events = await _ticket(store, "tax", 72.0)
    assert _rings(events) == [(t2, "tax01")]
    assert (await store.staff_state("tax02"))["presence"] == "ringing"


async def test_accept_only_by_the_staff_member_being_rung(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=100.0)
    await _staff(store, "market01", ("market",), available_at=100.0)
    ticket, _ = await _ticket(store, "tax", 200.0)
    assert await store.accept(ticket, "market01", 202.0) == "not_offered"
    assert await store.accept("nonexistent", "tax01", 202.0) == "not_offered"
    assert await store.accept(ticket, "tax01", 202.0) == "ok"
    assert await store.accept(ticket, "tax01", 203.0) == "not_offered"
    assert (await store.ticket(ticket)).status == "connected"  # type: ignore[union-attr]
    assert (await store.staff_state("tax01"))["presence"] == "in_call"


async def test_decline_passes_the_ticket_on_at_once_keeping_its_place(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=0.5)
    first, _ = await _ticket(store, "tax", 1.0)
    second, _ = await _ticket(store, "tax", 2.0)
    code, events = await store.decline(first, "tax01", 4.0)
    assert code == "ok"
    # The decliner is not offered the declined ticket again for 30 s, so the next ticket goes to
    # them; the declined one keeps the head of the queue for a colleague.
    assert _rings(events) == [(second, "tax01")]
    assert await store.waiting("tax") == [first]
    await _staff(store, "tax02", ("tax",), available_at=5.0)   # rung as they become available
    ticket = await store.ticket(first)
    assert ticket is not None and (ticket.status, ticket.staff) == ("ringing", "tax02")
    assert (await store.decline(first, "tax01", 10.0))[0] == "not_offered"


async def test_a_ticket_whose_ring_timed_out_rests_for_the_ring_pause(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=0.5)
    await _staff(store, "tax02", ("tax",), available_at=0.7)
    ticket, events = await _ticket(store, "tax", 1.0)
    assert _rings(events) == [(ticket, "tax01")]
    await store.set_presence("tax02", "away", 1.5)
    events = await store.tick(16.5)
    assert _rings(events) == []
    await store.set_presence("tax02", "available", 17.0)
    assert _rings(await store.dispatch("tax", 18.0)) == []          # resting until 21.5
    assert _rings(await store.dispatch("tax", 21.6)) == [(ticket, "tax02")]


async def test_missed_rings_pause_the_staff_member_after_max_misses(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    ticket, _ = await _ticket(store, "tax", 2.0)
    assert await store.tick(10.0) == []
    events = await store.tick(17.5)                   # 15 s ring timeout
    assert ("withdrawn", ticket, "tax01") in events
    assert (await store.staff_state("tax01"))["presence"] == "available"   # one miss
    assert await store.waiting("tax") == [ticket]
    # Not re-rung for this ticket straight away; a second ticket rings them and is missed too.
    other, events = await _ticket(store, "tax", 18.0)
    assert _rings(events) == [(other, "tax01")]
    events = await store.tick(34.0)
    state = await store.staff_state("tax01")
    assert (state["presence"], state["reason"]) == ("away", "missed")
    assert ("paused", "tax01", "missed") in events
    assert await store.waiting("tax") == [ticket, other]
    # Coming back resets the count.
    await store.set_presence("tax01", "available", 40.0)
    assert (await store.staff_state("tax01"))["misses"] == "0"


async def test_backup_group_is_offered_tickets_after_the_wait_threshold(
        store: Store, redis_client: aioredis.Redis) -> None:
    dept = await store.department("tax")
    assert dept is not None
    await store.put_department(Department.from_dict(
        {**dept.to_dict(), "backups": [{"group": "tax-b", "after": 60}]}))
    await _staff(store, "backup01", ("tax-b",), available_at=1.0)
    ticket, events = await _ticket(store, "tax", 10.0)
    assert _rings(events) == []
    assert _rings(await store.tick(50.0)) == []
    assert _rings(await store.tick(70.5)) == [(ticket, "backup01")]
    log = [f["event"] for f in await stream_entries(redis_client, keys.LOG)]
    assert "OVERFLOW" in log


async def test_after_a_call_wrap_up_then_available(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    ticket, _ = await _ticket(store, "tax", 2.0)
    await store.accept(ticket, "tax01", 3.0)
    staff, events = await store.finish_ticket(ticket, 63.0)
    assert staff == "tax01"
    state = await store.staff_state("tax01")
    assert (state["presence"], float(state["wrap_until"])) == ("wrap_up", 73.0)
    nxt, events = await _ticket(store, "tax", 64.0)
    assert _rings(events) == []                          # not rung during wrap-up
    events = await store.tick(73.5)
    assert ("presence", "tax01", "available") in events
    assert (nxt, "tax01") in _rings(events)
    assert await store.handling_times("tax") == [60.0]
    assert await store.rate_ticket(ticket, [("tax", 5)]) == ("ok", ["tax01"])
    assert (await store.rate_ticket(ticket, [("tax", 1)]))[0] == "bad_state"


async def test_a_ringing_staff_member_who_vanishes_releases_the_ticket_at_once(
        store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    await _staff(store, "tax02", ("tax",), available_at=2.0)
    ticket, events = await _ticket(store, "tax", 3.0)
    assert _rings(events) == [(ticket, "tax01")]
    total, events = await store.connection("staff", "tax01", NODE, -1, 4.0)
    assert total == 0
    assert (ticket, "tax02") in _rings(events)
    # Back within the 20 s grace: still available, not offline.
    await store.connection("staff", "tax01", NODE, 1, 10.0)
    assert (await store.staff_state("tax01"))["presence"] == "available"
    # Gone past the grace: offline.
    await store.connection("staff", "tax01", NODE, -1, 11.0)
    await store.tick(32.0)
    assert (await store.staff_state("tax01"))["presence"] == "offline"


async def test_a_waiting_ticket_keeps_its_place_for_a_short_disconnect(store: Store) -> None:
    first, _ = await _ticket(store, "fund", 1.0)
    second, _ = await _ticket(store, "fund", 2.0)
    for ticket in (first, second):
        await store.connection("ticket", ticket, NODE, -1, 3.0)
    await store.connection("ticket", first, NODE, 1, 30.0)   # back in time
    events = await store.tick(64.0)
    assert ("ticket", second, "abandoned") in events
    assert await store.waiting("fund") == [first]
    assert (await store.ticket(second)).status == "abandoned"  # type: ignore[union-attr]


async def test_a_dead_process_loses_its_sockets_and_calls(store: Store) -> None:
    await store.heartbeat("dead", 0.0, ttl=10)
    ticket = await _call_on(store, "dead")
    waiting, _ = await _ticket(store, "tax", 4.0, connect=False)
    await store.connection("ticket", waiting, "dead", 1, 4.0)
    events = await store.tick(11.0)                        # heartbeat ran out at 10
    assert ("ticket", ticket, "ended") in events
    assert (await store.staff_state("tax01"))["presence"] == "offline"
    assert await store.waiting("tax") == [waiting]          # keeps its place for the grace
    await store.tick(72.0)
    assert await store.waiting("tax") == []


async def test_cancel_while_ringing_frees_the_staff_member(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    ticket, _ = await _ticket(store, "tax", 2.0)
    code, events = await store.cancel_ticket(ticket, 3.0)
    assert code == "ok"
    assert ("withdrawn", ticket, "tax01") in events
    assert (await store.staff_state("tax01"))["presence"] == "available"
    assert (await store.cancel_ticket(ticket, 4.0))[0] == "bad_state"


async def test_the_asking_socket_is_counted_with_the_create_and_out_with_the_cancel(
        store: Store) -> None:
    """One script call each: the kiosk's socket counts for its new ticket (no grace to run out),
    and its cancel counts it out, even when the ticket had ended already."""
    created = await store.create_ticket("tax", 1.0, consent_version=CONSENT, node="n1")
    assert created.ticket is not None
    tid = created.ticket.ticket_id
    assert await store.redis.hgetall(keys.CONNS("ticket", tid)) == {"n1": "1"}
    assert await store.redis.zscore(keys.TICKET_GONE, tid) is None
    assert tid in await store.redis.smembers(keys.NODE("n1", "ticket"))
    await store.connection("ticket", tid, "n2", 1, 2.0)  # a second page of the applicant
    assert (await store.cancel_ticket(tid, 3.0, node="n1")).code == "ok"
    assert await store.redis.hgetall(keys.CONNS("ticket", tid)) == {"n2": "1"}
    assert (await store.cancel_ticket(tid, 4.0, node="n2")).code == "bad_state"
    assert not await store.redis.exists(keys.CONNS("ticket", tid))
    assert tid not in await store.redis.smembers(keys.NODE("n2", "ticket"))
    # Without a node the new ticket is on the grace until a socket is counted for it.
    other = await store.create_ticket("tax", 5.0, consent_version=CONSENT)
    assert other.ticket is not None
    assert await store.redis.zscore(keys.TICKET_GONE, other.ticket.ticket_id) is not None


async def test_presence_cannot_change_while_ringing_or_in_a_call(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    ticket, _ = await _ticket(store, "tax", 2.0)
    assert (await store.set_presence("tax01", "away", 3.0))[0] == "bad_state"
    await store.accept(ticket, "tax01", 4.0)
    assert (await store.set_presence("tax01", "available", 5.0))[0] == "bad_state"


async def test_every_step_goes_to_the_event_log(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    ticket, _ = await _ticket(store, "tax", 2.0)
    await store.decline(ticket, "tax01", 3.0)
    entries = await store.log_entries(0, 2e9)
    assert [(e["event"], e["ticket"]) for e in entries] == [
        ("UNPAUSE", ""), ("ENTER", ticket), ("RING", ticket), ("DECLINE", ticket)]
    assert all(e["time"] for e in entries)


async def test_department_settings_round_trip(store: Store) -> None:
    dept = Department(id="test", name_zh="测试", name_en="Test", prefix="测",
                      backups=(Tier("tax", 30.0),), ring_timeout=20)
    await store.put_department(dept)
    assert await store.department("test") == dept


async def test_a_ticket_nobody_holds_is_abandoned_after_the_grace(store: Store) -> None:
    """An applicant who leaves while the ticket is being created must not hold a place."""
    ticket, _ = await _ticket(store, "fund", 1.0, connect=False)
    assert await store.tick(60.0) == []
    assert ("ticket", ticket, "abandoned") in await store.tick(61.5)
    assert await store.waiting("fund") == []


async def test_a_ring_past_its_deadline_cannot_be_taken_even_before_a_tick(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    ticket, _ = await _ticket(store, "tax", 2.0)
    assert await store.accept(ticket, "tax01", 17.0) == "not_offered"     # deadline 17.0
    assert (await store.decline(ticket, "tax01", 17.5))[0] == "not_offered"
    assert (await store.ticket(ticket)).status == "ringing"  # type: ignore[union-attr]
    await store.tick(17.5)
    assert await store.waiting("tax") == [ticket]


async def test_duty_counts_the_members_on_duty_and_available(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    await _staff(store, "tax02", ("tax", "fund"), available_at=2.0)
    await _staff(store, "tax03", ("tax",))
    await store.set_presence("tax03", "away", 3.0)
    ticket, _ = await _ticket(store, "tax", 4.0)
    await store.accept(ticket, "tax01", 5.0)
    assert await store.duty("tax") == (2, 1)
    assert await store.duty("fund") == (1, 1)
    await store.connection("staff", "tax02", NODE, -1, 6.0)   # gone: not counted
    assert await store.duty("tax") == (1, 0)


async def test_the_graces_and_the_decline_cooldown_come_from_the_config(
        redis_client: aioredis.Redis) -> None:
    store = Store(redis_client, SignalingConfig(staff_grace=5, ticket_grace=10,
                                                decline_cooldown=0))
    await seed_demo(store, Accounts(store.redis, AccountPolicy()))
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    ticket, _ = await _ticket(store, "tax", 2.0)
    # No cooldown: the decliner, the only one available, is rung for it again at once.
    code, events = await store.decline(ticket, "tax01", 3.0)
    assert code == "ok" and _rings(events) == [(ticket, "tax01")]
    await store.connection("ticket", ticket, NODE, -1, 4.0)
    assert await store.tick(13.9) == []
    assert ("ticket", ticket, "abandoned") in await store.tick(14.0)      # 10 s ticket grace
    await store.connection("staff", "tax01", NODE, -1, 20.0)
    await store.tick(24.9)
    assert (await store.staff_state("tax01"))["presence"] == "available"
    assert ("presence", "tax01", "offline") in await store.tick(25.0)     # 5 s staff grace


async def test_results_are_typed(store: Store) -> None:
    await _staff(store, "tax01", ("tax",), available_at=1.0)
    created = await store.create_ticket("tax", 2.0, consent_version=CONSENT)
    assert created.code is Code.OK and created.ticket is not None
    assert created.ticket.status is TicketStatus.RINGING
    assert created.events[-1] == Event(EventKind.QUEUE, "tax", "")
    change = await store.set_presence("tax01", "away", 3.0)
    assert (change.code, change.presence) == (Code.BAD_STATE, Presence.RINGING)
    assert await store.accept(created.ticket.ticket_id, "tax01", 4.0) is Code.OK
    assert await store.duty("tax") == Duty(on_duty=1, available=0)


async def test_an_unknown_operation_is_an_error(redis_client: aioredis.Redis) -> None:
    script = QueueScript(redis_client, SignalingConfig())
    with pytest.raises(redis.exceptions.ResponseError, match="unknown operation launch"):
        await script("launch", 1.0)  # type: ignore[arg-type]


async def test_a_dead_process_s_calls_move_to_the_live_process_with_the_fewest_rooms(
        store: Store) -> None:
    """Node loss: the call stays connected, its staff member in the call, and its room goes to
    the live process with the fewest rooms (and into its adopt set); a room whose ticket is no
    longer connected just leaves the directory."""
    for node in ("dead", "busy", "idle"):
        await store.heartbeat(node, 0.0, ttl=10)
    ticket = await _call_on(store, "dead")
    await store.put_room("r-stale", node="dead", ticket_id="t-gone", department="tax",
                         staff="x", now=3.0)
    await store.put_room("r-busy", node="busy", ticket_id="t-other", department="tax",
                         staff="y", now=3.0)
    for node in ("busy", "idle"):
        await store.heartbeat(node, 9.0, ttl=10)
    events = await store.tick(11.0)                        # "dead" ran out at 10
    assert ("ticket", ticket, "ended") not in events
    assert (await store.ticket(ticket)).status == "connected"  # type: ignore[union-attr]
    assert (await store.staff_state("tax01"))["presence"] == "in_call"
    room = await store.redis.hgetall(keys.ROOM("r1"))
    assert (room["node"], room["lost_node"], float(room["lost_at"])) == ("idle", "dead", 11.0)
    assert await store.redis.smembers(keys.NODE("idle", "rooms")) == {"r1"}
    assert await store.redis.smembers(keys.NODE("idle", "adopt")) == {"r1"}
    assert not await store.redis.exists(keys.ROOM("r-stale"), keys.NODE("dead", "rooms"))
    # "dead" was only stopped: its next heartbeat says it was buried (its rooms moved on); a
    # live process's says it was not.
    assert await store.heartbeat("idle", 11.5, ttl=8) is False
    assert await store.heartbeat("dead", 11.5, ttl=0.1) is True
    # The new host dies before adopting it: the room moves on (here to the last one left).
    events = await store.tick(20.0)                        # "busy" and "idle" ran out at 19
    assert ("ticket", ticket, "ended") in events           # no live process left: over
    assert not await store.redis.exists(keys.ROOM("r1"), keys.NODE("idle", "adopt"))


async def test_a_ticking_process_is_alive_even_when_its_heartbeat_ran_out(store: Store) -> None:
    """A lone process stopped for longer than the TTL (a paused VM) wakes up: its tick may run
    before its heartbeat, and must not bury the process itself and end its calls."""
    assert await store.heartbeat("solo", 0.0, ttl=10) is True   # the first one
    ticket = await _call_on(store, "solo")
    await store.tick(30.0, node="solo", ttl=10)          # ran out at 10
    assert await store.redis.zscore(keys.NODES, "solo") == 40.0
    assert (await store.ticket(ticket)).status == "connected"  # type: ignore[union-attr]
    assert await store.heartbeat("solo", 31.0, ttl=10) is False
    # Another process's tick buries it once its heartbeat has run out.
    await store.tick(42.0, node="other", ttl=10)
    assert (await store.ticket(ticket)).status == "ended"  # type: ignore[union-attr]
    assert await store.heartbeat("solo", 43.0, ttl=10) is True


async def test_a_private_redis_restart_ends_the_calls_of_every_process_it_knew(
        store: Store) -> None:
    """forget_nodes (the private Redis of a restarted service): nothing to move the calls to."""
    await store.heartbeat("old", 0.0, ttl=10)
    ticket = await _call_on(store, "old")
    await store.heartbeat("new", 4.0, ttl=10)  # even with a live process to move them to
    await store.forget_nodes(4.0)
    assert (await store.ticket(ticket)).status == "ended"  # type: ignore[union-attr]
    assert not await store.redis.exists(keys.ROOM("r1"))
    assert "old" not in await store.redis.zrange(keys.NODES, 0, -1)
