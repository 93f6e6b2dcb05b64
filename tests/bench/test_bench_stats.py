"""Keeps bench/stats.py working: its synthetic history, folded through the consumer's path,
reads back through the statistics reader with the counts it says it made."""

from __future__ import annotations

import datetime as dt

import redis.asyncio as aioredis

from bench.stats import ZONE, generate
from signaling.stats_store import StatsQuery, StatsReader


async def test_the_synthetic_history_reads_back_as_generated(
        redis_client: aioredis.Redis) -> None:
    first, last = dt.date(2026, 2, 27), dt.date(2026, 3, 2)
    made = await generate(redis_client, first, last, per_day=40)
    assert made["consultations"] == 160
    reader = StatsReader(redis_client, ZONE, now=lambda: 0.0)
    for group in ("day", "week", "month"):
        view = await reader.summary(StatsQuery(first, last, group, None, None))
        totals = view["totals"]
        assert totals["consultations"] == 160, group
        assert 0 < totals["answered"] < 160
        assert totals["answered"] + totals["abandoned"] == 160
        assert totals["cases_opened"] == made["cases"]
        assert sum(r["consultations"] for r in view["rows"]) == 160
