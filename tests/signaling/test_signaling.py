"""Signaling over real Socket.IO connections to the real app: the queue flow up to a connected
call, and clear errors for bad input that change nothing."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
import socketio

from server.keys import NODE
from signaling import keys
from signaling.accounts import AccountPolicy, Accounts
from signaling.client import SignalingClient as SocketClient
from signaling.client import login_cookie
from signaling.store import Store
from tests.support.server import LiveServer


@pytest.fixture
async def kiosk(server: LiveServer) -> AsyncIterator[SocketClient]:
    client = await SocketClient.connect(server.url, "/kiosk")
    yield client
    await client.close()


async def _staff(server: LiveServer, username: str) -> SocketClient:
    client = await SocketClient.connect(server.url, "/staff",
                                        await login_cookie(server.url, username, "demo12345"))
    await client.next("staff:state")
    return client


async def test_ticket_is_offered_to_the_department_and_connected_on_accept(
        server: LiveServer, kiosk: SocketClient) -> None:
    staff = await _staff(server, "tax01")
    answer = await kiosk.call("ticket:create", {"department": "tax", "consent": True})
    assert answer["ok"] is True
    ticket = answer["ticket"]
    assert (ticket["status"], ticket["position"], ticket["number"]) == ("waiting", 1, "税A001")
    assert ticket["token"]

    assert (await staff.call("presence:set", {"state": "available"}))["presence"] == "available"
    incoming = await staff.next("call:incoming")
    assert (incoming["ticket_id"], incoming["number"]) == (ticket["ticket_id"], "税A001")
    await kiosk.next("ticket:update", status="ringing")

    accepted = await staff.call("call:accept", {"ticket_id": ticket["ticket_id"]})
    assert accepted["ok"] is True and accepted["room"]["token"]
    update = await kiosk.next("ticket:update", status="connected")
    assert update["room"]["room_id"] == accepted["room"]["room_id"]
    assert update["room"]["token"] != accepted["room"]["token"]
    state = await staff.next("staff:state", presence="in_call")
    assert state["departments"] == ["tax"]
    await staff.close()


async def test_queue_positions_are_live_and_cancel_frees_the_place(
        server: LiveServer, kiosk: SocketClient) -> None:
    first = (await kiosk.call("ticket:create", {"department": "fund", "consent": True}))["ticket"]
    other = await SocketClient.connect(server.url, "/kiosk")
    second = (await other.call("ticket:create", {"department": "fund", "consent": True}))["ticket"]
    assert second["position"] == 2
    cancelled = await kiosk.call("ticket:cancel", {"ticket_id": first["ticket_id"],
                                                   "token": first["token"]})
    assert cancelled["ticket"]["status"] == "cancelled"
    await other.next("ticket:update", ticket_id=second["ticket_id"], position=1)
    # The token of one ticket is worth nothing for another.
    refused = await other.call("ticket:cancel", {"ticket_id": second["ticket_id"],
                                                 "token": first["token"]})
    assert refused["error"]["code"] == "not_found"
    resumed = await other.call("ticket:resume", {"ticket_id": second["ticket_id"],
                                                 "token": second["token"]})
    assert (resumed["ticket"]["status"], resumed["ticket"]["position"]) == ("waiting", 1)
    await other.close()


async def test_unknown_department_and_missing_consent_are_refused(
        kiosk: SocketClient, store: Store) -> None:
    answer = await kiosk.call("ticket:create", {"department": "mars", "consent": True})
    assert answer["error"]["code"] == "unknown_department"
    assert answer["error"]["message"] == "没有这个部门，请重新选择。"
    answer = await kiosk.call("ticket:create", {"department": "tax", "consent": False})
    assert answer["error"]["code"] == "consent_required"
    assert await store.waiting("tax") == []


@pytest.mark.parametrize("payload", [
    "tax", 42, ["tax", True], {"department": "tax"},
    {"department": "tax", "consent": True, "priority": "vip"},
    {"department": {"$ne": 1}, "consent": True},
    {"department": "tax", "consent": True, "padding": "x" * 70_000},
])
async def test_malformed_and_oversized_payloads_change_nothing(
        kiosk: SocketClient, store: Store, payload: object) -> None:
    answer = await kiosk.call("ticket:create", payload)
    assert answer["ok"] is False
    assert answer["error"]["code"] == "invalid_payload"
    assert await store.waiting("tax") == []
    # The connection still serves.
    assert (await kiosk.call("ticket:create", {"department": "tax", "consent": True}))["ok"]


async def test_staff_namespace_refuses_a_socket_without_a_staff_login(
        server: LiveServer) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await SocketClient.connect(server.url, "/staff")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await SocketClient.connect(server.url, "/staff", "yz_session=forged")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await SocketClient.connect(server.url, "/staff",
                                   await login_cookie(server.url, "supervisor", "demo12345"))


async def test_room_events_before_joining_are_unauthenticated(server: LiveServer) -> None:
    room = await SocketClient.connect(server.url, "/room")
    answer = await room.call("room:answer", {"sdp": "v=0"})
    assert answer["error"]["code"] == "unauthenticated"
    answer = await room.call("room:join", {"room_id": "r1", "token": "forged"})
    assert answer["error"]["code"] == "forbidden"
    await room.close()


async def test_accepting_a_call_not_offered_to_you_is_refused(
        server: LiveServer, kiosk: SocketClient, store: Store) -> None:
    tax = await _staff(server, "tax01")
    market = await _staff(server, "market01")
    ticket = (await kiosk.call("ticket:create", {"department": "tax", "consent": True}))["ticket"]
    # Not rung at all yet.
    answer = await tax.call("call:accept", {"ticket_id": ticket["ticket_id"]})
    assert answer["error"]["code"] == "not_offered"
    await tax.call("presence:set", {"state": "available"})
    await tax.next("call:incoming")
    answer = await market.call("call:accept", {"ticket_id": ticket["ticket_id"]})
    assert answer["error"]["code"] == "not_offered"
    answer = await market.call("call:decline", {"ticket_id": ticket["ticket_id"]})
    assert answer["error"]["code"] == "not_offered"
    stored = await store.ticket(ticket["ticket_id"])
    assert stored is not None and (stored.status, stored.staff) == ("ringing", "tax01")
    # The right person can still take it.
    assert (await tax.call("call:accept", {"ticket_id": ticket["ticket_id"]}))["ok"]
    await tax.close()
    await market.close()


async def test_a_staff_member_who_declines_is_replaced_by_a_colleague(
        server: LiveServer, kiosk: SocketClient, store: Store) -> None:
    from signaling.accounts import hash_password
    await Accounts(store.redis, AccountPolicy()).put(
        "tax02", display_name="税务坐席02", role="staff", departments=("tax",),
        password_hash=hash_password("demo12345"))
    first = await _staff(server, "tax01")
    second = await _staff(server, "tax02")
    await first.call("presence:set", {"state": "available"})
    await second.call("presence:set", {"state": "available"})
    ticket = (await kiosk.call("ticket:create", {"department": "tax", "consent": True}))["ticket"]
    await first.next("call:incoming", ticket_id=ticket["ticket_id"])
    assert (await first.call("call:decline", {"ticket_id": ticket["ticket_id"]}))["ok"]
    await second.next("call:incoming", ticket_id=ticket["ticket_id"])
    assert (await second.call("call:accept", {"ticket_id": ticket["ticket_id"]}))["ok"]
    await first.close()
    await second.close()


async def _set_department(store: Store, dept_id: str, **changes: object) -> None:
    from signaling.departments import Department
    dept = await store.department(dept_id)
    assert dept is not None
    await store.put_department(Department.from_dict({**dept.to_dict(), **changes}))


async def test_a_closed_department_says_so_and_queues_nothing(
        kiosk: SocketClient, store: Store) -> None:
    await _set_department(store, "estate", closed_days=[], hours={"mon-sun": []})
    answer = await kiosk.call("ticket:create", {"department": "estate", "consent": True})
    assert answer["error"]["code"] == "closed"
    assert "服务时间" in answer["error"]["message"]
    assert answer["error"]["next_open"] is None
    assert await store.waiting("estate") == []
    # The applicant can leave a callback request instead; bad phone numbers are refused.
    bad = await kiosk.call("callback:request", {"department": "estate", "name": "张三",
                                                "phone": "call me", "consent": True})
    assert bad["error"]["code"] == "invalid_payload"
    good = await kiosk.call("callback:request", {"department": "estate", "name": "张三",
                                                 "phone": "138 0000 0000", "note": "过户",
                                                 "consent": True})
    assert good["ok"] and good["callback_id"]
    assert [c["phone"] for c in await store.callbacks(("estate",))] == ["138 0000 0000"]


async def test_staff_see_callback_requests_and_mark_them_done(
        server: LiveServer, kiosk: SocketClient) -> None:
    staff = await _staff(server, "estate01")
    await kiosk.call("callback:request", {"department": "estate", "name": "李四",
                                          "phone": "13900000000", "consent": True})
    new = await staff.next("callback:new")
    listed = await staff.call("callback:list", {})
    assert [c["callback_id"] for c in listed["callbacks"]] == [new["callback_id"]]
    other = await _staff(server, "tax01")
    refused = await other.call("callback:done", {"callback_id": new["callback_id"]})
    assert refused["error"]["code"] == "not_found"      # not their department's
    assert (await staff.call("callback:done", {"callback_id": new["callback_id"]}))["ok"]
    assert (await staff.call("callback:list", {}))["callbacks"] == []
    await staff.close()
    await other.close()


async def test_only_a_hall_guide_can_choose_the_priority_lane(
        server: LiveServer, kiosk: SocketClient, store: Store) -> None:
    payload = {"department": "tax", "consent": True, "priority": True}
    answer = await kiosk.call("ticket:create", payload)
    assert answer["error"]["code"] == "forbidden"
    assert await store.waiting("tax") == []
    cookie = await login_cookie(server.url, "guide01", "demo12345")
    guide = await SocketClient.connect(server.url, "/kiosk", cookie)
    ordinary = (await kiosk.call("ticket:create", {"department": "tax", "consent": True}))
    answer = await guide.call("ticket:create", payload)
    assert answer["ok"] and answer["ticket"]["priority"] is True
    assert answer["ticket"]["number"] == "税B001"
    assert await store.waiting("tax") == [answer["ticket"]["ticket_id"],
                                          ordinary["ticket"]["ticket_id"]]
    # Signed out (here, in another tab), the guide's kiosk socket is an applicant's again.
    async with aiohttp.ClientSession() as http:
        await http.post(f"{server.url}/api/logout", headers={"Cookie": cookie})
    answer = await guide.call("ticket:create", payload)
    assert answer["error"]["code"] == "forbidden"
    await guide.close()


async def test_double_accept_and_accept_after_the_ring_timed_out_are_refused(
        server: LiveServer, kiosk: SocketClient, store: Store) -> None:
    await _set_department(store, "tax", ring_timeout=3, ring_pause=0)
    staff = await _staff(server, "tax01")
    await staff.call("presence:set", {"state": "available"})
    first = (await kiosk.call("ticket:create", {"department": "tax", "consent": True}))["ticket"]
    await staff.next("call:incoming", ticket_id=first["ticket_id"])
    withdrawn = await staff.next("call:withdrawn", timeout=8, ticket_id=first["ticket_id"])
    assert withdrawn["reason"] == "timeout"
    late = await staff.call("call:accept", {"ticket_id": first["ticket_id"]})
    assert late["error"]["code"] == "not_offered"
    assert await store.waiting("tax") == [first["ticket_id"]]
    # Back to available (one miss of two allowed), rung again once the cool-down allows it:
    # a second ticket comes first, and accepting it twice is refused the second time.
    second = (await kiosk.call("ticket:create", {"department": "tax", "consent": True}))["ticket"]
    await staff.next("call:incoming", ticket_id=second["ticket_id"])
    assert (await staff.call("call:accept", {"ticket_id": second["ticket_id"]}))["ok"]
    again = await staff.call("call:accept", {"ticket_id": second["ticket_id"]})
    assert again["error"]["code"] == "not_offered"
    await staff.close()


async def test_a_waiting_ticket_gets_an_estimated_wait(
        server: LiveServer, kiosk: SocketClient, store: Store) -> None:
    from signaling.eta import DEFAULT_HANDLING_S
    answer = await kiosk.call("ticket:create", {"department": "hrss", "consent": True})
    first = answer["ticket"]
    assert first["eta_seconds"] is None                     # nobody on duty
    staff = await _staff(server, "hrss01")
    await staff.call("presence:set", {"state": "available"})
    await staff.next("call:incoming", ticket_id=first["ticket_id"])
    assert (await staff.call("call:accept", {"ticket_id": first["ticket_id"]}))["ok"]
    # One staff member on duty, busy: the next applicant waits about one consultation.
    second = (await kiosk.call("ticket:create", {"department": "hrss", "consent": True}))
    assert second["ticket"]["eta_seconds"] == DEFAULT_HANDLING_S
    away = await _staff(server, "fund01")
    await away.call("presence:set", {"state": "away", "reason": "会议"})
    state = await away.next("staff:state", presence="away")
    assert state["reason"] == "会议"
    await staff.close()
    await away.close()


async def test_a_socket_counts_out_a_ticket_it_cancelled_at_once(
        server: LiveServer, kiosk: SocketClient, store: Store) -> None:
    """A long-lived kiosk socket follows only its open tickets: each cancelled one is counted
    out when it is cancelled, so nothing of it stays in Redis and the disconnect has nothing
    left to count out."""
    node = server.app[NODE]
    taken = []
    for _ in range(3):
        ticket = (await kiosk.call("ticket:create",
                                   {"department": "fund", "consent": True}))["ticket"]
        assert await store.redis.hget(keys.CONNS("ticket", ticket["ticket_id"]), node) == "1"
        cancelled = await kiosk.call("ticket:cancel", {"ticket_id": ticket["ticket_id"],
                                                       "token": ticket["token"]})
        assert cancelled["ok"] is True
        taken.append(ticket["ticket_id"])
        assert not await store.redis.exists(keys.CONNS("ticket", ticket["ticket_id"]))
    assert not set(taken) & await store.redis.smembers(keys.NODE(node, "ticket"))
