"""Socket.IO's messages between processes over Redis pub/sub (python-socketio's pub/sub manager,
with this Redis backend): an emit reaches this process's own sockets first and is then published
for the others. While Redis is away a publish is dropped at once and the listener subscribes again
every half second, quietly: the Redis watch (signaling/redis_watch.py) says it once in the log,
and clients re-read their state after an outage (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from socketio.async_pubsub_manager import AsyncPubSubManager

from signaling.redis_watch import UNREACHABLE

logger = logging.getLogger(__name__)

RESUBSCRIBE_S = 0.5
# A publish that takes longer is given up (a stopped Redis would otherwise hold the emit).
PUBLISH_TIMEOUT_S = 2.0


class RedisPubSub(AsyncPubSubManager):
    name = "yunzhen-redis"

    def __init__(self, redis: aioredis.Redis, channel: str) -> None:
        """``redis``: a client of its own (closed by `close`), its connect timeout at most
        PUBLISH_TIMEOUT_S; with Sentinel, one that follows the master (server/redis_connect.py)."""
        super().__init__(channel=channel)
        self._redis: Any = redis
        self.dropped = 0  # messages for other processes lost to an outage

    async def _publish(self, data: Any) -> None:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self._redis.publish(self.channel, self.json.dumps(data))
        except UNREACHABLE as exc:
            self.dropped += 1
            logger.debug("Socket.IO message for other processes dropped: %s", exc)

    async def _listen(self) -> AsyncIterator[Any]:  # type: ignore[override]
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        yield message["data"]
            except UNREACHABLE as exc:
                logger.debug("Socket.IO pub/sub listener lost Redis: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_S)

    async def close(self) -> None:
        await self._redis.aclose()
