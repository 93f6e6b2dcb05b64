"""The one place Redis clients are made: for a URL (the private redis-server's, or redis_url), or
through Redis Sentinel, whose clients ask the sentinels for the current master at every new
connection, so that after a failover every command and subscription finds the promoted replica."""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from server.config import Config

logger = logging.getLogger(__name__)

# Seconds a question to one sentinel may take: a sentinel that does not answer is passed over
# for the next one, so this bounds how long a dead one delays finding the master.
SENTINEL_TIMEOUT_S = 1.0


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool with the blocking pool's waiting: under a burst a command waits for a free
    connection instead of failing, as with a URL (server/app.py)."""


class RedisConnector:
    """Makes the clients of one process for one Redis: ``url`` (when the configuration names no
    sentinels), or the master that ``config.redis_sentinels`` know as ``config.redis_master``.
    ``aclose`` closes the connections to the sentinels; each client is closed by its owner."""

    def __init__(self, config: Config, url: str = "") -> None:
        self._url = url
        self._master = config.redis_master
        self._password = config.redis_password or None
        self._sentinel: Sentinel | None = None
        self._sentinels = config.sentinels
        if self._sentinels:
            self._sentinel = Sentinel(
                list(self._sentinels),
                sentinel_kwargs={"password": config.redis_sentinel_password or None,
                                 "socket_timeout": SENTINEL_TIMEOUT_S,
                                 "socket_connect_timeout": SENTINEL_TIMEOUT_S})
        elif not url:
            raise ValueError("a Redis URL or sentinels are needed")

    @property
    def sentinel(self) -> bool:
        return self._sentinel is not None

    @property
    def description(self) -> str:
        """Where Redis is, for the log and the start banner (no password in it)."""
        if self._sentinel is None:
            return self._url
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self._sentinels)
        return f"redis+sentinel://{hosts}/{self._master}"

    def client(self, *, blocking: bool = False, max_connections: int = 64,
               pool_timeout: float = 10.0, **options: Any) -> aioredis.Redis:
        """A client with its own pool. ``blocking``: a full pool makes a command wait up to
        ``pool_timeout`` s for a free connection; ``options``: redis-py's connection options
        (decode_responses, socket_timeout, socket_connect_timeout, …)."""
        if self._sentinel is None:
            if blocking:
                pool = aioredis.BlockingConnectionPool.from_url(
                    self._url, max_connections=max_connections, timeout=pool_timeout, **options)
                return aioredis.Redis(connection_pool=pool)
            return aioredis.Redis.from_url(self._url, **options)
        extra: dict[str, Any] = {"password": self._password, **options}
        if blocking:
            extra.update(max_connections=max_connections, timeout=pool_timeout)
        client: aioredis.Redis = self._sentinel.master_for(
            self._master, connection_pool_class=_BlockingSentinelPool if blocking
            else SentinelConnectionPool, **extra)
        return client

    async def aclose(self) -> None:
        if self._sentinel is not None:
            await self._sentinel.aclose()
