"""The hub: carries out queue, presence and room decisions (made atomically in Redis by the store)
and tells the affected sockets. It is the one place that turns a state change into messages.

Socket.IO rooms used for fan-out (through Redis between processes):
  /kiosk  ticket:<ticket_id>   the applicant's sockets of one ticket
  /staff  staff:<username>     all tabs of one staff member
  /staff  dept:<dept_id>       every staff member of a department (queue counts)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import socketio

from recordings.archive import Archive
from rooms.manager import RoomManager
from rooms.room import Room
from server.config import Config
from server.store import Store, Ticket, User
from signaling.errors import SignalError

logger = logging.getLogger(__name__)

RING_CHECK_INTERVAL = 0.25


class Hub:
    def __init__(self, config: Config, store: Store, sio: socketio.AsyncServer,
                 archive: Archive, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.sio = sio
        self.archive = archive
        self.clock = clock
        self.node_id = secrets.token_hex(4)
        self.rooms = RoomManager(config.media, config.recordings_dir, self._on_room_closed)
        self._ring_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._ring_task = asyncio.create_task(self._ring_loop(), name="ring-expiry")

    async def close(self) -> None:
        task, self._ring_task = self._ring_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.rooms.close()

    # tickets -------------------------------------------------------------------------------
    async def ticket_view(self, ticket: Ticket) -> dict[str, Any]:
        return {
            "ticket_id": ticket.ticket_id, "number": ticket.number,
            "department": ticket.department, "status": ticket.status,
            "position": await self.store.position(ticket) if ticket.status == "waiting" else 0,
            "created_at": ticket.created_at,
        }

    async def create_ticket(self, dept_id: str) -> tuple[Ticket, str]:
        dept = await self.store.department(dept_id)
        if dept is None:
            raise SignalError("unknown_department", dept_id)
        ticket, token = await self.store.create_ticket(dept_id, dept.get("prefix", "Y"),
                                                       self.clock())
        logger.info("ticket %s (%s) entered queue %s", ticket.ticket_id, ticket.number, dept_id)
        return ticket, token

    async def applicant_room(self, ticket: Ticket) -> dict[str, str] | None:
        """A fresh room token for the applicant of a connected ticket."""
        if ticket.status != "connected" or not ticket.room_id:
            return None
        if self.rooms.get(ticket.room_id) is None:
            return None
        token = await self.store.create_room_token(
            ticket.room_id, role="applicant", participant_id=f"a-{ticket.ticket_id}",
            name=ticket.number, department="", ticket_id=ticket.ticket_id)
        return {"room_id": ticket.room_id, "token": token}

    async def notify_ticket(self, ticket_id: str, extra: dict[str, Any] | None = None) -> None:
        ticket = await self.store.ticket(ticket_id)
        if ticket is None:
            return
        view = await self.ticket_view(ticket)
        if extra:
            view.update(extra)
        await self.sio.emit("ticket:update", view, to=f"ticket:{ticket_id}", namespace="/kiosk")

    async def notify_queue(self, dept_id: str) -> None:
        """Send every waiting ticket of a department its position, and staff the count."""
        waiting = await self.store.waiting(dept_id)
        for ticket_id in waiting:
            await self.notify_ticket(ticket_id)
        await self.sio.emit("queue:update", {"department": dept_id, "waiting": len(waiting)},
                            to=f"dept:{dept_id}", namespace="/staff")

    async def cancel(self, ticket: Ticket) -> None:
        code, staff = await self.store.cancel_ticket(ticket.ticket_id, self.clock())
        if code != "ok":
            raise SignalError("bad_state", f"ticket is {ticket.status}")
        logger.info("ticket %s cancelled", ticket.ticket_id)
        if staff:
            await self._withdraw(staff, ticket.ticket_id, "cancelled")
        await self.notify_ticket(ticket.ticket_id)
        await self.dispatch(ticket.department)

    async def rate(self, ticket: Ticket, rating: int) -> None:
        code = await self.store.rate_ticket(ticket.ticket_id, rating)
        if code != "ok":
            raise SignalError("bad_state", "ticket cannot be rated now (or was rated already)")
        logger.info("ticket %s rated %d", ticket.ticket_id, rating)
        if ticket.room_id:
            await self.archive.set_rating(ticket.room_id, rating, self.clock())

    # presence and dispatch ---------------------------------------------------------------------
    async def staff_view(self, user: User) -> dict[str, Any]:
        state = await self.store.staff_state(user.username)
        queues = {d: len(await self.store.waiting(d)) for d in user.departments}
        return {"username": user.username, "display_name": user.display_name,
                "departments": list(user.departments),
                "presence": state.get("presence", "offline"), "reason": state.get("reason", ""),
                "queues": queues}

    async def push_staff_state(self, user: User) -> None:
        await self.sio.emit("staff:state", await self.staff_view(user),
                            to=f"staff:{user.username}", namespace="/staff")

    async def set_presence(self, user: User, state: str) -> str:
        code, presence, released = await self.store.set_presence(user.username, state,
                                                                 self.clock())
        if code != "ok":
            raise SignalError("bad_state", f"presence is {presence}")
        logger.info("staff %s is %s", user.username, presence)
        if released:
            await self._withdraw(user.username, released, "timeout")
            await self.notify_ticket(released)
        for dept in user.departments:
            await self.dispatch(dept)
        await self.push_staff_state(user)
        return presence

    async def dispatch(self, dept_id: str) -> None:
        now = self.clock()
        offers = await self.store.dispatch(dept_id, now, self.config.ring_timeout)
        for ticket_id, username in offers:
            ticket = await self.store.ticket(ticket_id)
            if ticket is None:
                continue
            logger.info("ticket %s rings staff %s", ticket_id, username)
            await self.sio.emit("call:incoming", {
                "ticket_id": ticket_id, "number": ticket.number, "department": dept_id,
                "expires_at": now + self.config.ring_timeout,
            }, to=f"staff:{username}", namespace="/staff")
            user = await self.store.user(username)
            if user is not None:
                await self.push_staff_state(user)
            await self.notify_ticket(ticket_id)
        await self.notify_queue(dept_id)

    async def _withdraw(self, username: str, ticket_id: str, reason: str) -> None:
        await self.sio.emit("call:withdrawn", {"ticket_id": ticket_id, "reason": reason},
                            to=f"staff:{username}", namespace="/staff")
        user = await self.store.user(username)
        if user is not None:
            await self.push_staff_state(user)

    async def decline(self, user: User, ticket_id: str) -> None:
        dept = await self.store.decline(ticket_id, user.username, self.clock())
        if not dept:
            raise SignalError("not_offered", ticket_id)
        logger.info("staff %s declined ticket %s", user.username, ticket_id)
        await self.push_staff_state(user)
        await self.dispatch(dept)

    async def _ring_loop(self) -> None:
        while True:
            await asyncio.sleep(RING_CHECK_INTERVAL)
            try:
                expired = await self.store.expire_rings(self.clock())
                depts = set()
                for ticket_id, username in expired:
                    logger.info("ticket %s: staff %s did not answer", ticket_id, username)
                    if username:
                        await self._withdraw(username, ticket_id, "timeout")
                    ticket = await self.store.ticket(ticket_id)
                    if ticket is not None:
                        depts.add(ticket.department)
                for dept in depts:
                    await self.dispatch(dept)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("ring expiry check failed; retrying")

    # calls and rooms -----------------------------------------------------------------------------
    async def accept(self, user: User, ticket_id: str) -> dict[str, Any]:
        now = self.clock()
        if await self.store.accept(ticket_id, user.username, now) != "ok":
            raise SignalError("not_offered", ticket_id)
        ticket = await self.store.ticket(ticket_id)
        assert ticket is not None
        room_id = f"r{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{secrets.token_hex(3)}"
        self.rooms.open(room_id, {"ticket_id": ticket_id, "ticket_number": ticket.number,
                                  "department": ticket.department, "staff": user.username})
        await self.store.put_room(room_id, {"node": self.node_id, "ticket_id": ticket_id,
                                            "department": ticket.department,
                                            "staff": user.username, "created_at": now})
        await self.store.set_ticket_room(ticket_id, room_id)
        token = await self.store.create_room_token(
            room_id, role="staff", participant_id=f"s-{user.username}",
            name=user.display_name, department=ticket.department, ticket_id=ticket_id)
        logger.info("ticket %s connected to staff %s in room %s", ticket_id, user.username,
                    room_id)
        ticket = await self.store.ticket(ticket_id)
        assert ticket is not None
        await self.notify_ticket(ticket_id, {"room": await self.applicant_room(ticket)})
        await self.push_staff_state(user)
        await self.notify_queue(ticket.department)
        return {"room": {"room_id": room_id, "token": token},
                "ticket": await self.ticket_view(ticket)}

    async def _on_room_closed(self, room: Room, summary: dict[str, Any] | None) -> None:
        ticket_id = str(room.meta.get("ticket_id", ""))
        now = self.clock()
        try:
            if summary is not None:
                await self.archive.index(summary)
            await self.store.delete_room(room.room_id)
            staff = await self.store.finish_ticket(ticket_id, now) if ticket_id else ""
            if ticket_id:
                await self.notify_ticket(ticket_id)
            if staff:
                user = await self.store.user(staff)
                if user is not None:
                    await self.push_staff_state(user)
                    for dept in user.departments:
                        await self.dispatch(dept)
        except Exception:
            logger.exception("room %s: closing bookkeeping failed (ticket %s)", room.room_id,
                             ticket_id)
