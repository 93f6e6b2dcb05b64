"""Socket.IO's messages between processes over Redis pub/sub (python-socketio's pub/sub manager,
with this Redis backend): an emit reaches this process's own sockets first and is then published
for the others. While Redis is away a publish is dropped at once and the listener subscribes again
every half second, quietly: the Redis watch (signaling/redis_watch.py) says it once in the log,
and clients re-read their state after an outage (docs/protocol.md). An emit to one socket of this
process is not published at all. What one batch (`batch()`:
the fan-out of one operation) publishes goes out as one message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from socketio.async_pubsub_manager import AsyncPubSubManager

from signaling.fastjson import FastJson
from signaling.redis_watch import UNREACHABLE

logger = logging.getLogger(__name__)

RESUBSCRIBE_S = 0.5
# A publish that takes longer is given up (a stopped Redis would otherwise hold the emit).
PUBLISH_TIMEOUT_S = 2.0
# The method of a message that carries a batch of python-socketio's own messages.
BATCH = "yunzhen-batch"


@dataclass
class _Batch:
    messages: list[Any] = field(default_factory=list)
    open: bool = True


# The batch of the running task (a task started inside copies it: once the batch is sent, what
# such a task publishes goes out on its own).
_CURRENT: ContextVar[_Batch | None] = ContextVar("yunzhen_pubsub_batch", default=None)


class RedisPubSub(AsyncPubSubManager):
    name = "yunzhen-redis"

    def __init__(self, redis: aioredis.Redis, channel: str) -> None:
        """``redis``: a client of its own (closed by `close`), its connect timeout at most
        PUBLISH_TIMEOUT_S; with Sentinel, one that follows the master (server/redis_connect.py)."""
        super().__init__(channel=channel, json=FastJson)
        self._redis: Any = redis
        self.dropped = 0  # messages for other processes lost to an outage
        # Whether Redis answers (the watch's, set once it exists): while not, a message for the
        # other processes is dropped at once instead of each waiting PUBLISH_TIMEOUT_S.
        self.redis_available: Callable[[], bool] = lambda: True

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """What is published inside goes to Redis as one message when it ends (this process's
        own sockets get theirs at once, as always). A batch inside a batch joins it."""
        if _CURRENT.get() is not None:
            yield
            return
        batch = _Batch()
        token = _CURRENT.set(batch)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            batch.open = False
            if len(batch.messages) == 1:
                await self._send(batch.messages[0])
            elif batch.messages:
                await self._send({"method": BATCH, "host_id": self.host_id,
                                  "messages": batch.messages})

    def _only_here(self, data: Any) -> bool:
        """An emit to one socket of this process (a room's signaling to its participant): no
        other process has that socket, so nothing is published."""
        room = data.get("room")
        return (data.get("method") == "emit" and data.get("callback") is None
                and isinstance(room, str) and self.is_connected(room, data.get("namespace")))

    async def _publish(self, data: Any) -> None:
        if self._only_here(data):
            return
        batch = _CURRENT.get()
        if batch is not None and batch.open:
            batch.messages.append(data)
        else:
            await self._send(data)

    async def _send(self, data: Any) -> None:
        if not self.redis_available():
            self.dropped += len(data["messages"]) if data.get("method") == BATCH else 1
            return
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self._redis.publish(self.channel, self.json.dumps(data))
        except UNREACHABLE as exc:
            self.dropped += len(data["messages"]) if data.get("method") == BATCH else 1
            logger.debug("Socket.IO message for other processes dropped: %s", exc)

    async def _listen(self) -> AsyncIterator[Any]:  # type: ignore[override]
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        data = self.json.loads(message["data"])
                    except ValueError:
                        continue  # not one of ours (python-socketio drops those too)
                    if isinstance(data, dict) and data.get("method") == BATCH:
                        # This process's own batch: only a callback in it can be for here.
                        own = data.get("host_id") == self.host_id
                        for each in data.get("messages") or ():
                            if not own or each.get("method") == "callback":
                                yield each
                    else:
                        yield data
            except UNREACHABLE as exc:
                logger.debug("Socket.IO pub/sub listener lost Redis: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_S)

    async def close(self) -> None:
        await self._redis.aclose()
