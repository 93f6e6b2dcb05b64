"""How long the service takes to come back from losing its private Redis: the real server
(`python -m server serve --demo`, with its own redis-server) holding a waiting ticket and a staff
desk; its redis-server is `kill -9`ed, and the time until /healthz answers 200 again (the
supervisor restarted it from its AOF and the process re-asserted its heartbeat and sockets) is
measured, on `kills` fresh servers. `measure()` returns `redis_restart_s` (the median) for
bench/results/resilience.json, which another bench writes; run alone it prints the figures:

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m bench.resilience_redis'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import ServerProcess
from server.cli_redis import private_redis_pid
from signaling.client import SignalingClient, login_cookie

POLL_S = 0.01


async def _time_to_ok(url: str, redis_dir: Path, timeout: float = 60.0) -> float:
    """Kill the private redis-server; seconds until /healthz says 503 and then 200 again."""
    pid = private_redis_pid(redis_dir)
    if pid is None:
        raise RuntimeError(f"no redis-server serving {redis_dir}")
    async with aiohttp.ClientSession() as session:
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        degraded = False
        while time.monotonic() - killed < timeout:
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status != 200:
                        degraded = True
                    elif degraded:
                        return time.monotonic() - killed
            except aiohttp.ClientError:
                degraded = True
            await asyncio.sleep(POLL_S)
    raise RuntimeError(f"/healthz not ok {timeout} s after the kill")


async def _one_kill() -> tuple[float, int]:
    """A fresh server (its supervisor's back-off starts over) with a waiting ticket and a desk:
    (seconds from the kill to /healthz ok, tickets lost)."""
    server = ServerProcess(["server", "serve", "--demo"], name="resilience-redis")
    await server.start()
    sockets: list[SignalingClient] = []
    try:
        cookie = await login_cookie(server.url, "tax01", "demo12345")
        desk = await SignalingClient.connect(server.url, "/staff", cookie)
        sockets.append(desk)
        await desk.request("presence:set", {"state": "away", "reason": "bench"})
        kiosk = await SignalingClient.connect(server.url, "/kiosk")
        sockets.append(kiosk)
        ticket = (await kiosk.request("ticket:create",
                                      {"department": "tax", "consent": True}))["ticket"]
        seconds = await _time_to_ok(server.url, server.data_dir / "data" / "redis")
        answer = await kiosk.request("ticket:resume", {"ticket_id": ticket["ticket_id"],
                                                       "token": ticket["token"]})
        return seconds, 0 if answer["ticket"]["status"] == "waiting" else 1
    finally:
        for sock in sockets:
            await sock.close()
        await server.stop()


async def measure(kills: int = 3) -> dict[str, Any]:
    """`redis_restart_s`: the median seconds from `kill -9` of the private redis-server to
    /healthz ok, each kill on a fresh server (a redis-server that keeps dying is restarted more
    and more slowly: that back-off is not what is measured); `redis_restart_runs`: each kill's;
    `tickets_lost`: waiting tickets no longer waiting afterwards (must be 0)."""
    runs: list[float] = []
    lost = 0
    for _ in range(kills):
        seconds, missing = await _one_kill()
        runs.append(seconds)
        lost += missing
    return {"redis_restart_s": round(statistics.median(runs), 3),
            "redis_restart_runs": [round(r, 3) for r in runs], "tickets_lost": lost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.kills)), indent=2))


if __name__ == "__main__":
    main()
