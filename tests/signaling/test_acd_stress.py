"""The ACD under load, end to end: ONE real redis-server and TWO `python -m server serve --demo`
processes sharing it; 54 staff sockets and 500+ tickets, with seeded random behaviour; then the
dispatch rules are checked on Redis and the queue log (yz:log).

What runs:
- 54 staff accounts (`acdNN`) over three departments (tax, market, hrss), every seventh in two of
  them; each one /staff socket, alternating between the two processes, set available. The
  departments ring for 3 s, rest a timed-out ticket 0.5 s, wrap up 0-0.5 s and queue up to 1000
  (changed in Redis before the processes start; they read settings live).
- Tickets: a bounded pool of 100 /kiosk sockets (alternating processes; every fifth carries the
  hall guide's cookie and may choose the priority lane), each creating 5 tickets one after the
  other, waiting for each to end: 500 tickets. Four more tickets are taken in `fund`, where no
  staff member is on duty, by kiosks that then disconnect for good: they must end `abandoned`
  after the 60 s grace (the test waits for that once, in parallel with the rest).
- Applicants: most wait until their consultation ends; some cancel after 0-2.5 s (which may lose
  against an accept), some disconnect and resume on a new socket within the grace, a few leave
  for good (their ticket is either still served or abandoned - exactly one of the two).
- Staff, on `call:incoming` after 0-0.4 s: most accept, then end the consultation as a client
  does - join the room over `/room` with the room token (the offer is ignored), talk 0-0.3 s
  and `room:hangup`;
  some decline; some let the ring time out (two in a row pause them `missed`: they make
  themselves available again); some disconnect while rung and reconnect; a few accept and
  disconnect during the call (after_call then sets them offline; they come back and set
  available); now and then one goes away for a moment or reconnects while idle.

Checked at the end: every ticket ended exactly once and its status matches (COMPLETE after one
CONNECT, CANCEL, or ABANDON); no staff member held two tickets at once or was rung during a call;
no ticket rang two staff at once; first come, first served within department and lane (see
acd_harness.check_log); every accept answered ok has its CONNECT, every decline its DECLINE,
every cancel its CANCEL, and there are no others; nothing is left ringing or queued; no staff
member is stuck ringing or in a call; the server processes logged no errors. The run is bounded
(kiosks 120 s); it takes about 65 s, most of it the wait for the 60 s abandonment.

Also here: a self-test of the log checker (each rule, broken on purpose, is reported), and the
regression test of a bug this test work found: a ticket whose kiosk disconnected while
`ticket:create` was being handled was never abandoned (fixed: a new ticket starts on the reconnect
grace, and the kiosk namespace counts its socket before recording it in the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from server.keys import TICKETS
from server.redis_server import EmbeddedRedis
from server.seed import DEMO_PASSWORD, seed_demo
from signaling import keys
from signaling.accounts import AccountPolicy, Accounts, hash_password
from signaling.client import SignalingClient, login_cookie
from signaling.departments import Department
from signaling.store import Store
from tests.support.harness import ServerProcess, all_log_entries, check_log, wait_until
from tests.support.server import LiveServer

SEED = 20240607
DEPTS = ("tax", "market", "hrss")
N_STAFF = 54
N_KIOSKS = 100
TICKETS_PER_KIOSK = 5
N_ABANDON = 4
RUN_LIMIT = 120.0
ENDS = ("ended", "cancelled", "abandoned")


@dataclass
class Record:
    tickets: dict[str, str] = field(default_factory=dict)  # ticket -> department
    accepted: list[tuple[str, str]] = field(default_factory=list)
    declined: list[tuple[str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def _code(answer: dict[str, Any]) -> str:
    return "ok" if answer.get("ok") else str(answer.get("error", {}).get("code"))


class StaffWorker:
    def __init__(self, name: str, url: str, cookie: str, rng: random.Random, rec: Record,
                 stop: asyncio.Event) -> None:
        self.name, self.url, self.cookie, self.rng, self.rec, self.stop = (
            name, url, cookie, rng, rec, stop)
        self.client: SignalingClient | None = None
        self.presence = "offline"

    async def connect(self) -> SignalingClient:
        self.client = await SignalingClient.connect(self.url, "/staff", self.cookie)
        state = await self.client.next("staff:state")
        self.presence = state["presence"]
        return self.client

    async def reconnect(self, pause: float) -> SignalingClient:
        assert self.client is not None
        await self.client.close()
        await asyncio.sleep(pause)
        return await self.connect()

    async def make_available(self) -> None:
        """Available again when the last pushed state says away or offline."""
        assert self.client is not None
        queue = self.client.queue("staff:state")
        while not queue.empty():
            self.presence = queue.get_nowait()["presence"]
        if self.presence in ("away", "offline"):
            answer = await self.client.call("presence:set", {"state": "available"})
            self.rec.refused[f"presence:{_code(answer)}"] += 1
            if answer.get("ok"):
                self.presence = "available"

    async def run(self) -> None:
        client = await self.connect()
        await client.request("presence:set", {"state": "available"})
        while not self.stop.is_set():
            try:
                incoming = await asyncio.wait_for(client.queue("call:incoming").get(), 0.3)
            except TimeoutError:
                await self.idle()
                client = self.client  # type: ignore[assignment]
                continue
            await asyncio.sleep(self.rng.uniform(0, 0.4))
            ticket_id = incoming["ticket_id"]
            roll = self.rng.random()
            if roll < 0.72:
                await self.accept(ticket_id, hang_up_offline=False)
            elif roll < 0.84:
                answer = await client.call("call:decline", {"ticket_id": ticket_id})
                self.rec.actions["decline"] += 1
                if answer.get("ok"):
                    self.rec.declined.append((ticket_id, self.name))
                else:
                    self.rec.refused[f"decline:{_code(answer)}"] += 1
            elif roll < 0.94:
                self.rec.actions["ignore"] += 1  # the ring times out (3 s)
            elif roll < 0.97:
                self.rec.actions["gone_while_rung"] += 1
                client = await self.reconnect(self.rng.uniform(0.1, 1.0))
            else:
                await self.accept(ticket_id, hang_up_offline=True)
            client = self.client  # type: ignore[assignment]

    async def idle(self) -> None:
        await self.make_available()
        roll = self.rng.random()
        if roll < 0.01:
            self.rec.actions["reconnect_idle"] += 1
            await self.reconnect(self.rng.uniform(0.1, 1.0))
        elif roll < 0.02:
            assert self.client is not None
            answer = await self.client.call("presence:set", {"state": "away", "reason": "break"})
            self.rec.actions["away"] += 1
            if answer.get("ok"):
                await asyncio.sleep(self.rng.uniform(0.2, 1.0))
                await self.client.call("presence:set", {"state": "available"})

    async def accept(self, ticket_id: str, hang_up_offline: bool) -> None:
        assert self.client is not None
        answer = await self.client.call("call:accept", {"ticket_id": ticket_id})
        self.rec.actions["accept"] += 1
        if not answer.get("ok"):
            self.rec.refused[f"accept:{_code(answer)}"] += 1
            return
        self.rec.accepted.append((ticket_id, self.name))
        if hang_up_offline:
            self.rec.actions["offline_in_call"] += 1
            await self.client.close()
        room = await SignalingClient.connect(self.url, "/room")
        try:
            joined = await room.call("room:join", answer["room"])
            if not joined.get("ok"):
                self.rec.problems.append(f"{self.name} room:join {ticket_id}: {joined}")
            else:
                await asyncio.sleep(self.rng.uniform(0, 0.3))  # the consultation
                hung = await room.call("room:hangup", {})
                if not hung.get("ok"):
                    self.rec.problems.append(f"{self.name} room:hangup {ticket_id}: {hung}")
        finally:
            await room.close()
        if hang_up_offline:
            await asyncio.sleep(self.rng.uniform(0.1, 0.5))
            await self.connect()

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()


async def _follow_until_end(client: SignalingClient, ticket_id: str, token: str,
                            rec: Record) -> None:
    queue = client.queue("ticket:update")
    while True:
        try:
            update = await asyncio.wait_for(queue.get(), 3.0)
        except TimeoutError:
            # Broadcasts may be lost: re-read the state, as a client does.
            answer = await client.request("ticket:resume", {"ticket_id": ticket_id,
                                                            "token": token})
            update = answer["ticket"]
        if update["ticket_id"] == ticket_id and update["status"] in ENDS:
            return


async def kiosk_worker(index: int, url: str, guide: str | None, rng: random.Random,
                       rec: Record) -> None:
    client = await SignalingClient.connect(url, "/kiosk", guide)
    try:
        for _ in range(TICKETS_PER_KIOSK):
            dept = rng.choice(DEPTS)
            priority = guide is not None and rng.random() < 0.3
            answer = await client.request("ticket:create", {"department": dept, "consent": True,
                                                            "priority": priority})
            ticket_id, token = answer["ticket"]["ticket_id"], answer["ticket"]["token"]
            rec.tickets[ticket_id] = dept
            roll = rng.random()
            if roll < 0.12:
                await asyncio.sleep(rng.uniform(0, 2.5))
                cancel = await client.call("ticket:cancel", {"ticket_id": ticket_id,
                                                             "token": token})
                rec.actions["cancel"] += 1
                if cancel.get("ok"):
                    rec.cancelled.append(ticket_id)
                else:
                    rec.refused[f"cancel:{_code(cancel)}"] += 1
            elif roll < 0.17:
                await asyncio.sleep(rng.uniform(0, 1.0))
                await client.close()
                await asyncio.sleep(rng.uniform(0.3, 2.0))
                client = await SignalingClient.connect(url, "/kiosk", guide)
                resumed = await client.call("ticket:resume", {"ticket_id": ticket_id,
                                                              "token": token})
                if not resumed.get("ok"):
                    rec.problems.append(f"resume {ticket_id}: {resumed}")
                rec.resumed.append(ticket_id)
            elif roll < 0.19:
                await asyncio.sleep(rng.uniform(0, 1.0))
                await client.close()
                rec.left.append(ticket_id)
                client = await SignalingClient.connect(url, "/kiosk", guide)
                continue
            await _follow_until_end(client, ticket_id, token, rec)
    finally:
        await client.close()


async def _statuses(store: Store, ticket_ids: list[str]) -> list[str]:
    async with store.redis.pipeline(transaction=False) as pipe:
        for tid in ticket_ids:
            pipe.hget(keys.TICKET(tid), "status")
        return list(await pipe.execute())


@pytest.mark.timeout(300)
async def test_two_processes_fifty_staff_five_hundred_tickets_keep_the_dispatch_rules(
        tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path / "redis")
    await embedded.start()
    redis_client = aioredis.from_url(embedded.url, decode_responses=True)
    store = Store(redis_client)
    servers: list[ServerProcess] = []
    workers: list[StaffWorker] = []
    staff_tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    rec = Record()
    try:
        # Data first: demo departments and accounts, faster ring settings, 54 staff members.
        await seed_demo(store, Accounts(store.redis, AccountPolicy()))
        for dept_id in (*DEPTS, "fund"):
            dept = await store.department(dept_id)
            assert dept is not None
            await store.put_department(Department.from_dict({
                **dept.to_dict(), "ring_timeout": 3, "ring_pause": 0.5,
                "wrap_up": 0.5 if dept_id == "tax" else 0, "max_queue": 1000}))
        password_hash = hash_password("stress-pass")
        names = [f"acd{i:02d}" for i in range(N_STAFF)]
        for i, name in enumerate(names):
            pools = (DEPTS[i % 3], DEPTS[(i + 1) % 3]) if i % 7 == 0 else (DEPTS[i % 3],)
            await Accounts(store.redis, AccountPolicy()).put(
                name, display_name=f"压测坐席{i:02d}", role="staff", departments=pools,
                password_hash=password_hash)

        servers = [ServerProcess(embedded.url, tmp_path / f"data{i}",
                                 YUNZHEN_MEDIA_EMPTY_ROOM_TIMEOUT="5") for i in range(2)]
        await asyncio.gather(*(s.start() for s in servers))
        urls = [s.url for s in servers]
        guides = [await login_cookie(url, "guide01", DEMO_PASSWORD) for url in urls]

        master = random.Random(SEED)
        cookies = await asyncio.gather(*(login_cookie(urls[i % 2], name, "stress-pass")
                                         for i, name in enumerate(names)))
        workers = [StaffWorker(name, urls[i % 2], cookies[i], random.Random(master.random()),
                               rec, stop) for i, name in enumerate(names)]
        staff_tasks = [asyncio.create_task(w.run(), name=w.name) for w in workers]
        await wait_until(lambda: _all_available(store, names), 20, what="staff available")

        started = time.monotonic()
        # Tickets nobody serves: their kiosks leave for good, they are abandoned after 60 s.
        abandoned: list[str] = []
        for i in range(N_ABANDON):
            kiosk = await SignalingClient.connect(urls[i % 2], "/kiosk")
            answer = await kiosk.request("ticket:create", {"department": "fund",
                                                           "consent": True})
            abandoned.append(answer["ticket"]["ticket_id"])
            await kiosk.close()
        abandon_at = time.monotonic() + 60

        kiosks = [asyncio.create_task(kiosk_worker(
            i, urls[i % 2], guides[i % 2] if i % 5 == 0 else None,
            random.Random(master.random()), rec)) for i in range(N_KIOSKS)]
        done, pending = await asyncio.wait(kiosks, timeout=RUN_LIMIT)
        for task in pending:
            task.cancel()
        assert not pending, f"{len(pending)} kiosks not done after {RUN_LIMIT} s"
        for task in done:
            task.result()
        for task in staff_tasks:
            if task.done():
                task.result()
        served_in = time.monotonic() - started

        # The applicants that left for good: served or abandoned, one or the other.
        left = rec.left
        await wait_until(lambda: _all_in(store, left, ENDS), 75, interval=0.5,
                         what="the tickets of applicants who left to end")
        await wait_until(lambda: _all_in(store, abandoned, ("abandoned",)),
                         abandon_at + 10 - time.monotonic(), interval=0.5,
                         what="the unserved tickets to be abandoned")
        total = time.monotonic() - started

        # Nothing left ringing or queued, nobody stuck ringing or in a call.
        await asyncio.sleep(1.0)
        assert await redis_client.zcard(keys.RINGING) == 0
        for dept_id in (*DEPTS, "fund"):
            assert await store.waiting(dept_id) == [], dept_id
        for name in names:
            state = await store.staff_state(name)
            assert state.get("presence") not in ("ringing", "in_call"), (name, state)
            assert not state.get("ticket"), (name, state)

        # Every ticket ended exactly once; the dispatch rules held; every step is in the log.
        all_ids = [*rec.tickets, *abandoned]
        assert len(rec.tickets) == N_KIOSKS * TICKETS_PER_KIOSK
        rows: dict[str, dict[str, str]] = {}
        for tid in all_ids:
            rows[tid] = await store.redis.hgetall(keys.TICKET(tid))
        entries = await all_log_entries(store)
        report = check_log(entries, rows)
        assert not report.problems, "\n".join(report.problems[:50])
        mine = [e for e in entries if e.get("ticket") in rows]
        connects = Counter((e["ticket"], e["staff"]) for e in mine if e["event"] == "CONNECT")
        declines = Counter((e["ticket"], e["staff"]) for e in mine if e["event"] == "DECLINE")
        cancels = Counter(e["ticket"] for e in mine if e["event"] == "CANCEL")
        assert connects == Counter(rec.accepted)
        assert declines == Counter(rec.declined)
        assert cancels == Counter(rec.cancelled)
        for tid in abandoned:
            assert [e["event"] for e in report.events[tid]] == ["ENTER", "ABANDON"]
        outcome = Counter(rows[t]["status"] for t in rec.tickets)
        assert outcome["ended"] >= 300, outcome
        assert report.counts.get("NOANSWER", 0) > 0 and report.counts.get("DECLINE", 0) > 0
        assert not rec.problems, rec.problems[:20]
        for server in servers:
            assert not server.errors(), server.errors()[:20]
        print(f"\nstress: {len(all_ids)} tickets {dict(outcome)}; served in {served_in:.1f} s, "
              f"all ended after {total:.1f} s; log {report.counts}; client "
              f"{dict(rec.actions)}; refused {dict(rec.refused)}")
    finally:
        stop.set()
        if staff_tasks:
            await asyncio.wait(staff_tasks, timeout=10)
            for task in staff_tasks:
                task.cancel()
        for worker in workers:
            await worker.close()
        for server in servers:
            await server.stop()
        await redis_client.aclose()
        await embedded.stop()


async def _all_available(store: Store, names: list[str]) -> bool:
    for name in names:
        if (await store.staff_state(name)).get("presence") != "available":
            return False
    return True


async def _all_in(store: Store, ticket_ids: list[str], statuses: tuple[str, ...]) -> bool:
    return all(s in statuses for s in await _statuses(store, ticket_ids))


def _entry(event: str, ticket: str = "", staff: str = "") -> dict[str, str]:
    return {"event": event, "ticket": ticket, "staff": staff, "department": "tax", "detail": ""}


def test_the_log_checker_finds_each_broken_rule() -> None:
    rows = {t: {"status": "ended", "department": "tax", "priority": "0"} for t in "abc"}
    good = [_entry("ENTER", "a"), _entry("ENTER", "b"), _entry("RING", "a", "s1"),
            _entry("CONNECT", "a", "s1"), _entry("RING", "b", "s2"), _entry("CONNECT", "b", "s2"),
            _entry("COMPLETE", "a", "s1"), _entry("COMPLETE", "b", "s2")]
    ab = {t: rows[t] for t in "ab"}
    assert check_log(good, ab).problems == []
    two_at_once = [*good[:3], _entry("RING", "b", "s1")]
    assert any("staff rung while" in p for p in check_log(two_at_once, ab).problems)
    ticket_twice = [*good[:3], _entry("RING", "a", "s2")]
    assert any("is being rung" in p for p in check_log(ticket_twice, ab).problems)
    in_call = [*good[:4], _entry("RING", "b", "s1")]
    assert any("in_call" in p for p in check_log(in_call, ab).problems)
    out_of_order = [good[0], good[1], _entry("RING", "b", "s2"), _entry("CONNECT", "b", "s2"),
                    _entry("RING", "a", "s1"), _entry("CONNECT", "a", "s1"),
                    _entry("COMPLETE", "a", "s1"), _entry("COMPLETE", "b", "s2")]
    assert any("before" in p for p in check_log(out_of_order, ab).problems)
    ended_twice = [*good, _entry("CANCEL", "a")]
    assert any("second time" in p for p in check_log(ended_twice, ab).problems)
    never_ended = [*good[:1], _entry("ENTER", "c")]
    problems = check_log(never_ended, {"a": rows["a"], "c": rows["c"]}).problems
    assert any("0 ends" in p for p in problems)
    wrong_status = {**ab, "a": {**rows["a"], "status": "cancelled"}}
    assert any("status is cancelled" in p for p in check_log(good, wrong_status).problems)


async def test_a_ticket_whose_kiosk_leaves_while_it_is_created_is_abandoned_after_the_grace(
        server: LiveServer, store: Store) -> None:
    tickets = server.app[TICKETS]
    create = tickets.create
    left = asyncio.Event()
    handled = asyncio.Event()

    async def create_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = await create(*args, **kwargs)
        await left.wait()
        await asyncio.sleep(0.3)  # the server has handled the disconnect
        handled.set()
        return result

    tickets.create = create_then_wait  # type: ignore[method-assign]
    kiosk = SignalingClient("/kiosk")
    await kiosk.sio.connect(server.url, namespaces=["/kiosk"], transports=["websocket"])
    await kiosk.sio.emit("ticket:create", {"department": "tax", "consent": True},
                         namespace="/kiosk")
    waiting = await wait_until(lambda: store.waiting("tax"), 5, what="the ticket")
    await kiosk.sio.disconnect()
    left.set()
    await asyncio.wait_for(handled.wait(), 5)
    await asyncio.sleep(0.3)
    ticket_id = waiting[0]
    # Nobody holds the ticket: like any ticket whose sockets are gone it must be abandoned
    # after the 60 s grace.
    await store.tick(time.time() + 61)
    ticket = await store.ticket(ticket_id)
    assert ticket is not None and ticket.status == "abandoned", (
        ticket, await store.redis.hgetall(keys.CONNS("ticket", ticket_id)),
        await store.redis.zscore(keys.TICKET_GONE, ticket_id))
