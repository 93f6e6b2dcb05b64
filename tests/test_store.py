"""The queue, presence and dispatch scripts, against a real Redis server."""

import redis.asyncio as aioredis

from server.store import Store


async def _available(store: Store, *users: str, start: float = 100.0) -> None:
    for i, user in enumerate(users):
        code, presence, _ = await store.set_presence(user, "available", start + i)
        assert (code, presence) == ("ok", "available")


async def test_hall_numbers_count_per_department_and_queue_is_first_come_first_served(
        store: Store) -> None:
    a, _ = await store.create_ticket("tax", "税", 1.0)
    b, _ = await store.create_ticket("tax", "税", 2.0)
    c, _ = await store.create_ticket("fund", "积", 3.0)
    assert (a.number, b.number, c.number) == ("税A001", "税A002", "积A001")
    assert await store.waiting("tax") == [a.ticket_id, b.ticket_id]
    assert await store.position(b) == 2


async def test_dispatch_rings_the_longest_idle_staff_member_once(
        store: Store, redis_client: aioredis.Redis) -> None:
    from server.passwords import hash_password
    await store.put_user("tax02", display_name="税务坐席02", role="staff", departments=("tax",),
                         password_hash=hash_password("x"))
    await _available(store, "tax02", start=50.0)   # idle since 50
    await _available(store, "tax01", start=60.0)   # idle since 60
    t1, _ = await store.create_ticket("tax", "税", 70.0)
    assert await store.dispatch("tax", 71.0, 15.0) == [(t1.ticket_id, "tax02")]
    # Nobody else is rung for it, and the ringing staff member is not rung again.
    assert await store.dispatch("tax", 72.0, 15.0) == []
    t2, _ = await store.create_ticket("tax", "税", 73.0)
    assert await store.dispatch("tax", 74.0, 15.0) == [(t2.ticket_id, "tax01")]
    assert (await store.staff_state("tax02"))["presence"] == "ringing"


async def test_accept_only_by_the_staff_member_being_rung(store: Store) -> None:
    await _available(store, "tax01")
    ticket, _ = await store.create_ticket("tax", "税", 200.0)
    await store.dispatch("tax", 201.0, 15.0)
    assert await store.accept(ticket.ticket_id, "market01", 202.0) == "not_offered"
    assert await store.accept("nonexistent", "tax01", 202.0) == "not_offered"
    assert await store.accept(ticket.ticket_id, "tax01", 202.0) == "ok"
    assert await store.accept(ticket.ticket_id, "tax01", 203.0) == "not_offered"  # twice
    assert (await store.ticket(ticket.ticket_id)).status == "connected"  # type: ignore[union-attr]
    assert (await store.staff_state("tax01"))["presence"] == "in_call"


async def test_decline_passes_the_ticket_on_and_keeps_its_place(store: Store) -> None:
    from server.passwords import hash_password
    await store.put_user("tax02", display_name="税务坐席02", role="staff", departments=("tax",),
                         password_hash=hash_password("x"))
    first, _ = await store.create_ticket("tax", "税", 1.0)
    second, _ = await store.create_ticket("tax", "税", 2.0)
    await _available(store, "tax01")
    assert await store.dispatch("tax", 3.0, 15.0) == [(first.ticket_id, "tax01")]
    assert await store.decline(first.ticket_id, "tax01", 4.0) == "tax"
    # Back at the head of the queue, ahead of the later ticket; the decliner is not re-rung for
    # it straight away, so the later ticket goes to them instead.
    assert await store.waiting("tax") == [first.ticket_id, second.ticket_id]
    assert await store.dispatch("tax", 5.0, 15.0) == [(second.ticket_id, "tax01")]
    await _available(store, "tax02", start=6.0)
    assert await store.dispatch("tax", 7.0, 15.0) == [(first.ticket_id, "tax02")]
    assert await store.decline(first.ticket_id, "tax01", 8.0) == ""  # not theirs any more


