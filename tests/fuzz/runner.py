"""Driving hypothesis from an async test: the examples (batches of inputs) are drawn in a worker
thread while the server and the fuzz clients run on the test's event loop; each batch is sent and
checked on the loop. A failing batch is recorded by the test and the run goes on (no shrinking:
the server's state has moved on, so a batch cannot be replayed alone).

Examples are drawn in rounds of `ROUND`, each with its own seed (YUNZHEN_FUZZ_SEED, 0 by default,
plus the round), so that a run is the same every time and stops soon after its budget."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Coroutine
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

SEED = int(os.environ.get("YUNZHEN_FUZZ_SEED", "0"))
ROUND = 10


async def run_batches(strategy: st.SearchStrategy[Any],
                      send: Callable[[Any], Coroutine[Any, Any, bool]]) -> None:
    """Draw examples of `strategy` and await `send(example)` for each on this loop, until `send`
    returns False."""
    loop = asyncio.get_running_loop()
    stop = False

    @settings(max_examples=ROUND, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(example=strategy)
    def one(example: Any) -> None:
        nonlocal stop
        if not stop:
            stop = not asyncio.run_coroutine_threadsafe(send(example), loop).result()

    for round_ in itertools.count():
        await asyncio.to_thread(seed(SEED * 100_003 + round_)(one))
        if stop:
            return
