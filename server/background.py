"""A task that runs as long as the app does, as an aiohttp cleanup context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web

from signaling.tasks import stop

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def background(name: str,
               run: Callable[[web.Application], Coroutine[Any, Any, None]]) -> CleanupContext:
    """``app.cleanup_ctx.append(background(name, run))``: ``run(app)`` starts with the app and
    is cancelled when it stops."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run(app), name=name)
        try:
            yield
        finally:
            await stop(task)

    return ctx
