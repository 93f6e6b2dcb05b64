"""Stopping an owned background task for sure: cancelled, and cancelled again until it is done.
redis-py (8.2, asyncio) can lose a cancellation that arrives while it opens a connection (the
command then completes as if nothing happened), and a loop around such a command would run on
and hold up the shutdown that awaits it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

# Seconds between the cancellations of a task that has not ended yet.
RECANCEL_S = 0.5


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (its CancelledError is not raised here)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
    with contextlib.suppress(asyncio.CancelledError):
        await task
