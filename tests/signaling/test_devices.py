"""Registered kiosks over real sockets: a registered kiosk's tickets carry its device and hall; it
holds one open ticket at a time (the refusal queues nothing, and anonymous browsers are not held
to it), and none of its address's limits (a hall's screens share one); a hall guide works at it;
revoking it sends `device:revoked` and closes its sockets at once, in every server process, and
its token no longer counts as registered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
import socketio

from server.config import Config
from signaling import keys
from signaling.client import SignalingClient, login_cookie
from signaling.store import Store
from tests.support.desks import closed_by_server
from tests.support.http import client_session, logged_in
from tests.support.kiosks import DEVICES_URL, HALL, enrol, kiosk_socket
from tests.support.server import LiveServer, start_server

TAX = {"department": "tax", "consent": True}


async def _revoke(server: LiveServer, device_id: str) -> None:
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        response = await admin.post(f"{server.url}{DEVICES_URL}/{device_id}/revoke", json={})
        assert response.status == 200, await response.text()


@pytest.fixture
async def other_server(config: Config, server: LiveServer) -> AsyncIterator[LiveServer]:
    """A second server process's worth of service (its own app, Socket.IO server and
    listeners) on the same Redis."""
    live = await start_server(replace(config, data_dir=config.data_dir.parent / "other"))
    try:
        yield live
    finally:
        await live.runner.cleanup()


async def test_a_registered_kiosks_ticket_carries_its_device_and_hall(
        server: LiveServer, store: Store, redis_client: aioredis.Redis) -> None:
    device = (answer := await enrol(server))["device"]
    kiosk = await kiosk_socket(server, answer["token"])
    ticket = (await kiosk.request("ticket:create", TAX))["ticket"]
    assert ticket["hall"] == HALL
    row = await redis_client.hgetall(keys.TICKET(ticket["ticket_id"]))
    assert (row["device"], row["hall"]) == (device["device_id"], HALL)
    stored = await store.ticket(ticket["ticket_id"])
    assert stored is not None and (stored.device, stored.hall) == (device["device_id"], HALL)
    # The kiosk's connection is its last sighting.
    assert float(await redis_client.hget(keys.DEVICE(device["device_id"]), "last_seen") or 0) \
        > device["created_at"]
    # An anonymous browser's ticket has neither.
    anonymous = await SignalingClient.connect(server.url, "/kiosk")
    other = (await anonymous.request("ticket:create", TAX))["ticket"]
    assert other["hall"] == ""
    assert not {"device", "hall"} & set(await redis_client.hgetall(keys.TICKET(
        other["ticket_id"])))
    await kiosk.close()
    await anonymous.close()


async def test_a_registered_kiosk_holds_one_open_ticket_at_a_time(
        server: LiveServer, store: Store) -> None:
    token = (await enrol(server))["token"]
    kiosk = await kiosk_socket(server, token)
    first = (await kiosk.request("ticket:create", TAX))["ticket"]
    # A second one, in the same or another department, from this socket or another of the
    # same screen (a reloaded page), is refused and queues nothing.
    reloaded = await kiosk_socket(server, token)
    for client, department in ((kiosk, "tax"), (kiosk, "fund"), (reloaded, "fund")):
        refused = await client.call("ticket:create", {"department": department,
                                                      "consent": True})
        assert refused["ok"] is False and refused["error"]["code"] == "limit"
        assert refused["error"]["message"] == "本机已有一个正在办理的号，请先完成或取消。"
    assert await store.waiting("tax") == [first["ticket_id"]]
    assert await store.waiting("fund") == []
    await reloaded.close()
    # Another registered kiosk has its own.
    neighbour = await kiosk_socket(server, (await enrol(server, "2号机"))["token"])
    assert (await neighbour.call("ticket:create", TAX))["ok"] is True
    await neighbour.close()
    # Anonymous browsers are not held to it (their own limits are off in these tests).
    anonymous = await SignalingClient.connect(server.url, "/kiosk")
    for _ in range(2):
        assert (await anonymous.call("ticket:create", TAX))["ok"] is True
    # Once the first has ended (here: cancelled), the kiosk takes the next.
    await kiosk.request("ticket:cancel", {"ticket_id": first["ticket_id"],
                                          "token": first["token"]})
    second = await kiosk.request("ticket:create", TAX)
    assert second["ticket"]["hall"] == HALL
    await kiosk.close()
    await anonymous.close()


async def test_a_ticket_in_a_call_is_still_open_and_the_next_comes_after_it_ends(
        server: LiveServer, store: Store) -> None:
    token = (await enrol(server))["token"]
    kiosk = await kiosk_socket(server, token)
    same_screen = await kiosk_socket(server, token)
    desk = await SignalingClient.connect(server.url, "/staff",
                                         await login_cookie(server.url, "tax01", "demo12345"))
    await desk.next("staff:state")
    await desk.request("presence:set", {"state": "available"})
    ticket = (await kiosk.request("ticket:create", TAX))["ticket"]
    await desk.next("call:incoming")
    await desk.request("call:accept", {"ticket_id": ticket["ticket_id"]})
    await kiosk.next("ticket:update", status="connected")
    refused = await same_screen.call("ticket:create", {"department": "fund", "consent": True})
    assert refused["error"]["code"] == "limit"
    # The consultation ends (what the room's close does), and the screen takes the next.
    await store.finish_ticket(ticket["ticket_id"], time.time())
    assert (await same_screen.call("ticket:create", {"department": "fund",
                                                     "consent": True}))["ok"] is True
    for client in (kiosk, same_screen, desk):
        await client.close()


async def test_a_hall_guide_works_at_a_registered_kiosk(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    device = (answer := await enrol(server))["device"]
    guide_cookie = await login_cookie(server.url, "guide01", "demo12345")
    kiosk = await kiosk_socket(server, answer["token"], guide_cookie)
    ticket = (await kiosk.request("ticket:create", {**TAX, "priority": True}))["ticket"]
    assert ticket["priority"] is True and ticket["hall"] == HALL
    row = await redis_client.hgetall(keys.TICKET(ticket["ticket_id"]))
    assert (row["guide"], row["device"]) == ("guide01", device["device_id"])
    # The guide does not lift the kiosk's one open ticket.
    assert (await kiosk.call("ticket:create", TAX))["error"]["code"] == "limit"
    await kiosk.close()


async def test_a_revoked_kiosk_is_told_and_cut_in_every_process_and_counts_no_more(
        server: LiveServer, other_server: LiveServer, store: Store) -> None:
    answer = await enrol(server)
    device_id, token = answer["device"]["device_id"], answer["token"]
    here = await kiosk_socket(server, token)
    there = await kiosk_socket(other_server, token)
    ticket = (await there.request("ticket:create", TAX))["ticket"]
    bystander = await SignalingClient.connect(other_server.url, "/kiosk")
    await _revoke(server, device_id)
    for client in (here, there):
        assert await client.next("device:revoked", timeout=5) == {"device_id": device_id}
        await closed_by_server(client)
    # Nobody else is cut.
    assert bystander.sio.connected
    assert (await bystander.call("ticket:create", {"department": "fund",
                                                   "consent": True}))["ok"] is True
    # The same cookie is now an anonymous browser's: its tickets carry no device and it is not
    # held to one open ticket (the first one is still waiting).
    again = await kiosk_socket(other_server, token)
    assert (await store.ticket(ticket["ticket_id"])) is not None
    created = [(await again.request("ticket:create", TAX))["ticket"] for _ in range(2)]
    assert [t["hall"] for t in created] == ["", ""]
    assert (await store.ticket(created[0]["ticket_id"])).device == ""  # type: ignore[union-attr]
    for client in (bystander, again):
        await client.close()


async def test_a_kiosk_revoked_while_its_socket_missed_the_news_is_anonymous_at_once(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    """The announcement can be lost (pub/sub keeps nothing): the socket's next ticket checks
    the device again."""
    answer = await enrol(server)
    kiosk = await kiosk_socket(server, answer["token"])
    # Revoked behind the listeners' back: the token key goes, nothing is announced.
    device_id = answer["device"]["device_id"]
    await redis_client.delete(keys.DEVICE_TOKEN(keys.hash_token(answer["token"])))
    await redis_client.hset(keys.DEVICE(device_id), "revoked_at", "1")
    await asyncio.sleep(0.2)
    assert kiosk.sio.connected
    ticket = (await kiosk.request("ticket:create", TAX))["ticket"]
    assert ticket["hall"] == ""
    assert (await kiosk.call("ticket:create", TAX))["ok"] is True
    await kiosk.close()


async def test_an_anonymous_kiosk_cannot_claim_a_device(server: LiveServer) -> None:
    """A made-up device cookie is an anonymous browser, not a refusal."""
    kiosk = await kiosk_socket(server, "made-up-token")
    ticket = (await kiosk.request("ticket:create", TAX))["ticket"]
    assert ticket["hall"] == ""
    assert (await kiosk.call("ticket:create", TAX))["ok"] is True
    await kiosk.close()


async def test_a_hall_s_registered_kiosks_are_not_held_to_their_address_s_limits(
        config: Config, redis_client: aioredis.Redis) -> None:
    """One address (the hall's NAT) with room for one socket and one ticket: every registered
    screen behind it still takes its ticket, and the anonymous side keeps its own allowance."""
    live = await start_server(replace(config, max_sockets_per_address=1, max_tickets_per_socket=1,
                                      max_tickets_per_address=1, ticket_creations_per_minute=1))
    try:
        screens = [await kiosk_socket(live, (await enrol(live, f"{n}号机"))["token"])
                   for n in (1, 2, 3)]
        for screen in screens:
            ticket = (await screen.request("ticket:create", TAX))["ticket"]
            assert ticket["hall"] == HALL
        # The address's one socket and one ticket are still there for an anonymous browser...
        browser = await SignalingClient.connect(live.url, "/kiosk")
        assert (await browser.call("ticket:create", {"department": "fund",
                                                     "consent": True}))["ok"] is True
        # ... and its limits hold for the next one.
        with pytest.raises(socketio.exceptions.ConnectionError):
            await SignalingClient.connect(live.url, "/kiosk")
        for client in (*screens, browser):
            await client.close()
    finally:
        await live.runner.cleanup()
