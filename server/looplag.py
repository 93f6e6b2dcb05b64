"""An optional event-loop lag probe, for benchmarks: off unless ``YUNZHEN_LOOP_LAG_PROBE`` names a
file.

Every 10 ms a task asks to be woken; how late it wakes is the time a ready callback (a packet to
forward, a signaling event) waits for the loop. Each sample is appended to the file as
``<time.monotonic()> <lag in ms>`` (written once a second, so the probe adds one small write a
second). CLOCK_MONOTONIC is the same for every process on the machine, so a benchmark reads the
samples of exactly its own measuring window. Nothing is exposed over the network.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from aiohttp import web

logger = logging.getLogger(__name__)

ENV = "YUNZHEN_LOOP_LAG_PROBE"
INTERVAL = 0.010
FLUSH_EVERY = 1.0


class LoopLagProbe:
    def __init__(self, path: Path, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        pending: list[str] = []
        last_flush = time.monotonic()
        with self.path.open("a", encoding="ascii") as out:
            try:
                while True:
                    expected = loop.time() + self.interval
                    await asyncio.sleep(self.interval)
                    lag = max(0.0, loop.time() - expected)
                    now = time.monotonic()
                    pending.append(f"{now:.4f} {lag * 1000:.3f}\n")
                    if now - last_flush >= FLUSH_EVERY:
                        out.write("".join(pending))
                        out.flush()
                        pending.clear()
                        last_flush = now
            finally:
                out.write("".join(pending))

    async def run_for(self, app: web.Application) -> None:
        """The probe as an app background task (server/background.py)."""
        logger.info("event-loop lag probe on, samples every %.0f ms to %s",
                    self.interval * 1000, self.path)
        await self.run()


def from_env() -> LoopLagProbe | None:
    path = os.environ.get(ENV, "").strip()
    return LoopLagProbe(Path(path)) if path else None


def read_samples(path: Path, start: float, end: float) -> list[float]:
    """The lag samples (ms) a probe wrote between two ``time.monotonic()`` times."""
    samples = []
    for line in path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) == 2 and start <= float(parts[0]) <= end:
            samples.append(float(parts[1]))
    return samples
