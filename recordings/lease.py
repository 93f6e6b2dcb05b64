"""Whether this process may still write its rooms' recordings: a lease, renewed by every heartbeat
that Redis took while the process was still registered (signaling/clock.py).

A process stopped for longer than the heartbeat's TTL (a paused VM, a stalled disk) is taken for
dead: its rooms are re-created on another process, which continues each recording in a new part
in the same folder (recordings/parts.py). When the stopped process wakes up it must not write
there any more; but the first things it runs are what piled up meanwhile (media in its sockets,
timers), before its heartbeat can ask Redis whether it was buried. The lease runs out a second
before the heartbeat does (``term``, counted from before the heartbeat was sent): past it, track
packets are held in memory, timeline checkpoints are left out, and a room's close waits, until
the next heartbeat renews the lease (the process was not buried: the held packets are written) or
the rooms that moved are let go (their held packets are dropped, their files left as they are).

While Redis answers nobody, nobody can bury anybody (and after an outage the sweep waits a TTL for
every process to renew its heartbeat), nor while it refuses writes (maxmemory: the sweep is a
write too), so the clock renews the lease then too. A process that cannot reach Redis while
another process can (a partition: signaling/nodes.py asks them) is not renewed: it may be buried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Lease:
    def __init__(self, term: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.term = term
        self._clock = clock
        self._until = clock() + term
        self._renewed: asyncio.Event | None = None

    def held(self) -> bool:
        return self._clock() < self._until

    def renew(self, since: float | None = None) -> None:
        """Held until ``since`` (this clock's time before the heartbeat was sent; now if None)
        + the term."""
        if since is None:
            since = self._clock()
        lapsed = self._clock() - self._until
        if lapsed > 0 and since + self.term > self._until:
            logger.warning("the recordings' lease had run out for %.1f s (no heartbeat accepted "
                           "meanwhile); what the recordings held is written now", lapsed)
        self._until = max(self._until, since + self.term)
        if self._renewed is not None and self.held():
            self._renewed.set()
            self._renewed = None

    def now(self) -> float:
        return self._clock()

    async def wait(self) -> None:
        """Until the lease is held (at once while it is)."""
        while not self.held():
            if self._renewed is None:
                self._renewed = asyncio.Event()
            await self._renewed.wait()


class Always(Lease):
    """Held for ever: a process without heartbeats (tests, tools) that nobody can bury."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def held(self) -> bool:
        return True


ALWAYS = Always()
