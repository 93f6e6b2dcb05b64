"""Listening to a Redis pub/sub channel that every process hears (ended login sessions, revoked
kiosks): each message is handed to a callback, and the subscription comes back after Redis is
lost (quietly: the service's Redis watch says the outage once), until the listener is
cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from signaling.redis_watch import UNREACHABLE

logger = logging.getLogger(__name__)

RETRY_S = 1.0
# How often the listener looks up from an idle channel: redis-py can lose a cancellation that
# arrives while it connects (Python 3.11's asyncio.wait_for), and would then wait on the socket
# for ever; between reads the listener sees that it was cancelled and stops.
POLL_S = 1.0


def _cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def listen(redis: Any, channel: str, on_message: Callable[[str], Awaitable[None]]) -> None:
    """Run `on_message(data)` for every message published on `channel` (by any process, this one
    included) until cancelled. A callback's failure is logged and the listening goes on."""
    while True:
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            while not _cancelled():
                message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                   timeout=POLL_S)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    await on_message(message["data"])
                except Exception:
                    logger.exception("handling a message on %s failed", channel)
            raise asyncio.CancelledError
        except UNREACHABLE as exc:
            if _cancelled():
                raise asyncio.CancelledError from exc
            logger.debug("listening on %s lost Redis (%s); subscribing again", channel, exc)
            await asyncio.sleep(RETRY_S)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
