"""Redis Sentinel failover under load: the real server (`python -m server serve --demo`) on a real
master + replica + 3 sentinels (tests/support/sentinel.py: down-after-milliseconds 1000), kiosk
sockets taking tickets one after another (and cancelling each, so the queues stay short) while
the master is `kill -9`ed. Per round:

- `failover_s`: from the kill to the first ticket:create sent after it that is acknowledged
  (the service answers new tickets again);
- `promotion_s`: from the kill to the sentinels naming the promoted replica (Sentinel's part);
- `lost`: tickets acknowledged to a kiosk (before, during or after the failover) that the new
  master does not have (must be 0).

Writes `sentinel_failover_s` (median of the rounds), `sentinel_promotion_s`, `tickets_lost` (sum)
and `sentinel_tickets_acknowledged` into bench/results/scale.json:

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m bench.sentinel --rounds 3'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

from bench.common import ROOT, ServerProcess, merge_results
from signaling import keys
from signaling.client import SignalingClient
from tests.support.sentinel import sentinel_set

RESULTS = ROOT / "bench" / "results" / "scale.json"
DEPARTMENTS = ("tax", "market", "hrss", "fund", "estate")
WARMUP_S = 3.0
AFTER_S = 3.0  # tickets keep coming this long after the service answers again
WAIT_TIMEOUT_MS = 500  # the default of redis_wait_timeout_ms


@dataclass
class Round:
    kill_at: float | None = None
    failover_s: float | None = None
    acknowledged: list[str] = field(default_factory=list)
    refused: int = 0
    uncancelled: list[tuple[str, str]] = field(default_factory=list)


async def _creator(kiosk: SignalingClient, department: str, state: Round,
                   stop: asyncio.Event) -> None:
    while not stop.is_set():
        for ticket_id, token in list(state.uncancelled):
            with contextlib.suppress(TimeoutError, socketio.exceptions.SocketIOError):
                answer = await kiosk.call("ticket:cancel", {"ticket_id": ticket_id,
                                                            "token": token})
                if answer.get("ok"):
                    state.uncancelled.remove((ticket_id, token))
        sent = time.monotonic()
        try:
            answer = await kiosk.call("ticket:create", {"department": department,
                                                        "consent": True})
        except (TimeoutError, socketio.exceptions.SocketIOError):
            state.refused += 1
            continue
        if not answer.get("ok"):
            state.refused += 1
            await asyncio.sleep(0.05)
            continue
        ticket = answer["ticket"]
        state.acknowledged.append(ticket["ticket_id"])
        state.uncancelled.append((ticket["ticket_id"], ticket["token"]))
        if state.kill_at is not None and sent >= state.kill_at and state.failover_s is None:
            state.failover_s = time.monotonic() - state.kill_at


async def one_round(directory: Path, creators: int, env: dict[str, str]) -> dict[str, Any]:
    async with sentinel_set(directory / "redis", WAIT_TIMEOUT_MS) as deployment:
        server = ServerProcess(["server", "serve", "--demo"], name="sentinel",
                               env={**deployment.env, **env})
        kiosks: list[SignalingClient] = []
        stop = asyncio.Event()
        state = Round()
        tasks: list[asyncio.Task[None]] = []
        try:
            await server.start()
            for i in range(creators):
                kiosk = await SignalingClient.connect(server.url, "/kiosk")
                kiosks.append(kiosk)
                tasks.append(asyncio.create_task(
                    _creator(kiosk, DEPARTMENTS[i % len(DEPARTMENTS)], state, stop)))
            await asyncio.sleep(WARMUP_S)
            old = await deployment.kill_master()
            state.kill_at = time.monotonic()
            promotion_s = await deployment.wait_promoted(old)
            deadline = time.monotonic() + 60
            while state.failover_s is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("no ticket acknowledged 60 s after the kill:\n"
                                       + server.log_tail())
                await asyncio.sleep(0.02)
            await asyncio.sleep(AFTER_S)
            stop.set()
            await asyncio.gather(*tasks)
            client = deployment.client(await deployment.master_port())
            try:
                pipe = client.pipeline(transaction=False)
                for ticket_id in state.acknowledged:
                    pipe.exists(keys.TICKET(ticket_id))
                present = await pipe.execute()
            finally:
                await client.aclose()
            return {"failover_s": round(state.failover_s, 3),
                    "promotion_s": round(promotion_s, 3),
                    "acknowledged": len(state.acknowledged),
                    "lost": sum(1 for p in present if not p),
                    "refused_during_failover": state.refused}
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for kiosk in kiosks:
                with contextlib.suppress(Exception):
                    await kiosk.close()
            await server.stop()


async def measure(rounds: int, creators: int, env: dict[str, str]) -> dict[str, Any]:
    runs = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="yunzhen-bench-sentinel-") as tmp:
            runs.append(await one_round(Path(tmp), creators, env))
            print(json.dumps(runs[-1]), flush=True)
    return {
        "sentinel_failover_s": round(statistics.median(r["failover_s"] for r in runs), 2),
        "sentinel_promotion_s": round(statistics.median(r["promotion_s"] for r in runs), 2),
        "tickets_lost": sum(r["lost"] for r in runs),
        "sentinel_tickets_acknowledged": sum(r["acknowledged"] for r in runs),
        "sentinel_runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="failovers, each on a fresh set")
    parser.add_argument("--creators", type=int, default=4,
                        help="kiosk sockets taking tickets at once")
    parser.add_argument("--wait-replicas", type=int,
                        help="redis_wait_replicas for the server (0: no WAIT, to compare); "
                             "figures are then printed, not written")
    args = parser.parse_args()
    env = {} if args.wait_replicas is None \
        else {"YUNZHEN_REDIS_WAIT_REPLICAS": str(args.wait_replicas)}
    figures = asyncio.run(measure(args.rounds, args.creators, env))
    if not env:
        merge_results("sentinel", figures, RESULTS)
    print(json.dumps({k: v for k, v in figures.items() if k != "sentinel_runs"}, indent=2))


if __name__ == "__main__":
    main()
