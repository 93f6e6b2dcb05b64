"""Losing Redis: the service (`python -m server serve --demo` as a process) with its private
redis-server, which is `kill -9`ed, and with an external one, which is stopped (SIGSTOP) and then
killed and started again on the same port and AOF directory.

The outage is made longer than a heartbeat (10 s) and than the ticket's grace (5 s here): a
waiting ticket from before must still be waiting afterwards, counted for its kiosk socket (which
never disconnected), and answered when a staff member goes available. While Redis is away
/healthz answers 503 `degraded`, the API a JSON 503 `unavailable`, a page 503 HTML, socket
events `unavailable`, the sockets hear `service:state`; the log says the outage once and has no
traceback. For the private Redis, the test holds its port for a while after the kill so that the
supervisor's first restarts fail (and back off) before one succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import socketio

from bench.common import open_room
from rooms.client import RoomClient
from server.cli_redis import private_redis_pid
from server.redis_server import EmbeddedRedis
from signaling import keys
from signaling.client import SignalingClient, login_cookie
from tests.support.harness import ServerProcess, wait_until

TICKET_GRACE = 5
STAFF_GRACE = 3
OUTAGE_S = 12.0  # longer than HEARTBEAT_TTL (10 s) and both graces


@dataclass
class Scene:
    server: ServerProcess
    desk: SignalingClient      # tax01, away until the outage is over
    kiosk: SignalingClient     # holds the ticket the whole time
    ticket_id: str


@contextlib.asynccontextmanager
async def scene(redis_url: str, data_dir: Path) -> AsyncIterator[Scene]:
    server = ServerProcess(redis_url, data_dir, YUNZHEN_TICKET_GRACE=str(TICKET_GRACE),
                           YUNZHEN_STAFF_GRACE=str(STAFF_GRACE))
    await server.start()
    sockets: list[SignalingClient] = []
    try:
        cookie = await login_cookie(server.url, "tax01", "demo12345")
        desk = await SignalingClient.connect(server.url, "/staff", cookie)
        sockets.append(desk)
        await desk.request("presence:set", {"state": "away", "reason": "开会"})
        kiosk = await SignalingClient.connect(server.url, "/kiosk")
        sockets.append(kiosk)
        answer = await kiosk.request("ticket:create", {"department": "tax", "consent": True})
        assert answer["ticket"]["status"] == "waiting"
        yield Scene(server, desk, kiosk, answer["ticket"]["ticket_id"])
    finally:
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.close()
        await server.stop()


async def health(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{url}/healthz") as response:
        return response.status, await response.json()


async def check_degraded(s: Scene) -> None:
    """What the service answers while Redis is away."""
    url = s.server.url
    async with aiohttp.ClientSession() as session:
        async def degraded() -> bool:
            status, body = await health(session, url)
            return status == 503 and body == {"ok": False, "redis": "down",
                                              "status": "degraded"}
        await wait_until(degraded, 10, 0.05, "/healthz degraded")

        async def refused() -> bool:
            # Until the watch has seen the outage (a stopped Redis: its ping's timeout), a
            # request may wait for Redis up to the command timeout; from then on it is
            # answered at once.
            async with session.get(f"{url}/api/departments") as response:
                return response.status == 503
        await wait_until(refused, 15, 0.05, "the API refusing")
        started = time.monotonic()
        async with session.post(f"{url}/api/login",
                                json={"username": "tax01", "password": "demo12345"}) as response:
            assert response.status == 503
            assert response.content_type == "application/json"
            assert response.headers["Retry-After"] == "2"
            body = await response.json()
            assert body["ok"] is False and body["error"]["code"] == "unavailable"
            assert body["error"]["retry_after"] == 2
            assert body["error"]["message"] == "服务暂时不可用，正在恢复，请稍候再试。"
        async with session.get(f"{url}/api/departments") as response:
            assert response.status == 503
            assert (await response.json())["error"]["code"] == "unavailable"
        async with session.get(f"{url}/staff") as response:
            assert response.status == 503
            assert response.content_type == "text/html"
            assert "服务暂时不可用" in await response.text()
        # Answered at once, not after a timeout (a stopped Redis does not hold them).
        assert time.monotonic() - started < 2.0
    # Socket events: a structured refusal; a new queue socket is refused, to try again.
    answer = await s.desk.call("presence:set", {"state": "available"})
    assert answer["ok"] is False and answer["error"]["code"] == "unavailable"
    answer = await s.kiosk.call("ticket:create", {"department": "tax", "consent": True})
    assert answer["ok"] is False and answer["error"]["code"] == "unavailable"
    with pytest.raises(socketio.exceptions.ConnectionError):
        await SignalingClient.connect(url, "/kiosk", timeout=5)
    assert await s.kiosk.next("service:state", state="degraded")
    assert await s.desk.next("service:state", state="degraded")


async def wait_ok(url: str, timeout: float) -> None:
    async with aiohttp.ClientSession() as session:
        async def ok() -> bool:
            status, body = await health(session, url)
            return status == 200 and body == {"ok": True, "redis": "ok", "status": "ok"}
        await wait_until(ok, timeout, 0.05, "/healthz ok")


async def check_nothing_lost(s: Scene, redis_url: str) -> None:
    """After the outage: the ticket waits on, its kiosk socket still counted; the staff member
    who goes available is rung for it and answers it."""
    assert await s.kiosk.next("service:state", state="ok")
    assert await s.desk.next("service:state", state="ok")
    update = await s.kiosk.next("ticket:update", ticket_id=s.ticket_id)
    assert update["status"] == "waiting"
    # Past the ticket's grace and a heartbeat's time: the old bug abandoned it by now.
    await asyncio.sleep(TICKET_GRACE + 3)
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.hget(keys.TICKET(s.ticket_id), "status") == "waiting"
        assert await client.zscore(keys.TICKET_GONE, s.ticket_id) is None
        counts = await client.hgetall(keys.CONNS("ticket", s.ticket_id))
        assert list(counts.values()) == ["1"], counts
        assert s.kiosk.sio.connected and s.desk.sio.connected
        assert (await client.hget(keys.STAFF("tax01"), "gone")) is None

        assert (await s.desk.request("presence:set", {"state": "available"}))["presence"] \
            == "available"
        ring = await s.desk.next("call:incoming", timeout=10)
        assert ring["ticket_id"] == s.ticket_id
        await s.desk.request("call:accept", {"ticket_id": s.ticket_id})
        connected = await s.kiosk.next("ticket:update", status="connected")
        assert connected["room"]["room_id"]
        assert await client.hget(keys.TICKET(s.ticket_id), "status") == "connected"
    finally:
        await client.aclose()


def check_log(server: ServerProcess, outages: int) -> str:
    text = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in text, server.tail(80)
    assert text.count("Redis unreachable") == outages, text
    assert text.count("Redis back after") == outages, text
    assert "Cannot receive from redis" not in text and "Cannot publish" not in text
    return text


async def hold_port(port: int, timeout: float = 5.0) -> socket.socket:
    """Listen on a port as soon as its redis-server is dead (before the supervisor restarts
    it), so that the restarts fail while it is held."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.002)


