"""Stopping an owned task for sure (signaling/tasks.py): one that loses its first cancellation,
as a redis-py command opening a connection can, is cancelled again until it ends."""

from __future__ import annotations

import asyncio

from signaling.tasks import stop


async def test_a_task_that_loses_a_cancellation_is_stopped_all_the_same() -> None:
    lost = 0

    async def loop() -> None:
        nonlocal lost
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost += 1  # swallowed, as redis-py may
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
    task = asyncio.create_task(loop())
    await asyncio.sleep(0.02)
    await asyncio.wait_for(stop(task), 5)
    assert task.cancelled() and lost == 1


async def test_stopping_a_finished_task_returns_at_once() -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    await asyncio.wait_for(stop(task), 1)
