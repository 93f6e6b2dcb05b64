"""The Redis memory watch: how full the service's Redis is (INFO memory), checked while the
server runs, raising a ``redis_memory`` alert for supervisors above a share of its maxmemory. The
private Redis runs with a maxmemory and ``noeviction`` (server/redis_server.py): when it is full,
writes are refused (the service answers ``unavailable``) and nothing is evicted, so the alert
must come before."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError, RedisError

from recordings.alerts import Alerts
from signaling.redis_watch import UNAVAILABLE

logger = logging.getLogger(__name__)

# Memory is looked at every 30 s: it grows with tickets and sessions, not in bursts.
MEMORY_CHECK_S = 30.0
# Once raised, the alert may come again after use fell this many points below the threshold
# (not at every wobble around it).
HYSTERESIS_PERCENT = 10
SUBJECT = "redis"


async def memory_use(redis: aioredis.Redis) -> tuple[int, int]:
    """Bytes used, and the maxmemory (0: none)."""
    info: dict[str, Any] = await redis.info("memory")
    return int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))


async def check_memory(redis: aioredis.Redis, alerts: Alerts, percent: int) -> float | None:
    """One look: raise the alert when use is at or above ``percent`` of maxmemory, clear it when
    well below. Returns the share used in percent (None: no maxmemory, nothing to watch)."""
    used, maximum = await memory_use(redis)
    if maximum <= 0:
        return None
    share = 100 * used / maximum
    if share >= percent:
        detail = (f"Redis uses {used / 2**20:.1f} MB of its {maximum / 2**20:.0f} MB "
                  f"({share:.0f} %, alert at {percent} %)")
        if await alerts.raise_once("redis_memory", SUBJECT, detail=detail):
            logger.warning("redis memory: %s", detail)
    elif share < percent - HYSTERESIS_PERCENT:
        await alerts.clear("redis_memory", SUBJECT)
    return share


async def watch_memory(redis: aioredis.Redis, alerts: Alerts, percent: int,
                       interval: float = MEMORY_CHECK_S) -> None:
    """Check at start, then every ``interval``, for as long as the server runs."""
    full_logged = False
    while True:
        try:
            await check_memory(redis, alerts, percent)
            full_logged = False
        except OutOfMemoryError:
            # Full already: even the alert cannot be written. Said once, not every interval.
            if not full_logged:
                logger.error("redis memory: Redis is full (maxmemory), writes are refused")
                full_logged = True
        except UNAVAILABLE:
            pass  # Redis is away: the Redis watch (signaling/redis_watch.py) says it once
        except (RedisError, OSError) as exc:
            logger.warning("redis memory: check failed (%s); trying again", exc)
        await asyncio.sleep(interval)
