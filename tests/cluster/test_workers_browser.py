"""Real Chromium pages behind the launcher's nginx: a kiosk and a staff desk in a call through
/n/<name>/ (their room sockets at the hosting worker's base), then the room moves to the other
worker and its first worker dies (by hand; and for real: the worker killed, the room adopted by a
live process): both pages ask where the room is now, connect there with the tokens they have,
and decode each other's video again."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from signaling import keys
from tests.support.browser import INBOUND_STATS, wait_frames
from tests.support.cluster import Cluster
from tests.support.pages import connected

pytestmark = pytest.mark.browser

# The base of the page's room session.
SESSION_BASE = """
async () => {
  const src = document.querySelector('script[type=module]').src;
  const m = await import(src.replace(/[^/]*\\.js.*$/, 'room.js'));
  const [session] = [...m.RoomSession.active];
  return session ? session.base : null;
}
"""


async def test_pages_call_through_nginx_and_follow_a_moved_room(
        cluster: Cluster, browser: Any) -> None:
    kiosk, staff = await connected(cluster, browser)  # type: ignore[arg-type]
    [room_key] = [k async for k in cluster.redis.scan_iter(keys.ROOM("*"))]
    entry: dict[str, str] = await cluster.redis.hgetall(room_key)  # type: ignore[assignment]
    host = entry["node"]
    host_info: dict[str, str] = await cluster.redis.hgetall(  # type: ignore[assignment]
        keys.NODE_INFO(host))
    assert await kiosk.evaluate(SESSION_BASE) == host_info["base"]
    assert await staff.evaluate(SESSION_BASE) == host_info["base"]
    live: list[str] = await cluster.redis.zrangebyscore(  # type: ignore[assignment]
        keys.NODES, time.time(), "+inf")
    [other] = [n for n in live if n != host]
    other_base = await cluster.redis.hget(keys.NODE_INFO(other), "base")

    # The room moves: the directory names the other worker, which opens it (a node the entry
    # does not name would not); the first one dies.
    await cluster.redis.hset(keys.ROOM(entry["room_id"]), "node", other)
    await cluster.redis.publish(keys.NODE_COMMANDS(other), json.dumps({
        "op": "open_room", "reply": "move-browser",
        "args": {"room_id": entry["room_id"], "ticket_id": entry["ticket_id"],
                 "staff": entry["staff"], "now": time.time()}}))
    answer = await cluster.redis.blpop([keys.NODE_REPLY("move-browser")], timeout=5)
    assert answer is not None and json.loads(answer[1]) == {"node": other}
    await cluster.redis.srem(keys.NODE(host, "rooms"), entry["room_id"])
    before_kiosk = (await kiosk.evaluate(INBOUND_STATS))["framesDecoded"]
    before_staff = (await staff.evaluate(INBOUND_STATS))["framesDecoded"]
    os.kill(int(host_info["pid"]), signal.SIGKILL)

    # Both pages find the room at its new base by themselves and decode each other again.
    for page, before in ((kiosk, before_kiosk), (staff, before_staff)):
        await wait_frames(page, before + 30, timeout=40)
        assert await page.evaluate(SESSION_BASE) == other_base


async def test_pages_follow_their_room_when_its_worker_is_killed(
        cluster: Cluster, browser: Any) -> None:
    """The real node loss: the hosting worker is killed, a live process adopts the room (the
    other worker, or the killed one started again under its name: a new node), and both pages
    find it at its base now."""
    kiosk, staff = await connected(cluster, browser)  # type: ignore[arg-type]
    [room_key] = [k async for k in cluster.redis.scan_iter(keys.ROOM("*"))]
    host: str = await cluster.redis.hget(room_key, "node")  # type: ignore[assignment]
    pid: str = await cluster.redis.hget(keys.NODE_INFO(host), "pid")  # type: ignore[assignment]
    before_kiosk = (await kiosk.evaluate(INBOUND_STATS))["framesDecoded"]
    before_staff = (await staff.evaluate(INBOUND_STATS))["framesDecoded"]
    os.kill(int(pid), signal.SIGKILL)

    for page, before in ((kiosk, before_kiosk), (staff, before_staff)):
        await wait_frames(page, before + 30, timeout=60)
    adopter: str = await cluster.redis.hget(room_key, "node")  # type: ignore[assignment]
    assert adopter != host
    base = await cluster.redis.hget(keys.NODE_INFO(adopter), "base")
    assert await kiosk.evaluate(SESSION_BASE) == base
    assert await staff.evaluate(SESSION_BASE) == base
