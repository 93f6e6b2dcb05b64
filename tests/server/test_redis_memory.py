"""Redis memory: the private redis-server runs with the configured maxmemory and `noeviction`;
supervisors get a `redis_memory` alert above redis_memory_alert_percent of it; and once Redis is
full, what would write answers the structured 503 `unavailable` (sockets and HTTP), never a 500.
A Redis of its own per test (a tiny maxmemory, filled on purpose): the session's is shared."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError

from recordings.alerts import Alerts
from server.config import Config
from server.keys import REDIS
from server.redis_memory import check_memory, memory_use
from server.redis_server import EmbeddedRedis
from signaling.client import SignalingClient
from signaling.errors import CATALOGUE
from tests.support.http import client_session, logged_in, login
from tests.support.server import start_server

FILLER = "filler:{}"
FULL_MARGIN = 512 * 1024
SMALL_MB = 16


@pytest.fixture
async def small_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "small-redis", maxmemory_mb=SMALL_MB)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def fill_to(redis: aioredis.Redis, share: float | None) -> int:
    """Write filler values until Redis uses `share` of its maxmemory (None: until it refuses
    writes, and then any write); returns how many were written."""
    counter = itertools.count()
    refusals = 0
    written = 0
    while refusals < 3:
        used, maximum = await memory_use(redis)
        if share is not None and used >= share * maximum:
            break
        try:
            await redis.set(FILLER.format(next(counter)), "x" * 32_000)
            written += 1
        except OutOfMemoryError:
            refusals += 1
    if share is None:
        # Refused: use is just above maxmemory, but by less than the buffers Redis frees on its
        # own afterwards (a client's query buffer shrinks in its cron). Lower maxmemory below use
        # so that a small write (a sign-in's session) is refused too, whatever is freed later.
        used, _ = await memory_use(redis)
        await redis.config_set("maxmemory", used - FULL_MARGIN)
    return written


async def test_the_private_redis_runs_with_maxmemory_and_noeviction(
        config: Config, tmp_path: Path) -> None:
    live = await start_server(replace(config, redis_url="", data_dir=tmp_path / "own",
                                      redis_maxmemory_mb=100))
    try:
        redis = live.app[REDIS]
        assert await redis.config_get("maxmemory") == {"maxmemory": str(100 * 2**20)}
        assert await redis.config_get("maxmemory-policy") == {
            "maxmemory-policy": "noeviction"}
    finally:
        await live.runner.cleanup()


async def test_a_nearly_full_redis_alerts_supervisors_and_a_full_one_answers_unavailable(
        config: Config, small_redis: EmbeddedRedis) -> None:
    live = await start_server(replace(config, redis_url=small_redis.url,
                                      redis_memory_alert_percent=80))
    redis = live.app[REDIS]
    alerts = Alerts(redis)
    try:
        async with client_session() as supervisor:
            await logged_in(supervisor, live.url, "supervisor")
            kiosk = await SignalingClient.connect(live.url, "/kiosk")
            share = await check_memory(redis, alerts, 80)
            assert share is not None and share < 80
            assert [a for a in await alerts.entries() if a["kind"] == "redis_memory"] == []

            await fill_to(redis, 0.85)
            share = await check_memory(redis, alerts, 80)
            assert share is not None and share >= 80
            response = await supervisor.get(f"{live.url}/api/alerts")
            found = [a for a in (await response.json())["alerts"]
                     if a["kind"] == "redis_memory"]
            assert len(found) == 1 and "MB" in found[0]["detail"]
            # Once raised, not again while it lasts.
            await check_memory(redis, alerts, 80)
            assert len([a for a in await alerts.entries() if a["kind"] == "redis_memory"]) == 1

            # Full: a write is refused by noeviction and answers `unavailable`, not a 500.
            await fill_to(redis, None)
            answer = await kiosk.call("ticket:create", {"department": "tax", "consent": True})
            error = answer["error"]
            text = CATALOGUE["unavailable.redis_memory"]
            assert (error["code"], error["message"]) == ("unavailable", text.zh)
            async with client_session() as other:
                response = await login(other, live.url, "tax01")
                assert response.status == 503
                body = await response.json()
                assert (body["error"]["code"], body["error"]["message"]) == ("unavailable",
                                                                             text.zh)
            # Room again: the service takes tickets, and the alert may come again later.
            keys = [k async for k in redis.scan_iter(FILLER.format("*"), count=1000)]
            await redis.delete(*keys)
            await redis.config_set("maxmemory", SMALL_MB * 2**20)
            share = await check_memory(redis, alerts, 80)
            assert share is not None and share < 70
            assert (await kiosk.call("ticket:create", {"department": "tax",
                                                       "consent": True}))["ok"] is True
            await fill_to(redis, 0.85)
            await check_memory(redis, alerts, 80)
            assert len([a for a in await alerts.entries() if a["kind"] == "redis_memory"]) == 2
            await kiosk.close()
    finally:
        await live.runner.cleanup()


async def test_a_redis_without_maxmemory_is_not_watched(small_redis: EmbeddedRedis) -> None:
    redis = aioredis.from_url(small_redis.url, decode_responses=True)
    try:
        await redis.config_set("maxmemory", 0)
        assert await check_memory(redis, Alerts(redis), 80) is None
    finally:
        await redis.aclose()