async def test_a_ring_that_times_out_requeues_and_pauses_the_staff_member(store: Store) -> None:
    await _available(store, "tax01")
    ticket, _ = await store.create_ticket("tax", "税", 300.0)
    await store.dispatch("tax", 301.0, 15.0)
    assert await store.expire_rings(310.0) == []
    assert await store.expire_rings(316.5) == [(ticket.ticket_id, "tax01")]
    state = await store.staff_state("tax01")
    assert (state["presence"], state["reason"]) == ("away", "missed")
    assert await store.waiting("tax") == [ticket.ticket_id]
    assert await store.accept(ticket.ticket_id, "tax01", 317.0) == "not_offered"


async def test_cancel_while_ringing_frees_the_staff_member(store: Store) -> None:
    await _available(store, "tax01")
    ticket, _ = await store.create_ticket("tax", "税", 400.0)
    await store.dispatch("tax", 401.0, 15.0)
    assert await store.cancel_ticket(ticket.ticket_id, 402.0) == ("ok", "tax01")
    assert (await store.staff_state("tax01"))["presence"] == "available"
    assert await store.cancel_ticket(ticket.ticket_id, 403.0) == ("bad_state", "")
    assert await store.waiting("tax") == []


async def test_presence_cannot_change_during_a_call_and_finish_frees_the_staff_member(
        store: Store) -> None:
    await _available(store, "tax01")
    await store.add_connection("tax01", 1)
    ticket, _ = await store.create_ticket("tax", "税", 500.0)
    await store.dispatch("tax", 501.0, 15.0)
    assert (await store.set_presence("tax01", "away", 502.0))[0] == "bad_state"
    await store.accept(ticket.ticket_id, "tax01", 503.0)
    assert (await store.set_presence("tax01", "available", 504.0))[0] == "bad_state"
    assert await store.finish_ticket(ticket.ticket_id, 600.0) == "tax01"
    assert (await store.staff_state("tax01"))["presence"] == "available"
    assert await store.rate_ticket(ticket.ticket_id, 5) == "ok"
    assert await store.rate_ticket(ticket.ticket_id, 1) == "bad_state"  # once only


async def test_every_step_goes_to_the_event_log(store: Store,
                                                redis_client: aioredis.Redis) -> None:
    await _available(store, "tax01")
    ticket, _ = await store.create_ticket("tax", "税", 1.0)
    await store.dispatch("tax", 2.0, 15.0)
    await store.decline(ticket.ticket_id, "tax01", 3.0)
    entries = await redis_client.xrange("yz:log")
    assert [fields["event"] for _, fields in entries] == ["UNPAUSE", "ENTER", "RING", "DECLINE"]


async def test_reset_after_restart_keeps_the_queue_and_clears_what_died_with_the_process(
        store: Store, redis_client: aioredis.Redis) -> None:
    await _available(store, "tax01")
    await store.add_connection("tax01", 1)
    await _available(store, "fund01")
    await store.add_connection("fund01", 2)
    ringing, _ = await store.create_ticket("tax", "税", 1.0)
    await store.dispatch("tax", 2.0, 15.0)
    talking, _ = await store.create_ticket("fund", "积", 3.0)
    await store.dispatch("fund", 4.0, 15.0)
    await store.accept(talking.ticket_id, "fund01", 5.0)
    await store.put_room("r1", {"node": "dead", "ticket_id": talking.ticket_id})
    waiting, _ = await store.create_ticket("tax", "税", 6.0)

    assert await store.reset_after_restart(100.0) == 1

    assert await store.waiting("tax") == [ringing.ticket_id, waiting.ticket_id]
    assert (await store.ticket(talking.ticket_id)).status == "ended"  # type: ignore[union-attr]
    for user in ("tax01", "fund01"):
        state = await store.staff_state(user)
        assert (state["presence"], state["conns"]) == ("offline", "0")
    assert await redis_client.exists("yz:room:r1") == 0
    # Nobody is rung until someone comes back.
    assert await store.dispatch("tax", 101.0, 15.0) == []
