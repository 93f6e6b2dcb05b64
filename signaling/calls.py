"""Calls: a staff member accepts a ringing ticket and a room opens for it on the least-loaded
node; the people in a call get room tokens with that node's base (again after a reload); when the
room closes the recording is indexed, the directory entry and the invitations go, and the ticket
is finished."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from recordings.archive import Archive
from rooms.manager import RoomManager
from rooms.roles import Role, participant_id
from rooms.room import Room, RoomMeta
from signaling import notice
from signaling.accounts import Accounts, User
from signaling.consult import Consult
from signaling.errors import SignalError
from signaling.fanout import Fanout
from signaling.interpreters import Interpreters
from signaling.nodes import Nodes
from signaling.notice_store import Notices
from signaling.redis_watch import UNAVAILABLE
from signaling.room_directory import RoomDirectory
from signaling.schema import RoomGrant, StaffRoom, TicketView
from signaling.skills import room_role, skill_of
from signaling.snapshots import Snapshots
from signaling.states import Presence, TicketStatus
from signaling.store import Store, Ticket

logger = logging.getLogger(__name__)


# The node command that opens an accepted ticket's room (Calls.open_here).
OPEN_ROOM = "open_room"


class Calls:
    def __init__(self, store: Store, accounts: Accounts, directory: RoomDirectory,
                 rooms: RoomManager, fanout: Fanout, snapshots: Snapshots, consult: Consult,
                 interpreters: Interpreters, nodes: Nodes,
                 now: Callable[[], float] = time.time) -> None:
        self._store, self._directory, self._rooms, self._fanout = store, directory, rooms, fanout
        self._snapshots, self._consult, self._now = snapshots, consult, now
        self._interpreters, self._accounts, self._nodes = interpreters, accounts, nodes
        self._node = nodes.node
        nodes.on(OPEN_ROOM, self.open_here)

    async def accept(self, user: User, ticket_id: str) -> dict[str, Any]:
        """The staff member takes the ticket that rings them: its room opens on the least-loaded
        live node (signaling/nodes.py), the applicant is told to join, and the other departments
        the ticket names are invited (会商) by that node."""
        now = self._now()
        if await self._store.accept(ticket_id, user.username, now) != "ok":
            raise SignalError("not_offered", ticket_id)
        ticket = await self._store.ticket(ticket_id)
        assert ticket is not None
        room_id = f"r{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{secrets.token_hex(3)}"
        node = await self._place({"room_id": room_id, "ticket_id": ticket_id,
                                  "staff": user.username, "now": now})
        token = await self._directory.create_token(
            room_id, role=Role.STAFF, participant_id=participant_id(Role.STAFF, user.username),
            name=user.display_name, department=ticket.department, ticket_id=ticket_id)
        logger.info("ticket %s connected to staff %s in room %s on node %s", ticket_id,
                    user.username, room_id, node)
        ticket = await self._store.ticket(ticket_id)
        assert ticket is not None
        await self._fanout.ticket_connected(ticket, await self.applicant_room(ticket))
        await self._fanout.staff_state(user)
        self._fanout.queue_changed(ticket.department)
        return {"room": {"room_id": room_id, "token": token,
                         "base": await self._nodes.base_of(node)},
                "ticket": await self._snapshots.ticket(ticket)}

    async def _place(self, args: dict[str, Any]) -> str:
        """Open the room on the least-loaded live node; here when that is this node, or when the
        chosen one does not answer in time. Returns the hosting node."""
        chosen = await self._nodes.choose()
        if chosen is not None and chosen.node != self._node:
            answer = await self._nodes.command(chosen.node, OPEN_ROOM, args)
            if answer is not None and answer.get("node"):
                return str(answer["node"])
            logger.warning("room %s: node %s (%s) did not open it; opening it here",
                           args["room_id"], chosen.name, chosen.node)
        return str((await self.open_here(args))["node"])

    async def open_here(self, args: dict[str, Any]) -> dict[str, Any]:
        """Open an accepted ticket's room on this node (the `open_room` command): the room, its
        directory entry, and the invitations of the other departments the ticket names."""
        room_id, ticket_id, staff = str(args["room_id"]), str(args["ticket_id"]), str(args["staff"])
        ticket = await self._store.ticket(ticket_id)
        user = await self._accounts.user(staff)
        if ticket is None or user is None:
            raise SignalError("not_offered", ticket_id)
        # The directory entry first: when the placing node gave up waiting for this answer and
        # opened the room itself, the room is its, and this node opens nothing.
        owner = await self._directory.open(room_id, node=self._node, ticket_id=ticket_id,
                                           department=ticket.department, staff=staff,
                                           now=float(args["now"]))
        if owner != self._node:
            logger.info("room %s: opened on node %s already; not here", room_id, owner)
            return {"node": owner}
        try:
            room = self._rooms.open(room_id, RoomMeta(
                ticket_id=ticket_id, ticket_number=ticket.number, department=ticket.department,
                staff=staff, consent_version=ticket.consent_version,
                consent_at=ticket.consent_at))
        except Exception:
            await self._directory.close(room_id)
            raise
        # The departments named at the kiosk besides the main one are invited at once, and the
        # interpreter pool the applicant asked for is rung.
        for other in ticket.also:
            if skill_of(other):
                code = await self._interpreters.ring(room, other,
                                                     by_department=ticket.department, by=user)
            else:
                code = await self._consult.invite(room, other, "",
                                                  by_department=ticket.department, by=user)
            if code not in ("ok", "unavailable"):
                logger.warning("room %s: could not invite %s (%s)", room_id, other, code)
        return {"node": self._node}

    async def applicant_room(self, ticket: Ticket) -> RoomGrant | None:
        """A fresh room token for the applicant of a connected ticket, with the base of the node
        that hosts its room."""
        if ticket.status != TicketStatus.CONNECTED or not ticket.room_id:
            return None
        entry = await self._directory.entry(ticket.room_id)
        if entry is None:
            return None
        token = await self._directory.create_token(
            ticket.room_id, role=Role.APPLICANT,
            participant_id=participant_id(Role.APPLICANT, ticket.ticket_id),
            name=ticket.number, department="", ticket_id=ticket.ticket_id)
        return {"room_id": ticket.room_id, "token": token,
                "base": await self._nodes.base_of(entry.node)}

    async def staff_room(self, user: User, presence: str) -> StaffRoom | None:
        """The room a (re)connecting staff member is in, on whichever node hosts it, with a fresh
        token: one they joined by invitation, or their own call."""
        room_id, department = "", ""
        guest = await self._directory.guest_room(user.username)
        entry = await self._directory.entry(guest) if guest else None
        if entry is not None:
            room_id, department = guest, entry.joined_as(user.username)
        elif presence == Presence.IN_CALL:
            ticket = await self._store.ticket(
                await self._store.tickets_of_staff_ringing(user.username))
            if ticket is not None and ticket.room_id and ticket.status == TicketStatus.CONNECTED:
                room_id, department = ticket.room_id, ticket.department
                entry = await self._directory.entry(room_id)
        if entry is None:
            return None
        ticket = await self._store.ticket(entry.ticket_id)
        role = room_role(department)
        token = await self._directory.create_token(
            room_id, role=role, participant_id=participant_id(role, user.username),
            name=user.display_name, department=department, ticket_id=entry.ticket_id)
        view: TicketView | None = await self._snapshots.ticket(ticket) if ticket else None
        return {"room_id": room_id, "token": token, "base": await self._nodes.base_of(entry.node),
                "guest": bool(guest), "ticket": view}


class RoomHooks:
    """What the room manager reports about this process's rooms: a closed room's bookkeeping,
    and a recording that failed during the call (an alert for supervisors)."""

    def __init__(self, store: Store, directory: RoomDirectory, archive: Archive,
                 consult: Consult, fanout: Fanout, notices: Notices,
                 now: Callable[[], float] = time.time) -> None:
        self._store, self._directory, self._archive = store, directory, archive
        self._consult, self._fanout, self._now = consult, fanout, now
        self._notices = notices
        # Rooms that closed while Redis was away, their bookkeeping still to do.
        self._unfinished: dict[str, tuple[Room, dict[str, Any] | None]] = {}

    async def room_closed(self, room: Room, summary: dict[str, Any] | None) -> None:
        ticket_id = room.meta.ticket_id
        try:
            # The 一次性告知单 is sealed before the recording is indexed (so its file is in the
            # recording's first seal) and before the ticket ends (a kiosk that sees its ticket
            # ended finds the notice sealed).
            envelope = await self._notices.seal(room.room_id)
            if envelope is not None:
                stored = await self._archive.add_notice(room.room_id, notice.canonical(envelope))
                logger.info("room %s: notice sealed%s", room.room_id,
                            " with the recording" if stored else " (no recording)")
                await self._fanout.notice(room.room_id, envelope["document"])
            if summary is not None:
                await self._archive.index(summary)
            entry = await self._directory.entry(room.room_id)
            await self._directory.close(room.room_id)
            if entry is not None:
                await self._consult.room_ended(entry)
            if ticket_id:
                _staff, events = await self._store.finish_ticket(ticket_id, self._now())
                await self._fanout.apply(events)
        except UNAVAILABLE:
            # The call ended while Redis is away: its ticket and staff member are finished when
            # it is back (finish_unfinished), not left in a call for ever.
            logger.warning("room %s: closed while Redis is away; ticket %s is finished when it "
                           "is back", room.room_id, ticket_id)
            self._unfinished[room.room_id] = (room, summary)
        except Exception:
            logger.exception("room %s: closing bookkeeping failed (ticket %s)", room.room_id,
                             ticket_id)

    async def finish_unfinished(self) -> None:
        """Redis is back: the bookkeeping of the rooms that closed meanwhile."""
        for room_id, (room, summary) in list(self._unfinished.items()):
            del self._unfinished[room_id]
            await self.room_closed(room, summary)

    async def recording_failed(self, room: Room) -> None:
        """A room's recording stopped (a full disk) while the call goes on: alert supervisors."""
        reason = room.recorder.failed
        if reason is None:
            return
        try:
            await self._archive.alerts.raise_once(
                reason, room.room_id, room_id=room.room_id,
                ticket_number=room.meta.ticket_number,
                department=room.meta.department,
                detail=room.recorder.failure_detail)
        except Exception:
            logger.exception("room %s: raising the recording alert failed", room.room_id)
