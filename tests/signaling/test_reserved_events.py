"""Client events named like the connection's own (connect, disconnect, …) are refused on every
namespace with a structured error and never reach a handler: a forged `connect` no longer
overwrites a kiosk socket's session, a forged `disconnect` no longer abandons a ticket whose
socket is open, and a forged `connect` on /staff no longer counts a desk. Also pins the private
python-socketio hook signaling/socket_server.py relies on."""

from __future__ import annotations

import asyncio
import inspect

import redis.asyncio as aioredis
import socketio

from signaling import keys
from signaling.client import SignalingClient, login_cookie
from signaling.errors import CATALOGUE
from signaling.socket_server import RESERVED_EVENTS, SocketServer
from tests.support.server import LiveServer


async def sockets_of(redis: aioredis.Redis, kind: str, ident: str) -> int:
    return sum(int(n) for n in (await redis.hgetall(keys.CONNS(kind, ident))).values())


async def assert_every_reserved_name_is_refused(client: SignalingClient) -> None:
    for name in sorted(RESERVED_EVENTS):
        for payload in ({}, {"forged": True}, "text"):
            answer = await client.call(name, payload)
            assert answer["ok"] is False, (name, answer)
            error = answer["error"]
            assert (error["code"], error["detail"]) == ("invalid_payload", name)
            assert error["message"] == CATALOGUE["invalid_payload.reserved_event"].zh


async def test_reserved_names_on_kiosk_leave_the_socket_and_its_ticket_as_they_were(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    ticket = (await kiosk.request("ticket:create", {"department": "tax", "consent": True}))[
        "ticket"]
    tid = ticket["ticket_id"]
    await assert_every_reserved_name_is_refused(kiosk)
    # Three forged disconnects once abandoned the ticket of this open socket.
    assert await sockets_of(redis_client, "ticket", tid) == 1
    assert await redis_client.hget(keys.TICKET(tid), "status") == "waiting"
    assert await redis_client.zscore(keys.TICKET_GONE, tid) is None
    # The socket still serves, with its session (its ticket) intact.
    resumed = await kiosk.request("ticket:resume", {"ticket_id": tid, "token": ticket["token"]})
    assert resumed["ticket"]["status"] == "waiting"
    # A forged connect once overwrote the session, so the real disconnect forgot the ticket
    # and it stayed waiting for good: now it goes on its reconnect grace.
    await kiosk.close()
    for _ in range(50):
        if await redis_client.zscore(keys.TICKET_GONE, tid) is not None:
            break
        await asyncio.sleep(0.1)
    assert await sockets_of(redis_client, "ticket", tid) == 0
    assert await redis_client.zscore(keys.TICKET_GONE, tid) is not None


async def test_reserved_names_on_staff_count_no_desk(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    desk = await SignalingClient.connect(server.url, "/staff",
                                         await login_cookie(server.url, "tax01", "demo12345"))
    await desk.next("staff:state")
    assert await sockets_of(redis_client, "staff", "tax01") == 1
    await assert_every_reserved_name_is_refused(desk)
    assert await sockets_of(redis_client, "staff", "tax01") == 1
    assert (await desk.call("presence:set", {"state": "available"}))["ok"] is True
    await desk.close()
    for _ in range(50):
        if await sockets_of(redis_client, "staff", "tax01") == 0:
            break
        await asyncio.sleep(0.1)
    # Nobody is counted connected once the one real desk is gone.
    assert await sockets_of(redis_client, "staff", "tax01") == 0


async def test_reserved_names_on_room_are_refused_and_the_socket_serves(
        server: LiveServer) -> None:
    room = await SignalingClient.connect(server.url, "/room")
    await assert_every_reserved_name_is_refused(room)
    answer = await room.call("room:join", {"room_id": "r1", "token": "forged"})
    assert answer["error"]["code"] == "forbidden"
    await room.close()


async def test_a_reserved_name_without_acknowledgement_is_dropped(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    ticket = (await kiosk.request("ticket:create", {"department": "tax", "consent": True}))[
        "ticket"]
    for _ in range(3):
        await kiosk.sio.emit("disconnect", {}, namespace="/kiosk")
    # Events of one socket are handled in order of arrival: this answer comes after them.
    assert (await kiosk.call("ticket:resume", {"ticket_id": ticket["ticket_id"],
                                               "token": ticket["token"]}))["ok"] is True
    assert await sockets_of(redis_client, "ticket", ticket["ticket_id"]) == 1
    await kiosk.close()


def test_the_python_socketio_hook_is_where_the_gate_expects_it() -> None:
    """socket_server.py overrides AsyncServer._handle_event_internal: it must still be the one
    path of client events (called by _handle_event) with the same parameters."""
    hook = socketio.AsyncServer._handle_event_internal
    assert list(inspect.signature(hook).parameters) == [
        "self", "server", "sid", "eio_sid", "data", "namespace", "id"]
    assert "_handle_event_internal" in inspect.getsource(socketio.AsyncServer._handle_event)
    assert "_trigger_event(data[0]" in inspect.getsource(hook)
    for method in ("_handle_connect", "_handle_disconnect", "disconnect"):
        source = inspect.getsource(getattr(socketio.AsyncServer, method))
        assert "_handle_event_internal" not in source
    assert SocketServer._handle_event_internal is not hook
