"""The Redis a command-line tool (`python -m server accounts|audit|reindex`) works on: the
configured external one (redis_url, or Sentinel's master); the running service's private one; or,
when the service is stopped, its private one started for the command's duration."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis

from server.config import Config
from server.redis_connect import RedisConnector
from server.redis_server import URL_FILE, EmbeddedRedis


def private_redis_pid(redis_dir: Path) -> int | None:
    """A redis-server already serving ``redis_dir`` (the service running): its pid."""
    # redis-server rewrites its command line but works in its --dir: known by its cwd.
    wanted = str(redis_dir.resolve())
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().startswith("redis-server") \
                    and os.readlink(proc / "cwd") == wanted:
                return int(proc.name)
        except OSError:
            continue
    return None


@asynccontextmanager
async def cli_redis(config: Config) -> AsyncIterator[aioredis.Redis]:
    embedded = None
    if config.external_redis:
        url = config.redis_url
    elif private_redis_pid(config.redis_dir) is not None \
            and (config.redis_dir / URL_FILE).exists():
        url = (config.redis_dir / URL_FILE).read_text().strip()
    else:
        embedded = EmbeddedRedis(config.redis_dir, config.redis_server_binary)
        await embedded.start()
        url = embedded.url
    connector = RedisConnector(config, url)
    client = connector.client(decode_responses=True, socket_timeout=30, socket_connect_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()
        await connector.aclose()
        if embedded is not None:
            await embedded.stop()
