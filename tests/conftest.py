"""Shared fixtures: a real redis-server per test session, the real app on a loopback port, and
real Chromium with a fake camera and microphone."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
import redis
import redis.asyncio as aioredis

from server.config import Config, MediaConfig
from server.redis_server import EmbeddedRedis
from server.seed import seed_demo
from signaling.accounts import AccountPolicy, Accounts
from signaling.config import NO_LIMITS
from signaling.store import Store
from tests.support.browser import BROWSER_ZONE, CHROMIUM, CHROMIUM_ARGS
from tests.support.server import LiveServer, start_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the whole session (the same class the service uses)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(server.start())
    try:
        yield server.url
    finally:
        loop.run_until_complete(server.stop())
        loop.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis.Redis.from_url(redis_url).flushall()
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> Store:
    store = Store(redis_client)
    await seed_demo(store, Accounts(store.redis, AccountPolicy()))
    return store


@pytest.fixture
def config(redis_url: str, tmp_path: Path) -> Config:
    # The abuse limits are off: tests make many tickets and sockets from 127.0.0.1
    # (tests/signaling/test_limits.py turns on the ones it tests).
    config = Config(host="127.0.0.1", port=8080, redis_url=redis_url, data_dir=tmp_path / "data",
                    demo=True,
                    media=MediaConfig(announce_addresses=("127.0.0.1",), empty_room_timeout=5.0))
    no_limits: dict[str, Any] = dict(NO_LIMITS)
    return replace(config, **no_limits)


@pytest.fixture
async def server(config: Config, redis_client: aioredis.Redis) -> AsyncIterator[LiveServer]:
    """The real service (create_app) on a free loopback port, against the session's Redis."""
    live = await start_server(config)
    try:
        yield live
    finally:
        await live.runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run ./yunzhen.sh test")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                            headless=True,
                                            env={**os.environ, "TZ": BROWSER_ZONE})
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def loopback_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves 127.0.0.1 out of its host candidates: the test's own aiortc peers announce
    exactly it (the only address in the private network namespace), restored after the test."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses",
                        lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else [])
