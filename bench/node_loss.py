"""Node loss: how long a live call is without media when the process hosting it is killed. Two
server processes (`python -m server serve --demo`) share one redis-server and one data
directory; a 3-person room (applicant, staff, a 会商 colleague: aiortc participants, real media)
opens on the first; `kill -9` of it; the second adopts the room once the heartbeat runs out, and
every participant reconnects to it with its room token. Figure, in bench/results/scale.json:

    node_loss_media_back_s   kill -9 -> all three receive each other's video again (median)

    python -m bench.node_loss [--runs 3]

The scenario (`three_person_room`, `rejoin`) is also what tests/cluster/test_node_loss.py runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench.common import ROOT, announce_loopback, merge_results, open_room
from rooms.client import RoomClient, RoomClientError
from server.redis_server import EmbeddedRedis
from server.seed import DEMO_PASSWORD
from signaling.client import SignalingClient, login_cookie
from tests.support.harness import ServerProcess

RESULTS = ROOT / "bench" / "results" / "scale.json"
# Frames each participant must decode from every other one to count the media as back.
MEDIA_FRAMES = 5


@dataclass
class Call:
    """A live 3-person call and what a test needs to follow it."""

    room_id: str
    staff_cookie: str
    clients: dict[str, RoomClient] = field(default_factory=dict)  # applicant, staff, consult
    tokens: dict[str, str] = field(default_factory=dict)  # their room tokens, by the same name
    sockets: list[SignalingClient] = field(default_factory=list)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        for sock in self.sockets:
            await sock.close()


async def _post(base: str, path: str, cookie: str, payload: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}{path}", json=payload,
                                headers={"Cookie": cookie}) as response:
            answer: dict[str, Any] = await response.json()
            if response.status != 200:
                raise RuntimeError(f"POST {path}: {response.status} {answer}")
            return answer


async def three_person_room(base: str, timeout: float = 20.0) -> Call:
    """A kiosk ticket for tax accepted by tax01, who invites market (会商); market01 joins. Every
    participant receives the others' video before this returns."""
    applicant_room, staff_room, sockets = await open_room(base)
    staff_cookie = await login_cookie(base, "tax01", DEMO_PASSWORD)
    call = Call(room_id=staff_room["room_id"], staff_cookie=staff_cookie, sockets=sockets)
    try:
        for name, room in (("applicant", applicant_room), ("staff", staff_room)):
            call.tokens[name] = room["token"]
            call.clients[name] = await RoomClient.connect(base, room["room_id"], room["token"],
                                                          name=name, width=320, height=240)
        await _post(base, f"/api/rooms/{call.room_id}/invite", staff_cookie,
                    {"department": "market", "note": ""})
        market = await login_cookie(base, "market01", DEMO_PASSWORD)
        grant = (await _post(base, f"/api/rooms/{call.room_id}/join", market, {}))["room"]
        call.tokens["consult"] = grant["token"]
        call.clients["consult"] = await RoomClient.connect(base, call.room_id, grant["token"],
                                                           name="consult", width=320,
                                                           height=240)
        await all_media(call, timeout)
    except BaseException:
        await call.close()
        raise
    return call


async def all_media(call: Call, timeout: float) -> None:
    """Every participant decodes MEDIA_FRAMES video frames from both others."""
    async def both(client: RoomClient) -> None:
        deadline = time.monotonic() + timeout
        while len([s for s in client.stats().values() if s["video_frames"] >= MEDIA_FRAMES]) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{client.name}: no video from both others: {client.stats()}")
            await asyncio.sleep(0.05)

    await asyncio.gather(*(both(c) for c in call.clients.values()))


async def rejoin(call: Call, base: str, timeout: float) -> None:
    """Each participant reconnects to ``base`` with its token, as a page's reconnect flow does:
    tried again every 200 ms while the room is not hosted there yet (not_found)."""
    deadline = time.monotonic() + timeout

    async def one(client: RoomClient) -> None:
        while True:
            try:
                await client.reconnect(base, timeout=max(1.0, deadline - time.monotonic()))
                return
            except (RoomClientError, OSError, aiohttp.ClientError, TimeoutError,
                    socketio.exceptions.ConnectionError) as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{client.name}: could not rejoin: {exc}") from exc
            await asyncio.sleep(0.2)

    await asyncio.gather(*(one(c) for c in call.clients.values()))
    await all_media(call, max(1.0, deadline - time.monotonic()))


async def one_run(work: Path) -> float:
    redis = EmbeddedRedis(work / "redis")
    await redis.start()
    first = ServerProcess(redis.url, work / "data")
    second = ServerProcess(redis.url, work / "data")
    call: Call | None = None
    try:
        await first.start()
        await second.start()
        call = await three_person_room(first.url)
        killed = time.monotonic()
        await first.kill9()
        await rejoin(call, second.url, timeout=30)
        return time.monotonic() - killed
    finally:
        if call is not None:
            await call.close()
        await first.kill9()
        await second.stop()
        await redis.stop()


async def main(runs: int) -> dict[str, Any]:
    announce_loopback()
    times = []
    for n in range(runs):
        with tempfile.TemporaryDirectory(prefix="yunzhen-node-loss-") as tmp:
            seconds = await one_run(Path(tmp))
        print(f"run {n + 1}: media back {seconds:.2f} s after kill -9", flush=True)
        times.append(seconds)
    figures = {"node_loss_media_back_s": round(statistics.median(times), 2),
               "node_loss_media_back_runs_s": [round(t, 2) for t in times]}
    merge_results("node_loss", figures, RESULTS)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    print(asyncio.run(main(parser.parse_args().runs)))
