"""The queue survives a crash of everything: a server process (`python -m server serve --demo`)
on a real redis-server with AOF (appendfsync always, set before any write), staff away or offline
and ten waiting tickets (three in the priority lane, taken with the hall guide's cookie); then
`kill -9` the server AND the redis-server, start redis-server again from its AOF (same
directory, a new process) and a new server process on it.

Checked: every waiting ticket is still there, in the same order (yz:queue:tax) and unchanged;
nobody is rung while all staff are away; the applicants who come back (`ticket:resume` with
their tokens, within the 60 s grace) keep their places; a staff member who comes back (the
session survived too) and sets available is offered the head ticket first; the dead process's
sockets are discounted once its heartbeat runs out: the tickets whose applicants never come back
are in yz:ticket_gone with a deadline at most 60 s away and are abandoned when it passes (the
test waits for that: about 70 s after the crash), the staff member who never comes back ends
offline, and the tickets whose applicants came back stay waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from server.redis_server import EmbeddedRedis
from server.seed import DEMO_PASSWORD, seed_demo
from signaling import keys
from signaling.accounts import AccountPolicy, Accounts, hash_password
from signaling.client import SignalingClient, login_cookie
from signaling.store import Store
from tests.support.harness import ServerProcess, all_log_entries, redis_pid, wait_until

PRIORITY = (2, 5, 8)        # which of the ten tickets a hall guide puts in the priority lane
NEVER_BACK = (3, 6, 8, 9)   # whose applicants never come back


@pytest.mark.timeout(300)
async def test_waiting_tickets_survive_kill_9_of_server_and_redis(tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    first_redis = EmbeddedRedis(redis_dir)
    await first_redis.start()
    second_redis: EmbeddedRedis | None = None
    client = aioredis.from_url(first_redis.url, decode_responses=True)
    servers: list[ServerProcess] = []
    sockets: list[SignalingClient] = []
    try:
        await client.config_set("appendfsync", "always")
        store = Store(client)
        await seed_demo(store, Accounts(store.redis, AccountPolicy()))
        for name in ("tax02", "tax03"):
            await Accounts(store.redis, AccountPolicy()).put(
                name, display_name=f"税务坐席{name[-2:]}", role="staff", departments=("tax",),
                password_hash=hash_password(DEMO_PASSWORD))
        server = ServerProcess(first_redis.url, tmp_path / "data1")
        servers.append(server)
        await server.start()

        # tax01 and tax03 are on duty but away; tax02 never comes.
        cookies = {name: await login_cookie(server.url, name, DEMO_PASSWORD)
                   for name in ("tax01", "tax03")}
        for cookie in cookies.values():
            desk = await SignalingClient.connect(server.url, "/staff", cookie)
            sockets.append(desk)
            await desk.request("presence:set", {"state": "away", "reason": "开会"})
        guide = await login_cookie(server.url, "guide01", DEMO_PASSWORD)

        tickets: list[tuple[str, str]] = []  # (ticket_id, token) in creation order
        for i in range(10):
            kiosk = await SignalingClient.connect(server.url, "/kiosk",
                                                  guide if i in PRIORITY else None)
            sockets.append(kiosk)
            answer = await kiosk.request("ticket:create", {
                "department": "tax", "consent": True, "priority": i in PRIORITY})
            tickets.append((answer["ticket"]["ticket_id"], answer["ticket"]["token"]))
            assert answer["ticket"]["status"] == "waiting"
        ids = [tid for tid, _ in tickets]
        expected = [ids[i] for i in PRIORITY] + [ids[i] for i in range(10) if i not in PRIORITY]
        assert await store.waiting("tax") == expected
        before = {tid: await client.hgetall(keys.TICKET(tid)) for tid in ids}
        assert all(row["status"] == "waiting" for row in before.values())

        # Crash everything.
        pid = await redis_pid(store)
        await server.kill9()
        os.kill(pid, signal.SIGKILL)
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.close()
        sockets.clear()
        await client.aclose()
        await first_redis.stop()
        crashed = time.time()

        # Redis from its AOF, then a new server process.
        second_redis = EmbeddedRedis(redis_dir)
        await second_redis.start()
        client = aioredis.from_url(second_redis.url, decode_responses=True)
        store = Store(client)
        assert await store.waiting("tax") == expected
        for tid in ids:
            assert await client.hgetall(keys.TICKET(tid)) == before[tid], tid
        server = ServerProcess(second_redis.url, tmp_path / "data2")
        servers.append(server)
        await server.start()
        await asyncio.sleep(1.0)  # a few ticks: nobody may be rung, everyone is away
        assert await store.waiting("tax") == expected
        assert await client.zcard(keys.RINGING) == 0

        # The applicants who come back keep their places.
        kiosks: dict[str, SignalingClient] = {}
        for i, (tid, token) in enumerate(tickets):
            if i in NEVER_BACK:
                continue
            kiosk = await SignalingClient.connect(server.url, "/kiosk")
            sockets.append(kiosk)
            kiosks[tid] = kiosk
            answer = await kiosk.request("ticket:resume", {"ticket_id": tid, "token": token})
            assert answer["ticket"]["status"] == "waiting"
            assert answer["ticket"]["position"] == expected.index(tid) + 1
        assert await store.waiting("tax") == expected

        # tax01 comes back with the session of before the crash, and is offered the head.
        desk = await SignalingClient.connect(server.url, "/staff", cookies["tax01"])
        sockets.append(desk)
        state = await desk.next("staff:state")
        assert (state["presence"], state["reason"]) == ("away", "开会")
        assert state["queues"] == {"tax": 10}
        await desk.request("presence:set", {"state": "available"})
        incoming = await desk.next("call:incoming")
        head = expected[0]
        assert incoming["ticket_id"] == head
        assert (await store.ticket(head)).status == "ringing"  # type: ignore[union-attr]
        accepted = await desk.request("call:accept", {"ticket_id": head})
        room = await SignalingClient.connect(server.url, "/room")
        sockets.append(room)
        await room.request("room:join", accepted["room"])
        await room.request("room:hangup", {})
        await desk.request("presence:set", {"state": "away", "reason": "开会"})
        assert (await store.ticket(head)).status == "ended"  # type: ignore[union-attr]
        assert await store.waiting("tax") == expected[1:]

        # The dead process's sockets are discounted when its heartbeat runs out (<= 10 s):
        # the applicants who never came back get the 60 s grace from then.
        gone = [ids[i] for i in NEVER_BACK]

        async def all_gone() -> bool:
            scores = [await client.zscore(keys.TICKET_GONE, tid) for tid in gone]
            return all(s is not None for s in scores)

        await wait_until(all_gone, 20, what="the dead process's tickets to be counted gone")
        now = time.time()
        for tid in gone:
            deadline = await client.zscore(keys.TICKET_GONE, tid)
            assert deadline is not None, tid
            assert now < deadline <= now + 60, (tid, deadline - now)
        returned = [tid for tid in ids if tid not in gone]
        for tid in returned:
            assert await client.zscore(keys.TICKET_GONE, tid) is None

        async def all_abandoned() -> bool:
            statuses = [await client.hget(keys.TICKET(tid), "status") for tid in gone]
            return all(status == "abandoned" for status in statuses)

        await wait_until(all_abandoned, 75, interval=0.5, what="abandonment after the grace")
        abandoned_after = time.time() - crashed
        assert await store.waiting("tax") == [t for t in expected[1:] if t not in gone]
        for tid in returned:
            if tid != head:
                assert (await store.ticket(tid)).status == "waiting"  # type: ignore[union-attr]
        assert (await store.staff_state("tax03")).get("presence") == "offline"
        assert (await store.staff_state("tax01")).get("presence") == "away"
        entries = [e for e in await all_log_entries(store) if e.get("ticket") in ids]
        assert sorted(e["ticket"] for e in entries if e["event"] == "ABANDON") == sorted(gone)
        assert [e["event"] for e in entries if e["ticket"] == head] == [
            "ENTER", "RING", "CONNECT", "COMPLETE"]
        for server in servers:
            assert not server.errors(), server.errors()[:20]
        print(f"\nrestart: abandoned {abandoned_after:.1f} s after the crash")
    finally:
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.close()
        for server in servers:
            await server.stop()
        await client.aclose()
        await first_redis.stop()
        if second_redis is not None:
            await second_redis.stop()
