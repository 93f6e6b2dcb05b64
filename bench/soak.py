"""The soak: many sockets held on one server process for a long time with a steady mix of work,
to show that no ticket is lost or double-booked and that memory does not grow without bound.

One real server (`python -m server serve --demo`, its private redis-server, a temporary data
directory; rooms nobody joins close after `--empty-room` seconds). As bench/dispatch.py does, the
bench writes the five demo departments' settings (no wrap-up, no ring pause, a large queue) and
`--staff` accounts with login sessions into that Redis. Client processes (`--procs`) each own a
share of the departments: their desks (/staff, available) and their share of the `--kiosks`
kiosk sockets (/kiosk), so that a ticket and the desk it rings are in one process and one clock.

The mix, for `--minutes`: each kiosk, one ticket at a time, waits an exponential time (together
`--rate` tickets per second), then asks for a call-back (`--callbacks` of the time) or takes a
ticket, which it cancels after 0.5-8 s unless connected first (`--cancels` of its tickets). A rung
desk answers after 0.1-1 s: it accepts (`--accepts` of the rings; the room opens and, as nobody
joins it, closes after `--empty-room` s, which ends the ticket) or declines (the ticket rings the
next desk; a ticket rung again after a decline is accepted). Every minute a few desks read the
call-back list and mark one done. Then the kiosks stop taking tickets and every ticket is waited
for until it ends.

Checked at the end, from Redis: every ticket a kiosk made is there and ended as its kiosk saw
(`ended` when accepted, `cancelled` when cancelled; never `abandoned`, since every kiosk kept its
socket), nothing is waiting or ringing any more, and the queue log has each ticket entered once,
ended once, never rung for two desks at once, no desk rung or connected for two tickets at once
(tests/support/harness.py `check_log`, which also checks first come, first served).

Figures (bench/results/soak.json): sockets, minutes, tickets, tickets_lost, double_booked,
ring_latency_p50/p99_ms (a kiosk's ticket:create to the first call:incoming at a desk), the server's
RSS and Redis's used_memory at the start (sockets open) and the end, sampled every minute between.

    python -m bench.soak                                   # 1,600 kiosks + 400 desks, 30 minutes
    python -m bench.soak --kiosks 40 --staff 10 --minutes 0.5 --out /tmp/soak.json   # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.common import ROOT, ServerProcess, cpu_seconds, merge_results
from bench.dispatch import (
    DEPTS,
    ClientPool,
    machine_busy,
    redis_url_from_log,
    serve_commands,
    setup_redis,
    summary_ms,
)
from signaling.accounts import hash_password
from signaling.client import SignalingClient
from signaling.store import Store
from tests.support.harness import all_log_entries, check_log
from tests.support.server import established

RESULTS = ROOT / "bench" / "results" / "soak.json"
TERMINAL = ("ended", "cancelled", "abandoned")
ENDED_WAIT = 120.0  # seconds a ticket may take to end once its kiosk stops waiting for a call
# Problems of the queue log that are a double booking: a ticket rung for two desks at once, a
# desk rung or connected for two tickets at once, a connect without its ring.
DOUBLE = ("rung while", "staff state was", "connected without being rung")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# --- client processes ------------------------------------------------------------------------

class Clients:
    """One client process: its departments' desks and its share of the kiosks."""

    def __init__(self, url: str, depts: list[str], staff: dict[str, list[tuple[str, str]]],
                 kiosks: int, seed: int) -> None:
        self.url, self.depts, self.staff_cookies, self.kiosk_count = url, depts, staff, kiosks
        self.random = random.Random(seed)
        self.desks: list[SignalingClient] = []
        self.kiosks: list[SignalingClient] = []
        self.created: dict[str, float] = {}            # ticket -> t0 (monotonic)
        self.rung: dict[str, float] = {}               # ticket -> first call:incoming
        self.declined: set[str] = set()                # tickets a desk declined once
        self.outcome: dict[str, str] = {}              # ticket -> what its kiosk saw last
        self.updates: dict[str, asyncio.Queue[str]] = {}
        self.counts: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[Any]] = set()
        # The mix (shares of rings accepted, tickets cancelled, kiosk turns asking for a
        # call-back), set by `run`.
        self.accepts = self.cancels = self.callbacks = 0.0

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def connect(self) -> dict[str, Any]:
        started = time.monotonic()
        gate = asyncio.Semaphore(40)

        async def desk(cookie: str) -> SignalingClient:
            async with gate:
                client = await SignalingClient.connect(self.url, "/staff", cookie, timeout=60)
            for event in ("staff:state", "queue:update", "call:withdrawn", "callback:new",
                          "callback:done"):
                client.sio.on(event, self._ignore, namespace="/staff")

            async def incoming(data: Any) -> None:
                self.rung.setdefault(data["ticket_id"], time.monotonic())
                self.counts["rings"] += 1
                self._spawn(self._answer(client, data["ticket_id"]))
            client.sio.on("call:incoming", incoming, namespace="/staff")
            return client

        async def kiosk() -> SignalingClient:
            async with gate:
                client = await SignalingClient.connect(self.url, "/kiosk", timeout=60)

            async def update(data: Any) -> None:
                queue = self.updates.get(data.get("ticket_id", ""))
                if queue is not None:
                    queue.put_nowait(data.get("status", ""))
            client.sio.on("ticket:update", update, namespace="/kiosk")
            return client

        cookies = [c for d in self.depts for _, c in self.staff_cookies[d]]
        self.desks = list(await asyncio.gather(*(desk(c) for c in cookies)))
        self.kiosks = list(await asyncio.gather(*(kiosk() for _ in range(self.kiosk_count))))
        for client in self.desks:
            async with gate:
                await client.request("presence:set", {"state": "available"})
        return {"desks": len(self.desks), "kiosks": len(self.kiosks),
                "connect_s": round(time.monotonic() - started, 1)}

    async def _ignore(self, data: Any = None) -> None:
        return None

    async def _call(self, client: SignalingClient, event: str, payload: dict[str, Any]
                    ) -> dict[str, Any] | None:
        try:
            answer = await client.call(event, payload)
        except Exception as exc:  # a timeout under load: counted, the soak goes on
            self.counts[f"error {event}: {type(exc).__name__}"] += 1
            return None
        if not answer.get("ok"):
            self.counts[f"refused {event}: {answer.get('error', {}).get('code')}"] += 1
            return None
        return answer

    async def _answer(self, desk: SignalingClient, ticket_id: str) -> None:
        await asyncio.sleep(self.random.uniform(0.1, 1.0))
        # A ticket is declined at most once: rung again (after the queue's decline cooldown, when
        # every desk of its department declined it), it is accepted, or a run with few desks
        # could decline one ticket until its kiosk stops waiting.
        accept = ticket_id in self.declined or self.random.random() < self.accepts
        if not accept:
            self.declined.add(ticket_id)
        event = "call:accept" if accept else "call:decline"
        if await self._call(desk, event, {"ticket_id": ticket_id}) is not None:
            self.counts["accepts" if accept else "declines"] += 1

    async def _ticket(self, kiosk: SignalingClient, dept: str) -> None:
        t0 = time.monotonic()
        answer = await self._call(kiosk, "ticket:create", {"department": dept, "consent": True})
        if answer is None:
            return
        ticket = answer["ticket"]
        tid = ticket["ticket_id"]
        self.created[tid] = t0
        self.counts["tickets"] += 1
        updates = self.updates[tid] = asyncio.Queue()
        cancel_at = (time.monotonic() + self.random.uniform(0.5, 8.0)
                     if self.random.random() < self.cancels else None)
        status = ticket["status"]
        deadline = time.monotonic() + ENDED_WAIT
        while status not in TERMINAL and time.monotonic() < deadline:
            wait = deadline - time.monotonic()
            if cancel_at is not None and status in ("waiting", "ringing"):
                wait = max(0.0, cancel_at - time.monotonic())
            try:
                status = await asyncio.wait_for(updates.get(), wait)
                continue
            except TimeoutError:
                pass
            if cancel_at is not None and status in ("waiting", "ringing"):
                cancel_at = None
                done = await self._call(kiosk, "ticket:cancel",
                                        {"ticket_id": tid, "token": ticket["token"]})
                if done is not None:
                    self.counts["cancels"] += 1
                    status = done["ticket"]["status"]
        self.outcome[tid] = status
        del self.updates[tid]

    async def _kiosk(self, kiosk: SignalingClient, deadline: float, rate: float) -> None:
        while True:
            # Each kiosk's gaps are long (1,600 kiosks share 2 tickets/s): the last one is cut
            # at the deadline, or the drain would wait for the longest of them.
            gap = self.random.expovariate(rate)
            await asyncio.sleep(min(gap, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                return
            dept = self.random.choice(self.depts)
            if self.random.random() < self.callbacks:
                if await self._call(kiosk, "callback:request", {
                        "department": dept, "name": "压测", "consent": True,
                        "phone": f"138{self.random.randrange(10**8):08d}"}) is not None:
                    self.counts["callbacks"] += 1
                continue
            await self._ticket(kiosk, dept)

    async def _callback_desks(self, deadline: float) -> None:
        while True:
            await asyncio.sleep(min(60 * self.random.random(),
                                    max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                return
            desk = self.random.choice(self.desks)
            listed = await self._call(desk, "callback:list", {})
            if listed and listed["callbacks"]:
                entry = self.random.choice(listed["callbacks"])
                if await self._call(desk, "callback:done",
                                    {"callback_id": entry["callback_id"]}) is not None:
                    self.counts["callbacks_done"] += 1

    async def run(self, seconds: float, rate: float, accepts: float, cancels: float,
                  callbacks: float) -> dict[str, Any]:
        self.accepts, self.cancels, self.callbacks = accepts, cancels, callbacks
        deadline = time.monotonic() + seconds
        per_kiosk = rate / max(len(self.kiosks), 1)
        await asyncio.gather(self._callback_desks(deadline),
                             *(self._kiosk(k, deadline, per_kiosk) for k in self.kiosks))
        while self.tasks:  # desks still answering their last rings
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        latencies = [1000 * (self.rung[t] - t0) for t, t0 in self.created.items()
                     if t in self.rung]
        return {"latencies_ms": latencies, "outcome": self.outcome,
                "counts": dict(self.counts),
                "connected": sum(c.sio.connected for c in self.desks + self.kiosks)}

    async def close(self) -> dict[str, Any]:
        gate = asyncio.Semaphore(50)

        async def close(client: SignalingClient) -> None:
            async with gate:
                try:
                    await client.close()
                except Exception:
                    pass
        await asyncio.gather(*(close(c) for c in self.desks + self.kiosks))
        return {}


def client_process(conn: Connection, url: str, depts: list[str],
                   staff: dict[str, list[tuple[str, str]]], kiosks: int, seed: int) -> None:
    asyncio.run(serve_commands(conn, Clients(url, depts, staff, kiosks, seed)))


# --- the run ---------------------------------------------------------------------------------

async def sample(server: ServerProcess, redis: aioredis.Redis) -> dict[str, float]:
    memory = await redis.info("memory")
    return {"t": round(time.time(), 1), "rss_mb": rss_mb(server.pid),
            "redis_mb": round(int(memory["used_memory"]) / 2 ** 20, 2),
            "sockets": established(server.port)}


async def verdict(store: Store, outcome: dict[str, str]) -> dict[str, Any]:
    """Every ticket a kiosk made, read back: lost ones, and the queue log's double bookings."""
    tickets: dict[str, dict[str, str]] = {}
    for tid in outcome:
        tickets[tid] = await store.redis.hgetall(f"yz:ticket:{tid}")
    missing = sorted(t for t, row in tickets.items() if not row)
    wrong = sorted(t for t, row in tickets.items()
                   if row and (row.get("status") not in ("ended", "cancelled")
                               or row.get("status") != outcome[t]))
    report = check_log(await all_log_entries(store), {t: r for t, r in tickets.items() if r})
    double = [p for p in report.problems if any(d in p for d in DOUBLE)]
    waiting = [t for t, row in tickets.items() if row.get("status") in ("waiting", "ringing")]
    return {"tickets_lost": len(missing) + len(wrong), "double_booked": len(double),
            "lost_examples": (missing + wrong)[:10],
            "wrong_end_examples": {t: (tickets[t].get("status"), outcome[t]) for t in wrong[:10]},
            "still_waiting_or_ringing": len(waiting),
            "queue_log_problems": len(report.problems),
            "queue_log_problem_examples": report.problems[:10],
            "queue_log_counts": report.counts}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    password_hash = hash_password(secrets.token_urlsafe(12))  # nobody signs in with it
    server = ServerProcess(["server", "serve", "--demo"], name="soak", env={
        "YUNZHEN_MEDIA_EMPTY_ROOM_TIMEOUT": str(args.empty_room)})
    await server.start(timeout=60)
    pool: ClientPool | None = None
    figures: dict[str, Any] = {}
    try:
        redis = aioredis.from_url(redis_url_from_log(server), decode_responses=True)
        store = Store(redis)
        per_dept = max(1, args.staff // len(DEPTS))
        staff = await setup_redis(store, per_dept, password_hash)
        pool = ClientPool(args.procs, server.url, staff, args.kiosks, client_process,
                          "soak-clients", lambda i: (1000 + i,))
        connected = await pool.all("connect")
        await asyncio.sleep(2.0)
        start = await sample(server, redis)
        print(f"connected {connected}; {start}", flush=True)
        cpu0, busy0, t0 = cpu_seconds(server.pid), machine_busy(), time.monotonic()
        rates = [{"seconds": args.minutes * 60, "rate": args.rate * len(d) / len(DEPTS),
                  "accepts": args.accepts, "cancels": args.cancels,
                  "callbacks": args.callbacks} for d in pool.shares]
        task = asyncio.create_task(pool.all("run", rates))
        samples = [start]
        while not task.done():
            await asyncio.wait({task}, timeout=args.sample_every)
            samples.append(await sample(server, redis))
            print(f"{(time.monotonic() - t0) / 60:.1f} min: {samples[-1]}", flush=True)
        results = task.result()
        wall = time.monotonic() - t0
        await asyncio.sleep(1.0)
        end = await sample(server, redis)
        outcome = {t: s for r in results for t, s in r["outcome"].items()}
        counts: Counter[str] = Counter()
        for r in results:
            counts.update(r["counts"])
        latencies = [x for r in results for x in r["latencies_ms"]]
        lat = summary_ms(latencies)
        figures.update({
            "sockets": start["sockets"], "sockets_kiosk": sum(c["kiosks"] for c in connected),
            "sockets_staff": sum(c["desks"] for c in connected),
            "sockets_connected_at_end": sum(r["connected"] for r in results),
            "minutes": round(args.minutes, 2), "wall_minutes": round(wall / 60, 2),
            "tickets": len(outcome), "ticket_rate_per_s": args.rate,
            "ring_latency_p50_ms": lat.get("p50"), "ring_latency_p99_ms": lat.get("p99"),
            "ring_latency_max_ms": lat.get("max"), "rings_measured": len(latencies),
            "rss_mb_start": start["rss_mb"], "rss_mb_end": end["rss_mb"],
            "redis_mb_start": start["redis_mb"], "redis_mb_end": end["redis_mb"],
            "counts": dict(counts),
            "server_cpu_pct": round(100 * (cpu_seconds(server.pid) - cpu0) / wall, 1),
            "machine_busy_pct": round(100 * (machine_busy() - busy0) / wall, 1),
            "client_processes": args.procs, "samples": [*samples, end],
        })
        figures.update(await verdict(store, outcome))
        figures["server_log_tracebacks"] = server.log_tail(100_000).count("Traceback")
        await pool.all("close")
        pool.join()
        pool = None
        await redis.aclose()
    finally:
        if pool is not None:
            for proc in pool.procs:
                proc.terminate()
            pool.join()
        await server.stop()
    figures["soak_definition"] = (
        "kiosk sockets take one ticket at a time (exponential gaps, ticket_rate_per_s in all) or "
        "ask for a call-back; desks accept or decline after 0.1-1 s; some tickets are cancelled "
        "by their kiosk; accepted rooms close empty; at the end every ticket is read back from "
        "Redis and the queue log is checked (tests/support/harness.py check_log)")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--kiosks", type=int, default=1600)
    parser.add_argument("--staff", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2.0, help="tickets per second in all")
    parser.add_argument("--accepts", type=float, default=0.65, help="share of rings accepted")
    parser.add_argument("--cancels", type=float, default=0.2, help="share of tickets cancelled")
    parser.add_argument("--callbacks", type=float, default=0.1,
                        help="share of kiosk turns that ask for a call-back")
    parser.add_argument("--empty-room", type=float, default=5.0,
                        help="seconds an accepted room nobody joins stays open")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--sample-every", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args))
    summary = {k: v for k, v in figures.items() if k not in ("samples", "counts")}
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    merge_results("soak", figures, path=args.out)
    print(f"==> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
