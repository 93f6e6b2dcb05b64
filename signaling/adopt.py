"""Adoption: the rooms of a process that died, moved to this one by the sweep (queue.lua
`end_calls_of`), are re-created here from their directory entry and ticket, with the same room
tokens; the participants' pages reconnect by themselves and the recording goes on in a new part."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rooms.manager import RoomManager
from rooms.room import RoomMeta
from signaling.fanout import Fanout
from signaling.room_directory import RoomDirectory
from signaling.store import Store

logger = logging.getLogger(__name__)


class Adoption:
    def __init__(self, store: Store, directory: RoomDirectory, rooms: RoomManager,
                 fanout: Fanout, node: str, now: Callable[[], float] = time.time) -> None:
        self._store, self._directory, self._rooms = store, directory, rooms
        self._fanout, self._node, self._now = fanout, node, now

    async def adopt_moved(self) -> list[str]:
        """Re-create every room moved here (the clock calls this every heartbeat); returns the
        ids of the rooms adopted now."""
        adopted: list[str] = []
        for room_id in await self._directory.to_adopt(self._node):
            if await self._adopt(room_id):
                adopted.append(room_id)
            await self._directory.adopted(self._node, room_id)
        return adopted

    async def _adopt(self, room_id: str) -> bool:
        entry = await self._directory.entry(room_id)
        if entry is None or entry.node != self._node:
            logger.info("room %s: moved here but gone or moved on since; not adopted", room_id)
            return False
        existing = self._rooms.get(room_id)
        if existing is not None and not existing.closed:
            return False  # adopted already (a heartbeat that failed half way)
        ticket = await self._store.ticket(entry.ticket_id)
        meta = RoomMeta(ticket_id=entry.ticket_id,
                        ticket_number=ticket.number if ticket else "",
                        department=entry.department, staff=entry.staff,
                        consent_version=ticket.consent_version if ticket else "",
                        consent_at=ticket.consent_at if ticket else None)
        try:
            await self._rooms.adopt(room_id, meta, lost_node=entry.lost_node, node=self._node,
                                    now=self._now())
        except Exception:
            # Its folder cannot be read back (unreadable, or a bug): rather than try again every
            # heartbeat, the call ends as when no process is left, and crash recovery closes the
            # recording once the room key is gone.
            logger.exception("room %s (ticket %s): adopting it from node %s failed; the call "
                             "ends", room_id, entry.ticket_id, entry.lost_node)
            await self._directory.close(room_id)
            if entry.ticket_id:
                finished = await self._store.finish_ticket(entry.ticket_id, self._now())
                await self._fanout.apply(finished.events)
            return False
        logger.warning("room %s (ticket %s): adopted from node %s, which died %.1f s ago",
                       room_id, entry.ticket_id, entry.lost_node,
                       self._now() - entry.lost_at if entry.lost_at else 0.0)
        return True
