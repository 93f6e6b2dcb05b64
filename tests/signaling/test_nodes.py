"""Placement by load in the node registry (signaling/nodes.py) against a real Redis: a room goes
to the least-loaded live node that pages can reach through its path, and a node that nothing
forwards to alone (no path: a process not behind the launcher's nginx) places every room here."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.config import Config
from server.keys import NODE, NODES, ROOMS
from signaling import keys
from signaling.accounts import AccountPolicy, Accounts, hash_password
from signaling.calls import OPEN_ROOM
from signaling.nodes import Nodes, PeerAnswer
from signaling.privacy import CONSENT_NOTICE_VERSION as CONSENT
from signaling.store import Store
from tests.support.server import start_server


async def _node(store: Store, node: str, base: str, rooms: list[int]) -> Nodes:
    nodes = Nodes(store, node, name=node, base=base, address="127.0.0.1:1",
                  room_sizes=lambda: rooms)
    await store.heartbeat(node, time.time())
    await nodes.write()
    return nodes


async def test_a_room_goes_to_the_least_loaded_node_with_a_path(store: Store) -> None:
    here = await _node(store, "n1", "/n/w1", [3, 3])
    await _node(store, "n2", "/n/w2", [3])
    await _node(store, "n3", "", [])  # idle, but no page can reach it alone
    chosen = await here.choose()
    assert chosen is not None and chosen.node == "n2"
    # Counted at once: n2 now carries one more room than n4, which has the load n2 had.
    await _node(store, "n4", "/n/w4", [3])
    again = await here.choose()
    assert again is not None and again.node == "n4"


async def test_a_node_without_a_path_places_nothing_elsewhere(store: Store) -> None:
    here = await _node(store, "n1", "", [3, 3, 3])
    await _node(store, "n2", "/n/w2", [])
    assert await here.choose() is None


async def test_a_late_open_room_answer_does_not_open_the_room_twice(config: Config,
                                                                     store: Store) -> None:
    """The placing node gave up waiting for the chosen node and opened the room itself; the
    chosen node's `open_room` then arrives: it answers with the owner and opens nothing."""
    first, second = await start_server(config), await start_server(config)
    try:
        accounts = Accounts(store.redis, AccountPolicy())
        await accounts.put("tax01", display_name="税务坐席01", role="staff",
                           departments=("tax",), password_hash=hash_password("x"))
        code, ticket, _token, _ = await store.create_ticket("tax", time.time(),
                                                            consent_version=CONSENT)
        assert code == "ok" and ticket is not None
        args = {"room_id": "r-late", "ticket_id": ticket.ticket_id, "staff": "tax01",
                "now": time.time()}
        owner = first.app[NODE]
        assert await first.app[NODES].command(owner, OPEN_ROOM, args) == {"node": owner}
        # The command goes through Redis to the second process, as a late answer would.
        answer = await first.app[NODES].command(second.app[NODE], OPEN_ROOM, args)
        assert answer == {"node": owner}
        assert second.app[ROOMS].get("r-late") is None
        assert first.app[ROOMS].get("r-late") is not None
        assert await store.redis.hget(keys.ROOM("r-late"), "node") == owner
        assert await store.redis.smembers(keys.NODE(second.app[NODE], "rooms")) == set()
    finally:
        await second.runner.cleanup()
        await first.runner.cleanup()


async def test_the_peer_check_reads_each_peers_health_on_one_client_until_closed(
        store: Store, aiohttp_server: Any) -> None:
    asked: list[str | None] = []

    async def healthz(request: web.Request) -> web.Response:
        asked.append(request.query.get("node"))
        return web.json_response({"ok": True, "redis": "ok", "node_registered": False})

    peer = web.Application()
    peer.router.add_get("/healthz", healthz)
    server = await aiohttp_server(peer)
    nodes = await _node(store, "n1", "", [])
    address = f"127.0.0.1:{server.port}"
    nodes._peers = [address]  # what run() takes from the registry each second
    assert await nodes.redis_seen_by_peer() == PeerAnswer(address, registered=False)
    client = nodes._http
    assert client is not None
    assert await nodes.redis_seen_by_peer() == PeerAnswer(address, registered=False)
    assert nodes._http is client and asked == ["n1", "n1"]
    await nodes.close()
    assert client.closed
