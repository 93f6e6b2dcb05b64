"""Node loss: two real server processes on one redis-server and one data directory; a live
3-person room (applicant, staff, a 会商 colleague: aiortc participants with real media) on the
first; `kill -9` of it. Within 10 s the second hosts the room, every participant reconnects to it
with the token it had and receives the others' media again; the ticket stays connected and the
staff member in the call, which then ends normally; the recording has two parts and a gap, and
`python -m server verify` is clean."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bench.node_loss import Call, all_media, rejoin, three_person_room
from server.redis_server import EmbeddedRedis
from signaling.client import SignalingClient
from tests.support.harness import ROOT, ServerProcess, wait_until
from tests.support.tcp_proxy import TcpProxy

# The heartbeat's TTL (5 s), a tick, an adopting heartbeat (1 s), and the reconnection.
HOSTED_WITHIN_S = 10.0
# The second process's reconnect grace and empty-room timeout where a partition outlasts them.
SHORT_GRACE_S = 6


@dataclass
class TwoNodes:
    """Two server processes on one redis-server and one data directory, a live 3-person call
    on the first."""
    client: Any
    redis_url: str
    data_dir: Path
    first: ServerProcess
    second: ServerProcess
    call: Call
    ticket_id: str
    first_node: str
    second_node: str
    proxy: TcpProxy

    @property
    def room_id(self) -> str:
        return self.call.room_id

    async def indexed(self) -> dict[str, str]:
        """Wait until the recording is in the archive; its index row."""
        async def row() -> dict[str, str] | None:
            found: dict[str, str] = await self.client.hgetall(f"yz:recording:{self.room_id}")
            return found or None

        return await wait_until(row, 20, interval=0.2, what="the recording in the archive")

    async def adopted_by_second(self) -> None:
        """Wait until the second hosts the room (adopted, counted in its registry entry)."""
        async def adopted() -> bool:
            return (await self.client.hget(f"yz:room:{self.room_id}", "node") == self.second_node
                    and not await self.client.smembers(f"yz:node:{self.second_node}:adopt")
                    and await self.client.hget(f"yz:nodeinfo:{self.second_node}", "rooms") == "1")

        await wait_until(adopted, HOSTED_WITHIN_S + 5, interval=0.1, what="adopted by the second")

    async def first_let_go(self, timeout: float) -> None:
        """Wait until the first hosts no room any more."""
        async def let_go() -> bool:
            return await self.client.hget(f"yz:nodeinfo:{self.first_node}", "rooms") == "0"

        await wait_until(let_go, timeout, interval=0.1, what="the first letting the room go")

    async def ends_on_second_in_two_parts(self) -> None:
        """The participants rejoin on the second and hang up there; the recording is complete,
        in the first's part and the second's, and verifies."""
        await rejoin(self.call, self.second.url, timeout=30)
        await self.call.clients["staff"].hangup()
        await self.indexed()
        timeline = self.timeline()
        assert timeline["complete"] is True
        assert [p["node"] for p in timeline["parts"]] == [self.first_node, self.second_node]
        await self.verify()

    def timeline(self) -> dict[str, Any]:
        path = self.data_dir / "recordings" / self.room_id / "timeline.json"
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    async def verify(self) -> None:
        env = {**os.environ, "YUNZHEN_DATA_DIR": str(self.data_dir),
               "YUNZHEN_REDIS_URL": self.redis_url}
        verify = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "server", "verify", self.room_id], cwd=ROOT,
            env=env, capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path, proxied: bool = False,
                    second_env: dict[str, str] | None = None) -> AsyncIterator[TwoNodes]:
    """``proxied``: the first reaches Redis through a TcpProxy (``TwoNodes.proxy``);
    ``second_env``: settings of the second process."""
    redis = EmbeddedRedis(tmp_path / "redis")
    await redis.start()
    client: Any = aioredis.Redis.from_url(redis.url, decode_responses=True)
    data_dir = tmp_path / "data"
    proxy = TcpProxy(redis.port)
    await proxy.start()
    first = ServerProcess(proxy.url if proxied else redis.url, data_dir)
    second = ServerProcess(redis.url, data_dir, **(second_env or {}))
    call: Call | None = None
    try:
        await first.start()
        await second.start()
        call = await three_person_room(first.url)
        entry = await client.hgetall(f"yz:room:{call.room_id}")
        first_node = entry["node"]
        second_node = next(n for n in await client.zrange("yz:nodes", 0, -1) if n != first_node)
        await asyncio.sleep(2)  # some media in the first part
        yield TwoNodes(client, redis.url, data_dir, first, second, call, entry["ticket_id"],
                       first_node, second_node, proxy)
    finally:
        if call is not None:
            await call.close()
        await first.kill9()  # a stopped process too
        await second.stop()
        await proxy.close()
        await client.aclose()
        await redis.stop()


@pytest.mark.timeout(240)
async def test_the_room_of_a_killed_process_comes_back_on_a_live_one(
        tmp_path: Path, loopback_candidates: None) -> None:
    async with two_nodes(tmp_path) as nodes:
        client, call, room_id = nodes.client, nodes.call, nodes.room_id
        ticket_id, first_node, second_node = nodes.ticket_id, nodes.first_node, nodes.second_node
        killed = time.monotonic()
        await nodes.first.kill9()
        # Before the second adopts the room (the heartbeat is 5 s late first), a join there is
        # told to try again, not that the room is gone (a page would end the call).
        early = await SignalingClient.connect(nodes.second.url, "/room")
        try:
            refused = await early.call("room:join", {"room_id": room_id,
                                                     "token": call.tokens["staff"]})
        finally:
            await early.close()
        assert refused["ok"] is False and refused["error"]["code"] == "other_node", refused

        async def moved() -> bool:
            return await client.hget(f"yz:room:{room_id}", "node") == second_node

        await wait_until(moved, HOSTED_WITHIN_S, interval=0.1, what="the room on the second")
        # Not ended meanwhile: the ticket is still in its call, the desk too.
        assert await client.hget(f"yz:ticket:{ticket_id}", "status") == "connected"
        assert await client.hget("yz:staff:tax01", "presence") == "in_call"
        await rejoin(call, nodes.second.url,
                     timeout=HOSTED_WITHIN_S - (time.monotonic() - killed))
        media_back = time.monotonic() - killed
        assert media_back <= HOSTED_WITHIN_S, media_back
        assert await client.hget(f"yz:ticket:{ticket_id}", "status") == "connected"
        assert await client.hget("yz:staff:tax01", "presence") == "in_call"
        assert await client.smembers(f"yz:node:{second_node}:adopt") == set()

        # The desk's page reconnects too, and the call ends normally there.
        desk = await SignalingClient.connect(nodes.second.url, "/staff", call.staff_cookie)
        try:
            state = await desk.next("staff:state")
            assert state["presence"] == "in_call"
            await call.clients["staff"].hangup()
            await nodes.indexed()
        finally:
            await desk.close()
        assert await client.hget(f"yz:ticket:{ticket_id}", "status") == "ended"
        assert await client.hget("yz:staff:tax01", "presence") in ("wrap_up", "available")
        assert await client.hget("yz:staff:market01", "presence") != "in_call"
        log = await client.xrange("yz:log")
        assert not [e for _id, e in log
                    if e["ticket"] == ticket_id and e["event"] == "ABANDON"], log

        timeline = nodes.timeline()
        assert timeline["complete"] is True and "recovered" not in timeline
        one, two = timeline["parts"]
        assert (one["node"], two["node"]) == (first_node, second_node)
        [gap] = [e for e in timeline["events"] if e["type"] == "gap"]
        assert (gap["reason"], gap["from_node"], gap["to_node"]) == (
            "node_lost", first_node, second_node)
        assert one["ended_at"] == gap["t"] < gap["until"] == two["started_at"]
        # Three publishers' audio and video in each part.
        assert len(one["tracks"]) == 6 and len(two["tracks"]) == 6
        assert {p["participant_id"] for p in timeline["participants"]} == {
            f"a-{ticket_id}", "s-tax01", "s-market01"}
        await nodes.verify()
        assert not nodes.second.errors(), nodes.second.tail()


def _digests(directory: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.glob("*.webm"))}


@pytest.mark.timeout(240)
async def test_a_stopped_process_that_wakes_up_lets_its_moved_room_go(
        tmp_path: Path, loopback_candidates: None) -> None:
    """The first process is stopped (SIGSTOP: a paused VM), not killed: the second adopts its
    room. When the first wakes up (SIGCONT), media the participants kept sending it and its own
    timers are the first things it runs; it must not write into the recording the second now
    continues, must not end the call, and must send its participants on to the second."""
    async with two_nodes(tmp_path) as nodes:
        client, room_id = nodes.client, nodes.room_id
        first, second, second_node = nodes.first, nodes.second, nodes.second_node
        folder = nodes.data_dir / "recordings" / room_id
        assert first.process is not None
        os.kill(first.process.pid, signal.SIGSTOP)
        await nodes.adopted_by_second()
        first_part = _digests(folder)
        assert len(first_part) == 6, first_part
        # The participants' media still goes to the stopped process, piling up in its socket.
        await asyncio.sleep(2)

        os.kill(first.process.pid, signal.SIGCONT)

        await nodes.first_let_go(10)
        assert "moved to node " + second_node in first.tail(200)
        # Not a byte of the first part changed, and the timeline is the second's (with the gap).
        assert _digests(folder) == first_part
        assert [e["type"] for e in nodes.timeline()["events"]].count("gap") == 1
        # The call goes on, on the second.
        assert await client.hget(f"yz:room:{room_id}", "node") == second_node
        assert await client.hget(f"yz:ticket:{nodes.ticket_id}", "status") == "connected"
        assert await client.hget("yz:staff:tax01", "presence") == "in_call"
        # The first is registered again (its sockets counted in again), alive.
        assert nodes.first_node in await client.zrange("yz:nodes", 0, -1)

        await nodes.ends_on_second_in_two_parts()
        assert not first.errors(), first.tail()
        assert not second.errors(), second.tail()


@pytest.mark.timeout(240)
async def test_a_process_cut_off_from_redis_alone_stops_writing_and_lets_its_moved_room_go(
        tmp_path: Path, loopback_candidates: None) -> None:
    """A partition: the first process runs on, its participants' media still reaching it, but
    it cannot reach Redis while the second can. The second takes it for dead and adopts its
    room. The first must not take the Redis outage for everybody's and keep writing the
    recording the second now continues; told by the second that it was taken for dead, it
    lets the room go while still cut off, and its participants go on on the second however
    long the partition lasts (longer here than the second's reconnect grace and empty-room
    timeout)."""
    async with two_nodes(tmp_path, proxied=True, second_env={
            "YUNZHEN_MEDIA_RECONNECT_GRACE": str(SHORT_GRACE_S),
            "YUNZHEN_MEDIA_EMPTY_ROOM_TIMEOUT": str(SHORT_GRACE_S)}) as nodes:
        client, room_id, call = nodes.client, nodes.room_id, nodes.call
        first, second, second_node = nodes.first, nodes.second, nodes.second_node
        folder = nodes.data_dir / "recordings" / room_id
        nodes.proxy.cut()
        await nodes.adopted_by_second()
        first_part = _digests(folder)
        assert len(first_part) == 6, first_part

        # The first hears from the second that it was taken for dead and lets the room go:
        # every participant's room socket there is closed (a page then asks where the room is).
        async def dropped() -> bool:
            return not any(c.sio.connected for c in call.clients.values())

        await wait_until(dropped, 10, interval=0.1, what="the first closing the room's sockets")
        log = first.tail(300)
        assert "Redis answers the node at " in log
        assert "was taken for dead while cut off from Redis" in log
        # Its media never reached the first part after the adoption.
        assert _digests(folder) == first_part

        # The partition goes on: the participants join the room on the second and the call goes
        # on there for longer than the second's grace and empty-room timeout.
        await rejoin(call, second.url, timeout=30)
        await asyncio.sleep(SHORT_GRACE_S + 2)
        assert await client.hget(f"yz:room:{room_id}", "node") == second_node
        assert await client.hget(f"yz:ticket:{nodes.ticket_id}", "status") == "connected"
        assert await client.hget("yz:staff:tax01", "presence") == "in_call"
        await all_media(call, 10)

        nodes.proxy.mend()

        # Buried, the first registers again with no room (nothing left to let go).
        await nodes.first_let_go(15)
        assert "re-asserted after the Redis outage" in first.tail(300)
        # The first part as it was (the second's part has files of its own beside it).
        now = _digests(folder)
        assert {name: now.get(name) for name in first_part} == first_part
        assert [e["type"] for e in nodes.timeline()["events"]].count("gap") == 1

        await nodes.ends_on_second_in_two_parts()
        assert not second.errors(), second.tail()
