"""The garbage collector's schedule for a serving process (`serve`, each worker): full collections
rare, and never over what startup built.

CPython's cycle collector runs a full (generation 2) collection whenever the objects that
survived into the old generation since the last one reach a quarter of it. A connected socket
holds ~200 tracked objects for as long as it lives (six tasks of aiohttp and engine.io, their
coroutines, timers, parsers), so 2,000 sockets make ~400,000 long-lived objects, and one full
collection of them stops the event loop for 230–320 ms on the 2-core bench machine (cache misses,
not garbage: most collect nothing). With CPython's young threshold (700 allocations), objects that
live a few milliseconds (a ticket's handler, its Redis calls, its pushes) are still alive at a
young collection and get promoted, so at 50 tickets/s a full collection came every ~12 s and ring
latency's p99 was that pause (bench/dispatch.py: p99 150–260 ms, p50 2–3 ms).

Two measures (their effect: bench/results/dispatch.json and docs/operations.md, "Dispatch cost"):
- a young threshold of YOUNG_THRESHOLD allocations: short-lived objects die before the young
  collection looks at them, so far fewer are promoted and full collections become rare; a young
  collection of that many objects takes a few milliseconds;
- everything that exists once the app has started (modules, classes, functions, templates,
  configuration: ~85,000 objects) is moved to the permanent generation (``gc.freeze``), which no
  collection traverses; it is handed back to the collector when the app stops (the tests start
  many apps in one process).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

logger = logging.getLogger(__name__)

YOUNG_THRESHOLD = 20_000


def tune() -> None:
    """Raise the young generation's threshold for this process (its other two are kept)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


async def freeze_startup(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context, last of the app's: what startup made is frozen until the app stops.
    (No collection first: the few cycles startup left behind stay, once; the tests, which start
    hundreds of apps in one large process, would pay a full collection each time.)"""
    gc.freeze()
    logger.info("garbage collector: %d startup objects frozen, young threshold %d",
                gc.get_freeze_count(), gc.get_threshold()[0])
    try:
        yield
    finally:
        gc.unfreeze()
