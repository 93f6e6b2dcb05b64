"""Whether Redis answers, for the whole process: one watch pings it, says in the log once when it
goes and once when it is back, and runs the recovery hooks (the clock re-asserts this process's
heartbeat and sockets) before the service counts as up again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from signaling.errors import SignalError

logger = logging.getLogger(__name__)

# The errors that mean "Redis cannot be reached now" rather than "this command is wrong": refused
# or dropped connections, timeouts, a pool with no free connection, and a restarted Redis still
# loading its AOF (BusyLoadingError is a ConnectionError).
UNAVAILABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
# The same, and what a socket or a timeout of our own raises around a Redis call.
UNREACHABLE: tuple[type[Exception], ...] = (*UNAVAILABLE, OSError, TimeoutError)

# Seconds between pings while Redis answers, and while it does not.
UP_INTERVAL = 1.0
DOWN_INTERVAL = 0.25
# A ping slower than this counts as no answer (a stopped or overloaded Redis).
PING_TIMEOUT = 2.0

# Seconds a client is asked to wait before trying again while Redis is away.
RETRY_AFTER_S = 2

Hook = Callable[[], Awaitable[None]]


def unavailable() -> SignalError:
    """The answer to whatever needs Redis while it is away."""
    return SignalError("unavailable", extra={"retry_after": RETRY_AFTER_S})


class RedisWatch:
    """`available` is False from the moment Redis stops answering until it answers again and
    every `recover` hook has run; whoever sees a Redis command fail calls `lost()`."""

    def __init__(self, redis: aioredis.Redis, *, up_interval: float = UP_INTERVAL,
                 down_interval: float = DOWN_INTERVAL,
                 ping_timeout: float = PING_TIMEOUT) -> None:
        self._redis: Any = redis
        self._up_interval, self._down_interval = up_interval, down_interval
        self._ping_timeout = ping_timeout
        self.available = True
        self.answering = True  # the last ping was answered (while recovering: True, not up)
        self.down_since: float | None = None  # time.monotonic() when it went
        self.outages = 0
        self.last_outage_s: float | None = None
        self._failed = asyncio.Event()
        # Run when Redis went; when it answers again, before the service is up (a Redis error
        # in one of them ends this try: the watch tries again); and once it is up.
        self._lost_hooks: list[Hook] = []
        self._recover_hooks: list[Hook] = []
        self._back_hooks: list[Hook] = []

    def add_hooks(self, *, lost: Hook | None = None, recover: Hook | None = None,
                  back: Hook | None = None) -> None:
        for hooks, hook in ((self._lost_hooks, lost), (self._recover_hooks, recover),
                            (self._back_hooks, back)):
            if hook is not None:
                hooks.append(hook)

    def remove_hooks(self, *, lost: Hook | None = None, recover: Hook | None = None,
                     back: Hook | None = None) -> None:
        for hooks, hook in ((self._lost_hooks, lost), (self._recover_hooks, recover),
                            (self._back_hooks, back)):
            if hook is not None and hook in hooks:
                hooks.remove(hook)

    def lost(self) -> None:
        """A Redis command failed with one of UNAVAILABLE. That is an outage even if Redis
        answers again by the time the watch looks (a restart takes a fraction of a second): what
        failed may have been a socket's leaving, so the recovery hooks must run."""
        self._failed.set()

    async def ping(self) -> bool:
        """Does Redis answer now (within the ping timeout)? A failure is reported (`lost`)."""
        ok = await self._answers()
        if not ok:
            self.lost()
        return ok

    async def _answers(self) -> bool:
        try:
            async with asyncio.timeout(self._ping_timeout):
                self.answering = bool(await self._redis.ping())
        except UNREACHABLE:
            self.answering = False
        return self.answering

    async def run(self) -> None:
        """Watch until cancelled."""
        while True:
            if self.available:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._up_interval):
                        await self._failed.wait()
                if self._failed.is_set() or not await self._answers():
                    await self._went_down()
            else:
                await asyncio.sleep(self._down_interval)
                self._failed.clear()
                if await self._answers() and await self._recovered():
                    await self._came_back()

    async def _went_down(self) -> None:
        self.available = False
        self.down_since = time.monotonic()
        self.outages += 1
        logger.warning("Redis unreachable: the service is degraded (API answers 503, the queue "
                       "waits) until it answers again")
        await self._run(self._lost_hooks, "lost")

    async def _recovered(self) -> bool:
        """Run the recovery hooks; False when Redis went again meanwhile."""
        for hook in self._recover_hooks:
            try:
                await hook()
            except UNAVAILABLE:
                return False
            except Exception:
                # A recovery that cannot finish must not keep the service down for good.
                logger.exception("recovery after the Redis outage: %s failed",
                                 getattr(hook, "__qualname__", hook))
        return True

    async def _came_back(self) -> None:
        seconds = time.monotonic() - (self.down_since or time.monotonic())
        self.available, self.down_since, self.last_outage_s = True, None, seconds
        logger.warning("Redis back after %.1f s", seconds)
        await self._run(self._back_hooks, "back")

    @staticmethod
    async def _run(hooks: list[Hook], when: str) -> None:
        for hook in hooks:
            try:
                await hook()
            except UNAVAILABLE:
                pass  # Redis went again: the watch sees it at its next ping
            except Exception:
                logger.exception("Redis %s hook %s failed", when,
                                 getattr(hook, "__qualname__", hook))
