"""The cost of placing rooms on other processes: `serve --demo --workers 2` behind nginx, desks
accept kiosk tickets over and over, and the time from `call:accept` sent to its answer is split by
whether the room opened on the desk's own process (local) or on the other one (the node command
over Redis). Writes `placement_*` into bench/results/scale.json.

    python -m bench.placement [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench.common import (
    NO_LIMITS_ENV,
    ROOT,
    announce_loopback,
    free_port,
    merge_results,
    percentile,
)
from rooms.client import RoomClient
from signaling import keys
from signaling.client import SignalingClient, login_cookie
from tests.support.cluster import launch

RESULTS = ROOT / "bench" / "results" / "scale.json"
STAFF = (("tax01", "tax"), ("market01", "market"), ("hrss01", "hrss"), ("fund01", "fund"),
         ("estate01", "estate"))
PASSWORD = "demo12345"


async def _node_of(redis: aioredis.Redis, kind: str, ident: str) -> str:
    for _ in range(100):
        nodes = await redis.hkeys(keys.CONNS(kind, ident))  # type: ignore[misc]
        if nodes:
            return str(nodes[0])
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no node holds {kind} {ident}")


async def _run(url: str, redis: aioredis.Redis, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"local": [], "remote": []}
    desks = {}
    for username, department in STAFF:
        cookie = await login_cookie(url, username, PASSWORD)
        desk = await SignalingClient.connect(url, "/staff", cookie)
        await desk.next("staff:state")
        desks[username] = (desk, department, await _node_of(redis, "staff", username))
    kiosk = await SignalingClient.connect(url, "/kiosk")
    try:
        for _ in range(rounds):
            for desk, department, desk_node in desks.values():
                await desk.request("presence:set", {"state": "available"})
                ticket = (await kiosk.request("ticket:create", {
                    "department": department, "consent": True}))["ticket"]
                await desk.next("call:incoming", ticket_id=ticket["ticket_id"])
                started = time.perf_counter()
                answer = await desk.request("call:accept", {"ticket_id": ticket["ticket_id"]})
                elapsed = (time.perf_counter() - started) * 1000
                room = answer["room"]
                host = await redis.hget(keys.ROOM(room["room_id"]), "node")  # type: ignore[misc]
                times["local" if host == desk_node else "remote"].append(elapsed)
                staff = await RoomClient.connect(url, room["room_id"], room["token"],
                                                 video=False, audio=False, base=room["base"])
                await staff.hangup()
                await staff.close()
                await asyncio.sleep(0.5)  # the room's close hooks end the ticket
    finally:
        await kiosk.close()
        for desk, _department, _node in desks.values():
            await desk.close()
    return times


async def main(rounds: int) -> dict[str, Any]:
    announce_loopback()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        process = launch(port, data_dir, Path(tmp) / "launcher.log", extra_env=NO_LIMITS_ENV)
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(600):
                    try:
                        async with http.get(url + "/healthz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            await asyncio.sleep(2.5)  # both nodes in the registry
            redis = aioredis.from_url((data_dir / "redis" / "url").read_text().strip(),
                                      decode_responses=True)
            try:
                times = await _run(url, redis, rounds)
            finally:
                await redis.aclose()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)
    figures = {
        "placement_accept_ms_local_p50": round(percentile(times["local"], 50), 1),
        "placement_accept_ms_remote_p50": round(percentile(times["remote"], 50), 1),
        "placement_samples": {k: len(v) for k, v in times.items()},
    }
    figures["placement_extra_ms_p50"] = round(
        figures["placement_accept_ms_remote_p50"] - figures["placement_accept_ms_local_p50"], 1)
    merge_results("placement", figures, RESULTS)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    print(asyncio.run(main(parser.parse_args().rounds)))
