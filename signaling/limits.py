"""The abuse limits of the anonymous side (signaling/config.py has their settings): counts per
client address and phone number in Redis, shared by every process (a fixed window per rule and
subject, ``yz:limit:*``), the /kiosk sockets of an address (the queue script's
``address_socket``, so a dead process's sockets stop counting), and the event rate of one socket
(a token bucket in memory: a socket lives on one process). Each refusal is a catalogue
``limit.*`` error, with ``retry_after`` seconds where waiting helps."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from signaling import keys
from signaling.config import SignalingConfig
from signaling.errors import SignalError
from signaling.forwarded import TrustedProxies, environ_client_address
from signaling.keys import hash_token
from signaling.queue import Code
from signaling.store import Store

logger = logging.getLogger(__name__)

MINUTE = 60
DAY = 86400
# What a socket refused for its address's socket count is told to wait, in seconds.
SOCKETS_RETRY_AFTER = 30

# One count in its window, atomically: the window starts with the first count (a key left
# without an expiry by anything else gets one too). KEYS[1] the counter, ARGV[1] the window (s).
# Returns {count, seconds left in the window}.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('TTL', KEYS[1])}
"""
_NOT_DIGITS = re.compile(r"[^0-9]")


def is_registered_device(session: Mapping[str, Any] | None) -> bool:
    """Whether a /kiosk socket is a registered hall kiosk: its session's ``device`` (the id of
    the enrolled device, written when it connected with its device token). A hall's kiosks share
    the hall's address, so a registered one is held to none of its address's limits (and to its
    device's one open ticket instead of the per-socket count, signaling/kiosk.py)."""
    return bool(session and session.get("device"))


@dataclass
class TokenBucket:
    """``rate`` events a second on average, up to ``burst`` at once. Pure: the caller gives
    the time."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    stamp: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs a rate above 0 and a burst of at least 1")
        self.tokens = self.burst

    def take(self, now: float) -> float:
        """Take one token: 0 when there was one, else the seconds until there is one."""
        if self.stamp is not None and now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now if self.stamp is None else max(self.stamp, now)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Limits:
    """The shared counts of one service (every process builds its own on the same Redis)."""

    def __init__(self, redis: aioredis.Redis, store: Store, config: SignalingConfig,
                 proxies: TrustedProxies, node: str,
                 now: Callable[[], float] = time.time) -> None:
        self._store, self.config, self._proxies, self._node = store, config, proxies, node
        self._now = now
        self._count_script = redis.register_script(_COUNT)

    def address(self, environ: Mapping[str, Any]) -> str:
        """The client address of a socket (through the trusted proxies)."""
        return environ_client_address(environ, self._proxies)

    async def _count(self, rule: str, subject: str, maximum: int, window: int,
                     name: str) -> None:
        """Count one more for (rule, subject) in its window; past ``maximum`` (0: no limit)
        refuse with the catalogue entry ``name``."""
        if maximum <= 0:
            return
        count, left = await self._count_script(keys=[keys.LIMIT(rule, subject)], args=[window])
        if int(count) > maximum:
            retry = max(1, int(left))
            logger.info("limit %s: %s refused (%d in %d s, %d allowed)", rule,
                        "a phone number" if rule.endswith("_phone") else subject, int(count),
                        window, maximum)
            raise SignalError(name, f"{rule}: {int(count)} in the window, {maximum} allowed",
                              extra={"retry_after": retry}, seconds=retry, max=maximum)

    async def ticket_creation(self, address: str) -> None:
        await self._count("ticket_create", address, self.config.ticket_creations_per_minute,
                          MINUTE, "limit.ticket_creations")

    async def callback_request(self, address: str) -> None:
        await self._count("callback", address, self.config.callbacks_per_minute, MINUTE,
                          "limit.callbacks")

    async def callback_phone(self, phone: str) -> None:
        """Per phone number (its digits, hashed: a key name is no place for one) and day."""
        digits = _NOT_DIGITS.sub("", phone)
        await self._count("callback_phone", hash_token(digits),
                          self.config.callbacks_per_phone_per_day, DAY,
                          "limit.callbacks_per_phone")

    async def booking_request(self, address: str) -> None:
        """Bookings (预约, POST /api/bookings) from one address: callbacks_per_minute, like the
        other personal-data form of an anonymous page."""
        await self._count("booking", address, self.config.callbacks_per_minute, MINUTE,
                          "limit.bookings")

    async def booking_phone(self, phone: str) -> None:
        """Bookings per phone number and day: callbacks_per_phone_per_day."""
        digits = _NOT_DIGITS.sub("", phone)
        await self._count("booking_phone", hash_token(digits),
                          self.config.callbacks_per_phone_per_day, DAY,
                          "limit.bookings_per_phone")

    def too_many_tickets(self) -> SignalError:
        return SignalError("limit.tickets_per_socket",
                           f"{self.config.max_tickets_per_socket} open ticket(s) per socket",
                           max=self.config.max_tickets_per_socket)

    async def socket_opened(self, address: str) -> None:
        """Count a /kiosk socket of ``address``; refuse one past max_sockets_per_address."""
        code, total = await self._store.address_socket(
            address, self._node, 1, self.config.max_sockets_per_address, self._now())
        if code == Code.LIMIT:
            logger.info("kiosk socket from %s refused: %d open", address, total)
            raise SignalError("limit.sockets_per_address",
                              f"{total} sockets open from this address",
                              extra={"retry_after": SOCKETS_RETRY_AFTER},
                              max=self.config.max_sockets_per_address)

    async def socket_closed(self, address: str) -> None:
        await self._store.address_socket(address, self._node, -1, 0, self._now())


def retry_after(seconds: float) -> float:
    """A wait as answers give it: seconds, rounded up to a tenth."""
    return math.ceil(seconds * 10) / 10
