"""The abuse limits over real Socket.IO connections to the real app on the real Redis: each limit
refuses with its catalogue error (code `limit`, the Chinese message, `retry_after` where waiting
helps), and other sockets and other client addresses are not affected. Several client addresses
come from a trusted proxy's X-Forwarded-For (the proxy is 127.0.0.1 here). The token bucket is
pure and tested without a server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio

from server.config import Config
from signaling import keys
from signaling.client import SignalingClient
from signaling.errors import CATALOGUE
from signaling.limits import TokenBucket, is_registered_device
from tests.support.server import LiveServer, start_server

ServerFactory = Callable[..., Awaitable[LiveServer]]
PHONE = "13800138000"


@pytest.fixture
async def limited(config: Config, redis_client: aioredis.Redis
                  ) -> AsyncIterator[ServerFactory]:
    """Start the real app with the given limits on (every other one off, as in `config`), behind
    127.0.0.1 as a trusted proxy."""
    servers: list[LiveServer] = []

    async def start(**limits: Any) -> LiveServer:
        live = await start_server(replace(config, trusted_proxies=("127.0.0.1",), **limits))
        servers.append(live)
        return live

    yield start
    for live in servers:
        await live.runner.cleanup()


async def kiosk(server: LiveServer, address: str) -> SignalingClient:
    return await SignalingClient.connect(server.url, "/kiosk",
                                         headers={"X-Forwarded-For": address})


async def take(client: SignalingClient, dept: str = "tax") -> dict[str, Any]:
    return await client.call("ticket:create", {"department": dept, "consent": True})


async def ask_callback(client: SignalingClient, phone: str = PHONE) -> dict[str, Any]:
    return await client.call("callback:request", {"department": "tax", "name": "王五",
                                                  "phone": phone, "consent": True})


def refused(answer: dict[str, Any], name: str, **params: Any) -> dict[str, Any]:
    """The answer is the catalogue entry `name`; returns its error object."""
    assert answer["ok"] is False, answer
    error = answer["error"]
    assert error["code"] == name.partition(".")[0] == "limit"
    text = CATALOGUE[name]
    assert text.status == 429
    assert error["message"] == (text.zh.format(**params) if params else text.zh)
    assert error["message_en"] == (text.en.format(**params) if params else text.en)
    return error  # type: ignore[no-any-return]


async def test_one_socket_holds_one_open_ticket_and_may_take_another_once_it_is_done(
        limited: ServerFactory) -> None:
    server = await limited(max_tickets_per_socket=1)
    first, other = await kiosk(server, "203.0.113.1"), await kiosk(server, "203.0.113.1")
    ticket = (await take(first))["ticket"]
    error = refused(await take(first, "fund"), "limit.tickets_per_socket")
    assert "retry_after" not in error  # waiting does not help: finishing the ticket does
    assert error["message"] == "您已经取了一个号，请办理完或取消后再取新号。"
    # Another socket from the same address is not affected.
    assert (await take(other))["ok"] is True
    cancelled = await first.call("ticket:cancel", {"ticket_id": ticket["ticket_id"],
                                                   "token": ticket["token"]})
    assert cancelled["ok"] is True
    assert (await take(first))["ok"] is True
    for client in (first, other):
        await client.close()


async def test_tickets_sent_at_once_on_one_socket_give_it_one_ticket(
        limited: ServerFactory, redis_client: aioredis.Redis) -> None:
    server = await limited(max_tickets_per_socket=1)
    client = await kiosk(server, "203.0.113.2")
    answers = await asyncio.gather(*[take(client) for _ in range(8)])
    assert sum(1 for a in answers if a["ok"]) == 1
    for answer in answers:
        if not answer["ok"]:
            refused(answer, "limit.tickets_per_socket")
    assert len(await redis_client.zrange(keys.QUEUE("tax"), 0, -1)) == 1
    await client.close()


async def test_one_address_holds_at_most_its_open_tickets(limited: ServerFactory) -> None:
    server = await limited(max_tickets_per_socket=1, max_tickets_per_address=3)
    hall = [await kiosk(server, "198.51.100.10") for _ in range(4)]
    tickets = [(await take(client))["ticket"] for client in hall[:3]]
    refused(await take(hall[3]), "limit.tickets_per_address", max=3)
    # Another address is not affected.
    elsewhere = await kiosk(server, "198.51.100.11")
    assert (await take(elsewhere))["ok"] is True
    # Once one of the three is done, the address may take one again.
    await hall[0].call("ticket:cancel", {"ticket_id": tickets[0]["ticket_id"],
                                         "token": tickets[0]["token"]})
    assert (await take(hall[3]))["ok"] is True
    for client in (*hall, elsewhere):
        await client.close()


async def test_an_address_takes_a_limited_number_of_tickets_a_minute(
        limited: ServerFactory) -> None:
    server = await limited(ticket_creations_per_minute=2)
    client = await kiosk(server, "192.0.2.20")
    assert (await take(client))["ok"] and (await take(client, "fund"))["ok"]
    answer = await take(client, "market")
    retry = answer["error"].get("retry_after")
    assert isinstance(retry, int) and 1 <= retry <= 60
    refused(answer, "limit.ticket_creations", seconds=retry)
    assert f"请 {retry} 秒后再试" in answer["error"]["message"]
    other = await kiosk(server, "192.0.2.21")
    assert (await take(other, "market"))["ok"] is True
    for c in (client, other):
        await c.close()


async def test_an_address_asks_for_a_limited_number_of_callbacks_a_minute(
        limited: ServerFactory, redis_client: aioredis.Redis) -> None:
    server = await limited(callbacks_per_minute=3)
    client = await kiosk(server, "192.0.2.30")
    for i in range(3):
        assert (await ask_callback(client, f"1380013800{i}"))["ok"] is True
    answer = await ask_callback(client, "13800138009")
    retry = answer["error"]["retry_after"]
    refused(answer, "limit.callbacks", seconds=retry)
    assert await redis_client.hlen(keys.CALLBACKS("tax")) == 3
    other = await kiosk(server, "192.0.2.31")
    assert (await ask_callback(other, "13800138009"))["ok"] is True
    for c in (client, other):
        await c.close()


async def test_one_phone_number_asks_for_a_limited_number_of_callbacks_a_day(
        limited: ServerFactory) -> None:
    server = await limited(callbacks_per_phone_per_day=2)
    first, second = await kiosk(server, "192.0.2.40"), await kiosk(server, "192.0.2.41")
    assert (await ask_callback(first))["ok"] and (await ask_callback(second))["ok"]
    # The same digits written otherwise, from a third address: still that number.
    third = await kiosk(server, "192.0.2.42")
    answer = await ask_callback(third, "138 0013-8000")
    error = refused(answer, "limit.callbacks_per_phone", max=2)
    assert 86000 < error["retry_after"] <= 86400
    assert (await ask_callback(third, "13900139000"))["ok"] is True
    for c in (first, second, third):
        await c.close()


async def connect_refusal(server: LiveServer, address: str) -> dict[str, Any]:
    """Connect a /kiosk socket that the server refuses; the structured error it gave."""
    client = SignalingClient("/kiosk")
    errors: asyncio.Queue[Any] = asyncio.Queue()
    client.sio.on("connect_error", errors.put_nowait, namespace="/kiosk")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.sio.connect(server.url, namespaces=["/kiosk"],
                                 headers={"X-Forwarded-For": address},
                                 transports=["websocket"], wait_timeout=10)
    return await asyncio.wait_for(errors.get(), 5)  # type: ignore[no-any-return]


async def test_an_address_opens_a_limited_number_of_kiosk_sockets(
        limited: ServerFactory, redis_client: aioredis.Redis) -> None:
    server = await limited(max_sockets_per_address=2)
    sockets = [await kiosk(server, "198.51.100.50") for _ in range(2)]
    packet = await connect_refusal(server, "198.51.100.50")
    error = packet["data"]
    assert packet["message"] == error["message"]
    assert error["code"] == "limit"
    assert error["message"] == CATALOGUE["limit.sockets_per_address"].zh
    assert error["retry_after"] == 30
    other = await kiosk(server, "198.51.100.51")
    assert (await take(other))["ok"] is True  # other addresses are not affected
    # The open ones still serve, and a closed one makes room.
    assert (await take(sockets[0]))["ok"] is True
    await sockets[1].close()

    async def count() -> int:
        return sum(int(n) for n in
                   (await redis_client.hgetall(keys.CONNS("address", "198.51.100.50"))).values())

    for _ in range(50):
        if await count() == 1:
            break
        await asyncio.sleep(0.1)
    again = await kiosk(server, "198.51.100.50")
    for client in (sockets[0], other, again):
        await client.close()


async def test_a_socket_sending_too_many_events_is_refused_and_others_are_not(
        limited: ServerFactory) -> None:
    server = await limited(events_per_second=1.0, event_burst=3)
    flood, calm = await kiosk(server, "192.0.2.60"), await kiosk(server, "192.0.2.60")
    probe = {"ticket_id": "0" * 16, "token": "x" * 16}
    answers = await asyncio.gather(*[flood.call("ticket:resume", probe) for _ in range(10)])
    codes = [a["error"]["code"] for a in answers]
    assert codes.count("not_found") == 3 and codes.count("limit") == 7
    rate = next(a["error"] for a in answers if a["error"]["code"] == "limit")
    refused({"ok": False, "error": rate}, "limit.rate")
    assert 0 < rate["retry_after"] <= 1
    assert (await calm.call("ticket:resume", probe))["error"]["code"] == "not_found"
    await asyncio.sleep(1.1)  # a token came back
    assert (await flood.call("ticket:resume", probe))["error"]["code"] == "not_found"
    for client in (flood, calm):
        await client.close()


async def test_an_ended_ticket_expires_after_ticket_keep_hours(
        limited: ServerFactory, redis_client: aioredis.Redis) -> None:
    server = await limited(ticket_keep_hours=1)
    client = await kiosk(server, "192.0.2.70")
    ticket = (await take(client))["ticket"]
    assert await redis_client.ttl(keys.TICKET(ticket["ticket_id"])) == -1  # open: kept
    await client.call("ticket:cancel", {"ticket_id": ticket["ticket_id"],
                                        "token": ticket["token"]})
    assert 3590 <= await redis_client.ttl(keys.TICKET(ticket["ticket_id"])) <= 3600
    # Its page can still read it until then.
    resumed = await client.call("ticket:resume", {"ticket_id": ticket["ticket_id"],
                                                  "token": ticket["token"]})
    assert resumed["ticket"]["status"] == "cancelled"
    await client.close()


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=4, burst=2)
    assert [bucket.take(10.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take(10.0) == pytest.approx(0.25)
    assert bucket.take(10.1) == pytest.approx(0.15)
    assert bucket.take(10.25) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.take(100.0) == 0.0  # refilled to the burst only
    assert bucket.take(100.0) > 0
    assert bucket.take(99.0) > 0  # a clock that steps back gives nothing


def test_a_bucket_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=5)


def test_a_registered_kiosk_is_marked_in_its_socket_session() -> None:
    assert is_registered_device({"device": "hall1-kiosk3", "tickets": []})
    assert not is_registered_device({"tickets": []})
    assert not is_registered_device(None)
