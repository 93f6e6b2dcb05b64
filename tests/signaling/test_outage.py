"""After a Redis outage (the queue script's `outage_over`, signaling/queue.lua), against a real
Redis: the process that saw it renews its heartbeat and has its sockets counted from the ones it
really has; the graces and rings that ran out while nobody could act are given back; and a tick
that does not sweep leaves processes with a lapsed heartbeat alone."""

from __future__ import annotations

import pytest

from signaling import keys
from signaling.accounts import AccountPolicy, Accounts, hash_password
from signaling.privacy import CONSENT_NOTICE_VERSION as CONSENT
from signaling.store import HEARTBEAT_TTL, LiveSockets, Store

NODE = "node-a"


async def _staff(store: Store, username: str, now: float, available: bool = True) -> None:
    await Accounts(store.redis, AccountPolicy()).put(
        username, display_name=username, role="staff", departments=("tax",),
        password_hash=hash_password("x"))
    await store.connection("staff", username, NODE, 1, now)
    if available:
        await store.set_presence(username, "available", now)


async def _ticket(store: Store, now: float, connect: bool = True) -> str:
    created = await store.create_ticket("tax", now, consent_version=CONSENT)
    assert created.ticket is not None
    if connect:
        await store.connection("ticket", created.ticket.ticket_id, NODE, 1, now)
    return created.ticket.ticket_id


async def _conns(store: Store, kind: str, ident: str) -> dict[str, str]:
    return dict(await store.redis.hgetall(keys.CONNS(kind, ident)))


async def test_the_sockets_of_the_node_are_counted_from_the_live_ones(store: Store) -> None:
    await store.heartbeat(NODE, 0.0)
    await _staff(store, "tax01", 1.0, available=False)
    await _staff(store, "tax02", 1.0, available=False)
    stayed = await _ticket(store, 2.0)
    left = await _ticket(store, 3.0)                    # its kiosk left during the outage
    uncounted = await _ticket(store, 4.0, connect=False)  # counted, but the count was lost
    await store.connection("ticket", "other-node-ticket", "node-b", 1, 4.0)
    # Kiosk sockets counted against their address: one of 198.51.100.7's two left during the
    # outage, 203.0.113.9's only one too.
    for address in ("198.51.100.7", "198.51.100.7", "203.0.113.9"):
        await store.address_socket(address, NODE, 1, 0, 4.0)

    now = 100.0  # the heartbeat ran out at 10
    buried, events = await store.outage_over(NODE, now, LiveSockets(
        staff={"tax01": 1}, tickets={stayed: 1, uncounted: 2},
        addresses={"198.51.100.7": 1}))
    assert buried is False  # ran out, but nobody swept it meanwhile
    assert await _conns(store, "address", "198.51.100.7") == {NODE: "1"}
    assert await _conns(store, "address", "203.0.113.9") == {}
    assert await store.redis.zscore(keys.NODES, NODE) == now + HEARTBEAT_TTL
    assert await _conns(store, "ticket", stayed) == {NODE: "1"}
    assert await _conns(store, "ticket", uncounted) == {NODE: "2"}
    assert await _conns(store, "ticket", left) == {}
    gone = dict(await store.redis.zrange(keys.TICKET_GONE, 0, -1, withscores=True))
    assert gone == {left: now + 60.0}                   # a whole grace, from now
    assert await store.redis.smembers(keys.NODE(NODE, "ticket")) == {stayed, uncounted}
    # Another process's counts are its own business.
    assert await _conns(store, "ticket", "other-node-ticket") == {"node-b": "1"}
    # tax02's desk left during the outage: gone, with a whole grace.
    assert await _conns(store, "staff", "tax02") == {}
    assert await store.redis.zscore(keys.STAFF_GONE, "tax02") == now + 20.0
    assert await store.redis.zscore(keys.STAFF_GONE, "tax01") is None
    assert events == []
    # The waiting tickets are all there; a tick after the grace abandons only the one left.
    assert set(await store.waiting("tax")) == {stayed, left, uncounted}
    events = await store.tick(now + 61.0)
    assert [e for e in events if e.kind == "ticket"] == [("ticket", left, "abandoned")]
    assert set(await store.waiting("tax")) == {stayed, uncounted}


