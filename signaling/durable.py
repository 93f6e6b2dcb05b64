"""Acknowledged means replicated: before an applicant is told their ticket (or callback request)
is taken, the write must be on `replicas` Redis replicas (WAIT), so that a failover to one of them
(Redis Sentinel) cannot lose it. Redis replicates asynchronously; without this, a master that dies
just after answering takes the ticket with it.

When the replicas do not answer within the timeout, the applicant is answered anyway (the write is
on the master, in its AOF) and supervisors get a ``redis_replication`` alert: refusing would stop
every hall while one replica is down, to guard against the master dying too meanwhile."""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

from recordings.alerts import Alerts
from signaling import keys
from signaling.redis_watch import unavailable

logger = logging.getLogger(__name__)

ALERT_KIND = "redis_replication"
ALERT_SUBJECT = "replicas"


class Durable:
    """``replicated(key)`` after a write the applicant will see acknowledged; a no-op with
    ``replicas`` 0 (a Redis without replicas)."""

    def __init__(self, redis: aioredis.Redis, alerts: Alerts, replicas: int,
                 timeout_ms: int) -> None:
        self._redis: Any = redis
        self._alerts = alerts
        self.replicas, self.timeout_ms = replicas, timeout_ms
        self.short = False  # the last WAIT timed out (the alert is up)
        self.shortfalls = 0  # WAITs that timed out, since the start

    async def replicated(self, key: str, field: str = "") -> None:
        """Wait until the replicas have ``key`` (``field`` of a hash), which the caller has just
        written. Raises `unavailable` when it is not on the master any more (a failover lost it
        between the write and now: the applicant tries again)."""
        if self.replicas <= 0:
            return
        # WAIT counts the writes of its own connection, and a pool may have sent the caller's on
        # another: a write of ours on this one comes after it in the replication stream, so the
        # replicas that have ours have the caller's too. One round trip, one connection.
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(keys.ACKNOWLEDGED)
        pipe.wait(self.replicas, self.timeout_ms)
        if field:
            pipe.hexists(key, field)
        else:
            pipe.exists(key)
        _, acked, present = await pipe.execute()
        if not present:
            logger.warning("%s%s is gone from the Redis master (a failover lost it): the "
                           "applicant is asked to try again", key, f" {field}" if field else "")
            raise unavailable()
        if int(acked) >= self.replicas:
            if self.short:
                self.short = False
                logger.warning("Redis replicas acknowledge writes again")
                await self._alerts.clear(ALERT_KIND, ALERT_SUBJECT)
            return
        self.shortfalls += 1
        if not self.short:
            self.short = True
            detail = (f"{acked} of {self.replicas} Redis replica(s) acknowledged a ticket within "
                      f"{self.timeout_ms} ms: new tickets are on the master only until a replica "
                      "catches up")
            logger.warning("%s (%s)", detail, key)
            await self._alerts.raise_once(ALERT_KIND, ALERT_SUBJECT, detail=detail)
