"""The per-process clock: its owned tasks tick the queue script (timeouts, tiers, grace periods),
keep this process's heartbeat (and its rooms' participant counts) fresh, adopt the rooms of dead
processes moved here (signaling/adopt.py), send the queue positions that changed, and delete the
callback requests past callback_keep_days. Kept, cancelled and awaited by `close`. While Redis is
away they wait; when it is back, `recover` puts this process right in it before they go on.

The heartbeat also renews the recordings' lease (recordings/lease.py). A heartbeat that finds this
process buried (it was stopped, or cut off from Redis alone, for longer than the TTL) lets go of
the rooms that moved to other processes meanwhile and counts its sockets in again, as after an
outage. Cut off from Redis alone, the process lets its rooms go as soon as another process says
that Redis no longer has it registered, without waiting for Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import OutOfMemoryError

from rooms.manager import RoomManager
from signaling.adopt import Adoption
from signaling.fanout import Fanout
from signaling.nodes import PeerAnswer
from signaling.redis_watch import UNAVAILABLE, RedisWatch
from signaling.room_directory import RoomDirectory
from signaling.store import HEARTBEAT_TTL, LiveSockets, Store
from signaling.tasks import stop
from signaling.tickets import Tickets

logger = logging.getLogger(__name__)

TICK_INTERVAL = 0.25
HEARTBEAT_INTERVAL = 1.0
# Queue positions are sent at most this often per department: a busy queue changes many times a
# second, and every change moves every ticket behind it.
POSITIONS_INTERVAL = 0.3
# Callback requests are kept for days: looking for expired ones every few minutes is plenty.
CALLBACK_PURGE_INTERVAL = 600.0
# After a Redis outage every heartbeat has run out: dead processes are not swept until the live
# ones have had the time to renew theirs (each renews it first thing when it sees Redis again).
SWEEP_PAUSE_S = HEARTBEAT_TTL
# The recordings' lease runs out a second before the heartbeat does.
LEASE_TERM = HEARTBEAT_TTL - 1.0


class Clock:
    def __init__(self, store: Store, fanout: Fanout, directory: RoomDirectory,
                 rooms: RoomManager, tickets: Tickets, node: str, watch: RedisWatch,
                 live: Callable[[], Awaitable[LiveSockets]], adoption: Adoption,
                 let_go: Callable[[str], Awaitable[None]],
                 peer_sees_redis: Callable[[], Awaitable[PeerAnswer | None]] | None = None,
                 now: Callable[[], float] = time.time,
                 purge_interval: float = CALLBACK_PURGE_INTERVAL) -> None:
        """`let_go`: another process hosts this room now; its sockets here are closed (after
        the room manager has let it go). `peer_sees_redis`: another node that reaches Redis
        while this one cannot, and what Redis says of this one there (signaling/nodes.py)."""
        self._store, self._fanout, self._directory, self._rooms = store, fanout, directory, rooms
        self._adoption = adoption
        self._let_go = let_go
        self._peer_sees_redis = peer_sees_redis
        self._cut_off_seen_by = ""  # the node that reached Redis while this one could not
        self._lease = rooms.lease
        self._tickets, self._node, self._now = tickets, node, now
        self._watch, self._live = watch, live
        self._purge_interval = purge_interval
        self._tasks: list[asyncio.Task[None]] = []
        self._sweep_from = 0.0  # epoch seconds

    @property
    def settled(self) -> bool:
        """Redis answers and every live process has had the time to renew its heartbeat since
        the last outage: a process whose heartbeat ran out is dead."""
        return self._watch.available and self._now() >= self._sweep_from

    async def recover(self) -> None:
        """Redis answers again (the watch calls this before the service counts as up): this
        process's heartbeat and its sockets are put right before any tick runs."""
        await self._reassert("after the Redis outage")

    async def _reassert(self, why: str, buried: bool = False) -> None:
        """`buried`: the heartbeat that found this process buried has registered it again."""
        since, now = self._lease.now(), self._now()
        rejoined = await self._store.outage_over(self._node, now, await self._live(),
                                                 buried=buried)
        self._sweep_from = now + SWEEP_PAUSE_S
        if buried or rejoined.buried:
            await self._let_go_moved()
        self._lease.renew(since)
        await self._fanout.apply(rejoined.events)
        logger.info("node %s: heartbeat and sockets re-asserted %s", self._node, why)

    async def _let_go_moved(self) -> None:
        """This process was buried: the rooms that other processes host now are let go (those
        still in the directory as this process's stay: nobody else has them)."""
        for room in self._rooms.rooms():
            if room.closed:
                continue
            entry = await self._directory.entry(room.room_id)
            if entry is not None and entry.node != self._node:
                logger.warning("room %s: moved to node %s while node %s was stopped",
                               room.room_id, entry.node, self._node)
                await self._hand_over(room.room_id)

    async def _hand_over(self, room_id: str) -> None:
        """Another process hosts the room now: let it go here, and its sockets."""
        await self._rooms.let_go(room_id)
        await self._let_go(room_id)

    async def start(self) -> None:
        since = self._lease.now()
        await self._store.heartbeat(self._node, self._now())
        self._lease.renew(since)
        # Also at once: a process restarted more often than the interval still purges.
        await self._purge_callbacks()
        self._tasks = [
            asyncio.create_task(self._every(TICK_INTERVAL, self._tick), name="queue-tick"),
            asyncio.create_task(self._every(HEARTBEAT_INTERVAL, self._heartbeat,
                                            away=self._heartbeat_while_away), name="heartbeat"),
            # Apart from the heartbeat: reading back a long recording to adopt its room takes
            # a while, and the heartbeat renews the recordings' lease.
            asyncio.create_task(self._every(HEARTBEAT_INTERVAL, self._adopt), name="adopt"),
            asyncio.create_task(self._every(POSITIONS_INTERVAL, self._fanout.flush_queues),
                                name="queue-positions"),
            asyncio.create_task(self._every(self._purge_interval, self._purge_callbacks),
                                name="callback-purge"),
        ]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            await stop(task)

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]],
                     away: Callable[[], Awaitable[None]] | None = None) -> None:
        """`away`: what is done instead of the step while Redis does not answer."""
        full = False  # Redis refused this step's writes (maxmemory): said once, not every time
        while True:
            await asyncio.sleep(interval)
            if not self._watch.available:
                if away is not None:
                    await away()
                continue  # the watch logged it; recover() runs before the steps go on
            try:
                await step()
                full = False
            except asyncio.CancelledError:
                raise
            except UNAVAILABLE:
                self._watch.lost()
            except OutOfMemoryError:
                if not full:
                    logger.warning("%s: Redis is full (maxmemory); trying again", step.__name__)
                full = True
                # The heartbeat's write was refused; so is the sweep of any other process.
                self._lease.renew()
            except Exception:
                logger.exception("%s failed; trying again", step.__name__)

    async def _tick(self) -> None:
        now = self._now()
        await self._fanout.apply(await self._store.tick(now, sweep=now >= self._sweep_from,
                                                        node=self._node))

    async def _adopt(self) -> None:
        """Rooms of a dead process that the sweep moved here: at most a second late."""
        await self._adoption.adopt_moved()

    async def _purge_callbacks(self) -> None:
        await self._tickets.purge_callbacks()

    async def _heartbeat_while_away(self) -> None:
        """Redis does not answer this process. While it answers nobody, nobody can bury this
        process (and after it the sweep waits for everybody to renew): the lease is renewed and
        the recordings go on. If another node reaches it, this process alone is cut off (a
        partition): the others take it for dead when its heartbeat runs out and host its rooms,
        so the lease is not renewed and runs out first. Once that node says Redis no longer has
        this process registered (it was swept, its rooms moved), every room here is let go at
        once, as a buried process does when Redis answers it again: the participants' pages ask
        where the room is (any process answers) and join it on its new host, however long the
        partition lasts."""
        since = self._lease.now()
        peer = await self._peer_sees_redis() if self._peer_sees_redis is not None else None
        if peer is None:
            self._lease.renew(since)
        else:
            if peer.address != self._cut_off_seen_by:
                logger.warning("node %s: Redis answers the node at %s but not this one; the "
                               "recordings' lease is not renewed (its rooms may move)",
                               self._node, peer.address)
            if not peer.registered:  # the first time lets every room go; then none is left
                await self._let_go_all(peer.address)
        self._cut_off_seen_by = peer.address if peer is not None else ""

    async def _let_go_all(self, seen_by: str) -> None:
        """Cut off from Redis, this process was swept (as the node at `seen_by` reads Redis):
        every room it hosts has moved."""
        for room in self._rooms.rooms():
            if room.closed:
                continue
            logger.warning("room %s: node %s was taken for dead while cut off from Redis (so "
                           "says the node at %s); let go for its new host", room.room_id,
                           self._node, seen_by)
            await self._hand_over(room.room_id)

    async def _heartbeat(self) -> None:
        since = self._lease.now()
        if await self._store.heartbeat(self._node, self._now()):
            logger.warning("node %s: taken for dead meanwhile (stopped or cut off from Redis "
                           "past its heartbeat); the rooms moved meanwhile are let go",
                           self._node)
            await self._reassert("after it was taken for dead", buried=True)
        else:
            self._lease.renew(since)
        # The live-rooms list may be answered by any process: it reads the participant count
        # the host writes here.
        for room in self._rooms.rooms():
            if not room.closed:
                await self._directory.set_participants(room.room_id,
                                                       len(room.participants_info()))