async def test_graces_that_ran_out_during_the_outage_start_again(store: Store) -> None:
    await store.heartbeat(NODE, 0.0)
    await store.heartbeat("node-b", 0.0)
    await _staff(store, "tax01", 1.0)
    ticket = await _ticket(store, 2.0)
    await store.connection("ticket", ticket, "node-b", 1, 2.0)   # held on another process
    await store.connection("ticket", ticket, "node-b", -1, 10.0)
    await store.connection("ticket", ticket, NODE, -1, 10.0)     # deadline 70
    await store.connection("staff", "tax01", NODE, -1, 10.0)     # deadline 30
    now = 200.0
    await store.outage_over(NODE, now, LiveSockets(staff={}, tickets={}, addresses={}))
    assert await store.redis.zscore(keys.TICKET_GONE, ticket) == now + 60.0
    assert await store.redis.zscore(keys.STAFF_GONE, "tax01") == now + 20.0
    # The ticks after an outage do not sweep for a heartbeat's TTL (signaling/clock.py).
    assert await store.tick(now + 1.0, sweep=False) == []
    assert (await store.ticket(ticket)).status == "waiting"  # type: ignore[union-attr]
    # Idempotent: a second process that saw the same outage changes nothing more.
    await store.outage_over("node-b", now + 0.5,
                            LiveSockets(staff={}, tickets={}, addresses={}))
    assert await store.redis.zscore(keys.TICKET_GONE, ticket) == now + 60.5


async def test_a_ring_that_ran_out_during_the_outage_is_not_a_miss(store: Store) -> None:
    await store.heartbeat(NODE, 0.0)
    await _staff(store, "tax01", 1.0)
    ticket = await _ticket(store, 2.0)                    # rings tax01 until 17
    assert (await store.ticket(ticket)).status == "ringing"  # type: ignore[union-attr]
    now = 60.0
    _buried, events = await store.outage_over(NODE, now, LiveSockets(
        staff={"tax01": 1}, tickets={ticket: 1}, addresses={}))
    assert ("withdrawn", ticket, "tax01") in events
    assert ("ticket", ticket, "waiting") in events
    state = await store.staff_state("tax01")
    assert state["presence"] == "available" and state.get("misses", "0") == "0"
    # The next tick rings the same staff member again (no decline cooldown for it).
    events = await store.tick(now + 0.25)
    assert ("ring", ticket, "tax01") in events
    log = [(e["event"], e["detail"]) for e in await store.log_entries(0, 2e9)]
    assert ("NOANSWER", "redis outage") in log


@pytest.mark.parametrize("heartbeat_first", [False, True])
async def test_a_process_buried_meanwhile_gives_nobody_their_grace_or_ring_back(
        store: Store, heartbeat_first: bool) -> None:
    """Cut off from Redis alone (or stopped), the process was swept by another that kept the
    clocks meanwhile: its return counts its sockets in, but the others' graces and rings are
    left as they run, whether it finds its heartbeat gone or its heartbeat found it buried."""
    await store.heartbeat(NODE, 0.0)
    await _staff(store, "tax01", 1.0)
    await store.connection("staff", "tax01", "node-b", 1, 1.0)   # the desk is on node-b
    await store.connection("staff", "tax01", NODE, -1, 1.0)
    ringing = await _ticket(store, 2.0, connect=False)    # rings tax01 until 17
    await store.connection("ticket", ringing, "node-b", 1, 2.0)
    left = await _ticket(store, 3.0, connect=False)
    await store.connection("ticket", left, "node-b", 1, 3.0)
    await store.connection("ticket", left, "node-b", -1, 10.0)  # deadline 70
    await store.heartbeat("node-b", 9.0)
    await store.tick(9.0)                                 # node-b sweeps node-a (ran out at 5)
    assert await store.redis.zscore(keys.NODES, NODE) is None
    now = 20.0                                            # the ring ran out at 17
    if heartbeat_first:
        assert await store.heartbeat(NODE, now) is True   # found buried, registered again
    _buried, events = await store.outage_over(
        NODE, now, LiveSockets(staff={}, tickets={ringing: 1}, addresses={}),
        buried=heartbeat_first)
    assert events == []
    assert await _conns(store, "ticket", ringing) == {"node-b": "1", NODE: "1"}
    assert await store.redis.zscore(keys.TICKET_GONE, left) == 70.0
    # The ring that ran out is node-b's next tick's: a miss, as for anyone who lets it ring.
    assert await store.redis.zscore(keys.RINGING, ringing) == 17.0


async def test_a_tick_without_the_sweep_leaves_lapsed_processes_alone(store: Store) -> None:
    await store.heartbeat("node-b", 0.0)
    await _staff(store, "tax01", 1.0, available=False)
    await store.connection("staff", "tax01", "node-b", 1, 1.0)
    await store.connection("staff", "tax01", NODE, -1, 1.0)
    await store.tick(50.0, sweep=False)
    assert await store.redis.zscore(keys.NODES, "node-b") is not None
    assert await _conns(store, "staff", "tax01") == {"node-b": "1"}
    await store.tick(51.0)
    assert await store.redis.zscore(keys.NODES, "node-b") is None
    assert await _conns(store, "staff", "tax01") == {}
