"""Redis Sentinel: the service (two `python -m server serve --demo` processes, the kiosk on one
and the desk on the other) on a real master + replica + 3 sentinels (tests/support/sentinel.py).
A ticket acknowledged to its kiosk is on the replica (WAIT) before the answer; with the replica
stopped the ticket is still answered, after the WAIT timeout, and supervisors are alerted; the
master is `kill -9`ed, the replica promoted, and the service carries on by itself: the ticket is
still there, the kiosk resumes it, and a staff member is rung for it and accepts it (the kiosk
hears it through the other process, over the new master's pub/sub); the command line finds the
new master too. Plus the configuration's refusals, and the WAIT step itself on a Redis without
replicas."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from recordings.alerts import Alerts
from server.config import ConfigError, load_config
from signaling import keys
from signaling.client import SignalingClient, login_cookie
from signaling.durable import ALERT_KIND, Durable
from signaling.errors import SignalError
from tests.support.harness import ROOT, ServerProcess, wait_until
from tests.support.sentinel import SentinelSet, sentinel_set

WAIT_TIMEOUT_MS = 300


async def _health(session: aiohttp.ClientSession, url: str) -> int:
    with contextlib.suppress(aiohttp.ClientError):
        async with session.get(f"{url}/healthz") as response:
            return response.status
    return 0


async def _alerts(deployment: SentinelSet) -> list[dict[str, str]]:
    client = deployment.client(await deployment.master_port())
    try:
        return [a for a in await Alerts(client).entries() if a["kind"] == ALERT_KIND]
    finally:
        await client.aclose()


async def _replica_has(deployment: SentinelSet, ticket_id: str) -> bool:
    client = deployment.client(await deployment.replica_port())
    try:
        return bool(await client.exists(keys.TICKET(ticket_id)))
    finally:
        await client.aclose()


async def _replica_stopped_a_while(deployment: SentinelSet, kiosk: SignalingClient) -> str:
    """With the replica stopped (SIGSTOP) a new ticket is still acknowledged, after the WAIT
    timeout, and the supervisors get one alert; once it is back, acknowledgements are at once
    again. Returns that ticket's id."""
    replica = deployment.nodes[await deployment.replica_port()]
    replica.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        answer = await kiosk.request("ticket:create", {"department": "tax", "consent": True})
        waited = time.monotonic() - started
        assert waited >= WAIT_TIMEOUT_MS / 1000 * 0.9, waited
        second = await kiosk.request("ticket:create", {"department": "market",
                                                       "consent": True})
        alerts = await _alerts(deployment)
        assert len(alerts) == 1, alerts
        assert "0 of 1 Redis replica(s)" in alerts[0]["detail"]
    finally:
        replica.signal(signal.SIGCONT)
    # Caught up: both tickets reach the replica; the next is answered at once.
    for ticket in (answer, second):
        await wait_until(lambda t=ticket: _replica_has(deployment, t["ticket"]["ticket_id"]),
                         10, 0.05, "the replica catching up")
    started = time.monotonic()
    third = await kiosk.request("ticket:create", {"department": "fund", "consent": True})
    assert time.monotonic() - started < WAIT_TIMEOUT_MS / 1000
    assert await _replica_has(deployment, third["ticket"]["ticket_id"])
    return str(answer["ticket"]["ticket_id"])


