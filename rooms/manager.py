"""The rooms hosted by this process: opening them (or adopting one of a process that died),
finding them, closing them all at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from recordings import parts
from recordings.lease import ALWAYS, Lease
from rooms import passthrough
from rooms.close_reason import CloseReason
from rooms.config import MediaConfig
from rooms.errors import RoomError
from rooms.room import RecordingFailedCallback, Room, RoomMeta

logger = logging.getLogger(__name__)


class RoomExists(RoomError):
    code = "bad_state"


class RoomManager:
    def __init__(self, media: MediaConfig, recordings_dir: Path,
                 on_room_closed: Callable[[Room, dict[str, Any] | None], Awaitable[None]],
                 on_recording_failed: RecordingFailedCallback | None = None,
                 lease: Lease = ALWAYS) -> None:
        self.media = media
        # Whether this process may still write recordings (recordings/lease.py).
        self.lease = lease
        self.recordings_dir = recordings_dir
        self._on_room_closed = on_room_closed
        self._on_recording_failed = on_recording_failed
        self._rooms: dict[str, Room] = {}
        self.closed = False
        # Forwarding needs the hooks; installing them again is harmless.
        passthrough.install(media)

    def open(self, room_id: str, meta: RoomMeta) -> Room:
        self._check_new(room_id)
        room = self._create(room_id, meta)
        room.start()
        return room

    async def adopt(self, room_id: str, meta: RoomMeta, *, lost_node: str, node: str,
                    now: float) -> Room:
        """Re-create the room of a process that died (``lost_node``) here (``node``): its
        recording continues as a new part in the same folder (recordings/parts.py)."""
        self._check_new(room_id)
        previous = await asyncio.to_thread(parts.read_back, self.recordings_dir / room_id,
                                           lost_node=lost_node, node=node, now=now)
        room = self._create(room_id, meta)
        room.resume(previous)
        return room

    def _check_new(self, room_id: str) -> None:
        if self.closed:
            raise RoomError("the room manager is shut down")
        if not room_id or "/" in room_id or room_id.startswith("."):
            raise RoomError(f"room id {room_id!r} cannot name a directory")
        existing = self._rooms.get(room_id)
        if existing is not None and not existing.closed:
            raise RoomExists(f"room {room_id} is open already")

    def _create(self, room_id: str, meta: RoomMeta) -> Room:
        room = Room(room_id, meta, media=self.media, recordings_dir=self.recordings_dir,
                    on_closed=self._closed, on_recording_failed=self._on_recording_failed,
                    lease=self.lease)
        self._rooms[room_id] = room
        return room

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    async def let_go(self, room_id: str) -> None:
        """Another process hosts the room now (Room.let_go)."""
        room = self._rooms.pop(room_id, None)
        if room is not None:
            await room.let_go()

    async def _closed(self, room: Room, summary: dict[str, Any] | None) -> None:
        if self._rooms.get(room.room_id) is room:
            del self._rooms[room.room_id]
        await self._on_room_closed(room, summary)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        rooms = list(self._rooms.values())
        logger.info("closing %d room(s) (%s)", len(rooms), CloseReason.SERVER_SHUTDOWN)
        for room in rooms:
            await room.close(CloseReason.SERVER_SHUTDOWN)
