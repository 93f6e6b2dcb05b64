"""Socket.IO's messages between processes (signaling/pubsub.py) against a real Redis: what one
batch publishes is one Redis message, which the other processes unpack into the messages
python-socketio handles, and which the sender skips."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from signaling.pubsub import BATCH, RedisPubSub

CHANNEL = "yunzhen-test-socketio"


async def _next(listener: AsyncIterator[Any], timeout: float = 2.0) -> Any:
    return await asyncio.wait_for(anext(listener), timeout)


async def test_a_batch_is_one_redis_message_that_the_others_unpack(redis_url: str) -> None:
    sender, other = (RedisPubSub(aioredis.Redis.from_url(redis_url), CHANNEL),
                     RedisPubSub(aioredis.Redis.from_url(redis_url), CHANNEL))
    raw: Any = aioredis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    await raw.subscribe(CHANNEL)
    theirs, own = other._listen(), sender._listen()
    first = asyncio.ensure_future(_next(theirs))
    mine = asyncio.ensure_future(_next(own, timeout=1.0))
    try:
        await asyncio.sleep(0.3)  # both listeners subscribed
        one = {"method": "emit", "event": "a", "host_id": sender.host_id}
        two = {"method": "emit", "event": "b", "host_id": sender.host_id}
        async with sender.batch():
            await sender._publish(one)
            async with sender.batch():  # joins the outer batch
                await sender._publish(two)
            got = await raw.get_message(timeout=0.3)
            assert got is None  # nothing is published before the batch ends
        assert await first == one
        assert await _next(theirs) == two
        message = await raw.get_message(timeout=2.0)
        assert message is not None
        assert sender.json.loads(message["data"])["method"] == BATCH
        assert await raw.get_message(timeout=0.3) is None  # one message for both
        # The sender's own listener skips its batch: the next it hears is a message alone.
        alone = {"method": "emit", "event": "c", "host_id": other.host_id}
        await other._publish(alone)
        assert await mine == alone
    finally:
        for task in (first, mine):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await theirs.aclose()  # type: ignore[attr-defined]
        await own.aclose()  # type: ignore[attr-defined]
        await raw.aclose()
        await sender.close()
        await other.close()


async def test_an_emit_to_a_socket_here_is_not_published_nor_anything_while_redis_is_away(
        redis_url: str) -> None:
    sender = RedisPubSub(aioredis.Redis.from_url(redis_url), CHANNEL)
    raw: Any = aioredis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    await raw.subscribe(CHANNEL)
    await raw.get_message(timeout=0.5)  # the subscription's confirmation (None: ignored)
    try:
        sid = "socket-here"
        sender.basic_enter_room(sid, "/room", None, eio_sid="engine-sid")  # as a connect does
        assert sender.is_connected(sid, "/room")
        here = {"method": "emit", "event": "room:offer", "namespace": "/room", "room": sid,
                "callback": None, "host_id": sender.host_id}
        await sender._publish(here)
        # The same to a socket of another process, and to a Socket.IO room: published.
        elsewhere = {**here, "room": "another-process-sid"}
        await sender._publish(elsewhere)
        everyone = {**here, "room": "room:r1"}
        await sender._publish(everyone)
        for expected in (elsewhere, everyone):
            message = await raw.get_message(timeout=2.0)
            assert message is not None and sender.json.loads(message["data"]) == expected
        assert await raw.get_message(timeout=0.3) is None
        # While the watch says Redis is away: dropped at once, counted, never tried.
        sender.redis_available = lambda: False
        await sender._publish(everyone)
        assert sender.dropped == 1
        assert await raw.get_message(timeout=0.3) is None
    finally:
        await raw.aclose()
        await sender.close()
