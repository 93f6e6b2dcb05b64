"""Keeps bench/resilience_redis.py working: one kill -9 of the private redis-server, measured
from the kill to /healthz ok, with the waiting ticket still waiting."""

from __future__ import annotations

import pytest

from bench.resilience_redis import measure


@pytest.mark.timeout(120)
async def test_the_redis_restart_is_measured_and_loses_no_ticket() -> None:
    result = await measure(kills=2)
    assert set(result) == {"redis_restart_s", "redis_restart_runs", "tickets_lost"}
    assert len(result["redis_restart_runs"]) == 2
    assert 0 < result["redis_restart_s"] < 10
    assert result["tickets_lost"] == 0