@pytest.mark.timeout(180)
async def test_the_private_redis_killed_is_restarted_and_no_ticket_is_lost(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with scene("", data) as s:
        redis_dir = data / "redis"
        url = (redis_dir / "url").read_text().strip()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        pid = private_redis_pid(redis_dir)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        held = await hold_port(port)
        try:
            await check_degraded(s)
            await asyncio.sleep(OUTAGE_S)
        finally:
            held.close()
        # The supervisor's next try (after its back-off) succeeds, from the AOF.
        await wait_ok(s.server.url, 30)
        new_pid = private_redis_pid(redis_dir)
        assert new_pid is not None and new_pid != pid
        await check_nothing_lost(s, url)
        text = check_log(s.server, outages=1)
        assert text.count("exited with -9; restarting it") == 1
        assert text.count("restarting the private redis-server failed") == 1
        assert text.count("private redis-server restarted") == 1


async def stopped(pid: int, seconds: float, during: Callable[[], Awaitable[None]]) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        await during()
        await asyncio.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.timeout(240)
async def test_an_external_redis_stopped_or_killed_is_waited_for_and_no_ticket_is_lost(
        tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    external = EmbeddedRedis(redis_dir)  # started and restarted by the test, not the service
    await external.start()
    again: EmbeddedRedis | None = None
    try:
        async with scene(external.url, tmp_path / "data") as s:
            pid = external.pid
            assert pid is not None
            # Stopped: every Redis call would hang; the service answers at once instead.
            await stopped(pid, 2.0, lambda: check_degraded(s))
            await wait_ok(s.server.url, 15)
            assert await s.kiosk.next("service:state", state="ok")
            assert await s.desk.next("service:state", state="ok")

            # Killed: nothing restarts it (the port stays closed) until the test does.
            os.kill(pid, signal.SIGKILL)
            await check_degraded(s)
            await asyncio.sleep(OUTAGE_S)
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", external.port)) != 0
            async with aiohttp.ClientSession() as session:
                assert (await health(session, s.server.url))[0] == 503
            again = EmbeddedRedis(redis_dir)
            again.port = external.port
            await again.start()
            await wait_ok(s.server.url, 15)
            await check_nothing_lost(s, external.url)
            text = check_log(s.server, outages=2)
            assert "private redis-server" not in text
    finally:
        if again is not None:
            await again.stop()
        await external.stop()


async def test_the_supervisor_restarts_redis_on_its_port_from_its_aof_each_time(
        tmp_path: Path) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis")
    await redis_server.start()
    supervisor = asyncio.create_task(redis_server.supervise())
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    try:
        await client.set("kept", "1")
        for n in range(2):
            pid = redis_server.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)

            async def back(pid: int = pid) -> bool:
                with contextlib.suppress(aioredis.ConnectionError):
                    return redis_server.pid != pid and await client.get("kept") == "1"
                return False
            await wait_until(back, 10, 0.05, f"restart {n + 1}")
            await client.incr("restarts")
        assert await client.get("restarts") == "2"
    finally:
        await client.aclose()
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        await redis_server.stop()
    # Stopped for good: nothing restarts it after stop().
    await asyncio.sleep(0.3)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", redis_server.port)) != 0


@pytest.mark.timeout(120)
async def test_the_private_redis_ends_with_a_killed_server_and_the_next_start_has_its_data(
        tmp_path: Path) -> None:
    """`kill -9` of the service leaves no redis-server behind (it would live on beside the next
    start's, on the same AOF directory): the kernel tells it to stop (setpriv --pdeathsig), it
    flushes its AOF, and the next start reads back what was written."""
    data = tmp_path / "data"
    redis_dir = data / "redis"
    server = ServerProcess("", data)
    await server.start()
    pid = private_redis_pid(redis_dir)
    assert pid is not None
    url = (redis_dir / "url").read_text().strip()
    client = aioredis.from_url(url)
    try:
        await client.set("probe", "written before the kill")
    finally:
        await client.aclose()
    await server.kill9()

    async def gone() -> bool:
        return private_redis_pid(redis_dir) is None
    await wait_until(gone, 10, what="the private redis-server to exit")

    again = ServerProcess("", data)
    await again.start()
    try:
        client = aioredis.from_url((redis_dir / "url").read_text().strip(),
                                   decode_responses=True)
        try:
            assert await client.get("probe") == "written before the kill"
        finally:
            await client.aclose()
    finally:
        await again.stop()
    assert private_redis_pid(redis_dir) is None


@pytest.mark.timeout(120)
async def test_a_participant_whose_socket_drops_while_redis_is_away_joins_again_meanwhile(
        tmp_path: Path, loopback_candidates: None) -> None:
    """A network blip during the outage: the room's process remembers the grant of each token
    that joined it, so the participant joins again at once (new socket, new peer connection) and
    the call goes on; a token it never saw still needs Redis."""
    external = EmbeddedRedis(tmp_path / "redis")
    await external.start()
    server = ServerProcess(external.url, tmp_path / "data")
    clients: list[RoomClient] = []
    sockets: list[SignalingClient] = []
    try:
        await server.start()
        applicant_room, staff_room, sockets = await open_room(server.url)
        for name, room in (("applicant", applicant_room), ("staff", staff_room)):
            clients.append(await RoomClient.connect(server.url, room["room_id"], room["token"],
                                                    name=name))
        for client in clients:
            await client.wait_for_video(1, timeout=20)
        applicant, staff = clients
        pid = external.pid
        assert pid is not None

        async def during() -> None:
            async with aiohttp.ClientSession() as session:
                async def refused() -> bool:  # the process has seen the outage (check_degraded)
                    async with session.get(f"{server.url}/api/departments") as response:
                        return response.status == 503
                await wait_until(refused, 15, 0.05, "the API refusing")
            before = applicant.participant_id
            assert before is not None
            await applicant.reconnect(server.url)
            assert applicant.participant_id == before
            await applicant.wait_for_video(10, timeout=15)
            seen = staff.stats()[before]["video_frames"]

            async def staff_sees_the_new_connection() -> bool:
                return bool(staff.stats()[before]["video_frames"] > seen + 10)
            await wait_until(staff_sees_the_new_connection, 10, 0.1, "frames at the staff")
            stranger = await SignalingClient.connect(server.url, "/room")
            answer = await stranger.call("room:join", {"room_id": staff_room["room_id"],
                                                       "token": "never-issued"})
            await stranger.close()
            assert answer["ok"] is False and answer["error"]["code"] == "unavailable", answer

        await stopped(pid, 0.5, during)
        await wait_ok(server.url, 15)
        await applicant.reconnect(server.url)  # with Redis back, as before
        await applicant.wait_for_video(10, timeout=15)
        await staff.hangup()
        check_log(server, outages=1)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.close()
        await server.stop()
        await external.stop()