async def _accounts_list(env: dict[str, str]) -> str:
    """`python -m server accounts list` on the same Redis: the command line finds the master
    through the sentinels too."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "accounts", "list", cwd=ROOT,
        env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out
    return out.decode()


@pytest.mark.timeout(180)
async def test_a_failover_keeps_the_acknowledged_ticket_and_the_service_goes_on(
        tmp_path: Path) -> None:
    async with sentinel_set(tmp_path / "redis", WAIT_TIMEOUT_MS) as deployment:
        # Two processes on the one Redis (one data directory: the same keys and recordings):
        # the kiosk on one, the desk on the other, so the pushes between them go through
        # Redis pub/sub, which must find the new master too.
        env = {"YUNZHEN_TICKET_GRACE": "5", **deployment.env}
        server = ServerProcess("", tmp_path / "data", **env)
        desk_server = ServerProcess("", tmp_path / "data", **env)
        sockets: list[SignalingClient] = []
        try:
            await server.start()
            await desk_server.start()
            cookie = await login_cookie(desk_server.url, "tax01", "demo12345")
            desk = await SignalingClient.connect(desk_server.url, "/staff", cookie)
            sockets.append(desk)
            await desk.request("presence:set", {"state": "away", "reason": "开会"})
            kiosk = await SignalingClient.connect(server.url, "/kiosk")
            sockets.append(kiosk)
            ticket = (await kiosk.request("ticket:create",
                                          {"department": "tax", "consent": True}))["ticket"]
            # Acknowledged means replicated: the replica has it when the kiosk is answered.
            assert await _replica_has(deployment, ticket["ticket_id"])
            assert await _alerts(deployment) == []

            stopped_ticket = await _replica_stopped_a_while(deployment, kiosk)

            old = await deployment.kill_master()
            killed = time.monotonic()
            # The Redis watch sees the switch as a short outage and recovers by itself.
            assert await kiosk.next("service:state", state="degraded", timeout=15)
            await deployment.wait_promoted(old)
            assert await kiosk.next("service:state", state="ok", timeout=20)
            assert await desk.next("service:state", state="ok", timeout=20)
            async with aiohttp.ClientSession() as session:
                assert await _health(session, server.url) == 200
                assert await _health(session, desk_server.url) == 200
            assert time.monotonic() - killed < 30

            # Both acknowledged tickets survived; the kiosk resumes the first.
            resumed = await kiosk.request("ticket:resume", {"ticket_id": ticket["ticket_id"],
                                                            "token": ticket["token"]})
            assert resumed["ticket"]["status"] == "waiting"
            client = deployment.client(await deployment.master_port())
            try:
                assert await client.hget(keys.TICKET(stopped_ticket), "status") == "waiting"
                # Both processes' heartbeats are on the new master.
                assert await client.zcard(keys.NODES) == 2
            finally:
                await client.aclose()
            # Past the ticket's grace: not abandoned (its socket was counted again).
            await asyncio.sleep(6)
            # A staff member is rung for the oldest ticket, the one from before the failover.
            await desk.request("presence:set", {"state": "available"})
            ring = await desk.next("call:incoming", timeout=15)
            assert ring["ticket_id"] == ticket["ticket_id"]
            await desk.request("call:accept", {"ticket_id": ticket["ticket_id"]})
            connected = await kiosk.next("ticket:update", status="connected", timeout=15,
                                         ticket_id=ticket["ticket_id"])
            assert connected["room"]["room_id"]
            # New tickets are taken; no replica is left (the old master is dead), so each
            # waits the WAIT timeout and the supervisors are alerted again.
            started = time.monotonic()
            later = await kiosk.request("ticket:create", {"department": "estate",
                                                          "consent": True})
            assert later["ticket"]["status"] == "waiting"
            assert time.monotonic() - started >= WAIT_TIMEOUT_MS / 1000 * 0.9
            assert len(await _alerts(deployment)) == 2
            assert "tax01" in await _accounts_list(
                {"YUNZHEN_DATA_DIR": str(tmp_path / "data"), **deployment.env})

            for process in (server, desk_server):
                text = process.log_path.read_text(encoding="utf-8", errors="replace")
                assert "Traceback" not in text, process.tail(80)
                assert text.count("Redis back after") >= 1, process.tail(80)
                assert "redis+sentinel://127.0.0.1:" in text
        finally:
            for sock in sockets:
                with contextlib.suppress(Exception):
                    await sock.close()
            await server.stop()
            await desk_server.stop()


# The WAIT step on a Redis without replicas --------------------------------------------------

async def test_replicas_that_do_not_answer_delay_the_answer_and_alert_once(
        redis_client: aioredis.Redis) -> None:
    alerts = Alerts(redis_client)
    durable = Durable(redis_client, alerts, replicas=1, timeout_ms=50)
    await redis_client.hset(keys.TICKET("t1"), "status", "waiting")
    started = time.monotonic()
    await durable.replicated(keys.TICKET("t1"))
    assert time.monotonic() - started >= 0.045
    await durable.replicated(keys.TICKET("t1"))
    assert durable.shortfalls == 2 and durable.short
    assert [a["kind"] for a in await alerts.entries()] == [ALERT_KIND]


async def test_a_write_gone_from_the_master_is_not_acknowledged(
        redis_client: aioredis.Redis) -> None:
    durable = Durable(redis_client, Alerts(redis_client), replicas=1, timeout_ms=20)
    with pytest.raises(SignalError) as refused:
        await durable.replicated(keys.TICKET("lost"))
    assert refused.value.name == "unavailable"
    await redis_client.hset(keys.CALLBACKS("tax"), "c1", "{}")
    with pytest.raises(SignalError):
        await durable.replicated(keys.CALLBACKS("tax"), "c2")
    await durable.replicated(keys.CALLBACKS("tax"), "c1")


async def test_without_replicas_to_wait_for_nothing_is_sent(
        redis_client: aioredis.Redis) -> None:
    durable = Durable(redis_client, Alerts(redis_client), replicas=0, timeout_ms=20)
    await durable.replicated(keys.TICKET("never-written"))
    assert await redis_client.get(keys.ACKNOWLEDGED) is None


# Configuration ---------------------------------------------------------------------------------

def test_sentinels_come_from_the_environment_with_a_master_name_and_wait_by_default() -> None:
    config = load_config(env={"YUNZHEN_REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380,s3:1",
                              "YUNZHEN_REDIS_MASTER": "hall-7",
                              "YUNZHEN_REDIS_SENTINEL_PASSWORD": "s",
                              "YUNZHEN_REDIS_PASSWORD": "r"})
    assert config.sentinels == (("10.0.0.1", 26379), ("::1", 26380), ("s3", 1))
    assert config.redis_master == "hall-7" and config.external_redis
    assert config.wait_replicas == 1
    assert load_config(env={}).wait_replicas == 0
    assert load_config(env={"YUNZHEN_REDIS_URL": "redis://r:6379/0",
                            "YUNZHEN_REDIS_WAIT_REPLICAS": "2"}).wait_replicas == 2
    assert load_config(env={"YUNZHEN_REDIS_SENTINELS": "a:1",
                            "YUNZHEN_REDIS_WAIT_REPLICAS": "0"}).wait_replicas == 0


@pytest.mark.parametrize(("env", "message"), [
    ({"YUNZHEN_REDIS_SENTINELS": "a:1", "YUNZHEN_REDIS_URL": "redis://r:6379/0"},
     "redis_url and redis_sentinels"),
    ({"YUNZHEN_REDIS_SENTINELS": "localhost"}, "redis_sentinels: 'localhost'"),
    ({"YUNZHEN_REDIS_SENTINELS": "a:70000"}, "redis_sentinels: 'a:70000'"),
    ({"YUNZHEN_REDIS_SENTINELS": "::1:26379"}, "redis_sentinels"),
    ({"YUNZHEN_REDIS_SENTINELS": "a:1,a:1"}, "named twice"),
    ({"YUNZHEN_REDIS_SENTINELS": "a:1", "YUNZHEN_REDIS_MASTER": "my master"}, "redis_master"),
    ({"YUNZHEN_REDIS_SENTINELS": "a:1", "YUNZHEN_REDIS_MASTER": ""}, "redis_master"),
    ({"YUNZHEN_REDIS_SENTINEL_PASSWORD": "s"}, "redis_sentinel_password is only used"),
    ({"YUNZHEN_REDIS_URL": "redis://r:6379/0", "YUNZHEN_REDIS_PASSWORD": "p"},
     "redis_password is only used"),
    ({"YUNZHEN_REDIS_WAIT_REPLICAS": "1"}, "private redis-server has none"),
    ({"YUNZHEN_REDIS_SENTINELS": "a:1", "YUNZHEN_REDIS_WAIT_REPLICAS": "-2"},
     "redis_wait_replicas"),
    ({"YUNZHEN_REDIS_SENTINELS": "a:1", "YUNZHEN_REDIS_WAIT_TIMEOUT_MS": "0"},
     "redis_wait_timeout_ms"),
    ({"YUNZHEN_REDIS_SENTINELS": "a:1", "YUNZHEN_REDIS_WAIT_TIMEOUT_MS": "60000"},
     "redis_wait_timeout_ms"),
])
def test_a_contradictory_or_malformed_redis_setting_stops_the_start(
        env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(env=env)


def test_the_service_started_with_bad_sentinels_says_why(tmp_path: Path) -> None:
    from server.__main__ import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YUNZHEN_DATA_DIR", str(tmp_path))
        patch.setenv("YUNZHEN_REDIS_SENTINELS", "127.0.0.1:1")
        patch.setenv("YUNZHEN_REDIS_URL", "redis://127.0.0.1:6379/0")
        assert main(["serve", "--demo"]) == 2
