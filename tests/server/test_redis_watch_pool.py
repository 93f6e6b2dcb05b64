"""A burst that holds every pooled Redis connection (thousands of sockets leaving at once) is not
Redis going away: the watch pings on a connection of its own, so the service stays up and
/healthz answers 200 while each pooled command waits its turn."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from server.config import Config
from server.keys import REDIS, REDIS_WATCH
from signaling.redis_watch import PING_TIMEOUT, UP_INTERVAL
from tests.support.server import start_server

POOL_SIZE = 64  # server/app.py: the app's blocking pool


async def test_a_full_connection_pool_is_not_an_outage(config: Config) -> None:
    live = await start_server(config)
    try:
        redis, watch = live.app[REDIS], live.app[REDIS_WATCH]
        hold_s = PING_TIMEOUT + 2 * UP_INTERVAL + 1
        # Every pooled connection blocks in BLPOP on a list nobody pushes to.
        holders = [asyncio.ensure_future(redis.blpop([f"yz:test:hold:{n}"], timeout=hold_s))
                   for n in range(POOL_SIZE)]
        await asyncio.sleep(0.2)
        deadline = time.monotonic() + hold_s - 0.5
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert watch.available, "the watch took a full pool for Redis gone"
                async with http.get(live.url + "/healthz") as response:
                    assert response.status == 200, await response.text()
                await asyncio.sleep(0.25)
        # A command queued behind them is served once they let go.
        assert await asyncio.wait_for(redis.ping(), timeout=hold_s + 5)
        await asyncio.gather(*holders)
        assert watch.outages == 0
    finally:
        await live.runner.cleanup()
