"""The serving process's garbage-collector schedule (server/gc_policy.py): what the app built at
startup is frozen while it serves and handed back when it stops; `serve` raises the young
threshold."""

import gc

from server import gc_policy
from server.config import Config
from tests.support.server import start_server


async def test_startup_objects_are_frozen_while_the_app_serves(config: Config) -> None:
    gc.unfreeze()
    live = await start_server(config)
    try:
        frozen = gc.get_freeze_count()
        # The app, its routes, templates and everything imported: tens of thousands of objects.
        assert frozen > 10_000
        # Objects made after startup stay with the collector: a cycle made now is collected.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
        assert gc.get_freeze_count() == frozen
    finally:
        await live.runner.cleanup()
    assert gc.get_freeze_count() == 0


def test_tune_raises_only_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        gc_policy.tune()
        assert gc.get_threshold() == (gc_policy.YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.set_threshold(*before)
