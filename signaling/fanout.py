"""The fan-out: the one place that turns a state change into Socket.IO messages, and that knows
the Socket.IO rooms they go to. It sends only the events declared in `schema.OUTBOUND`.

Socket.IO rooms (through Redis between processes):
  /kiosk  ticket:<ticket_id>   the applicant's sockets of one ticket
  /staff  staff:<username>     all tabs of one staff member
  /staff  dept:<pool>          every staff member of a department or backup group
                               (and 会商 invitations to the department: room:invite)
  /room   room:<room_id>       the participants' sockets of one room
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import socketio

from signaling.accounts import Accounts, User
from signaling.pubsub import RedisPubSub
from signaling.queue import EventKind, Events, StaffFacts
from signaling.schema import (
    OUTBOUND,
    CallbackNew,
    InterpreterUnavailable,
    Invite,
    InviteClosed,
    RoomGrant,
    StaffState,
    TicketView,
)
from signaling.snapshots import Snapshots
from signaling.states import TicketStatus
from signaling.store import Store, Ticket
from signaling.views import WaitBasis

logger = logging.getLogger(__name__)

USER_CACHE_S = 5.0
KIOSK, STAFF, ROOM = "/kiosk", "/staff", "/room"


def _ticket_room(ticket_id: str) -> str:
    return f"ticket:{ticket_id}"


def _staff_room(username: str) -> str:
    return f"staff:{username}"


def _dept_room(pool: str) -> str:
    return f"dept:{pool}"


class Fanout:
    def __init__(self, sio: socketio.AsyncServer, store: Store, snapshots: Snapshots,
                 accounts: Accounts) -> None:
        self._sio, self._store, self._snapshots = sio, store, snapshots
        self._accounts = accounts
        # Queues whose positions are sent by the clock's next flush (signaling/clock.py).
        self._dirty_queues: set[str] = set()
        self._users: dict[str, tuple[float, User | None]] = {}
        # One message to the other processes per batch of events, where the manager is the
        # service's Redis one (a test's in-process manager has nobody to send to).
        manager = sio.manager
        self._batch: Callable[[], AbstractAsyncContextManager[None]] = \
            manager.batch if isinstance(manager, RedisPubSub) else contextlib.nullcontext

    async def _emit(self, namespace: str, event: str, payload: Mapping[str, Any],
                    to: str | None, local: bool = False) -> None:
        """`to` None: every socket of the namespace; `local`: on this process only (not through
        Redis)."""
        if event not in OUTBOUND[namespace]:
            raise ValueError(f"{namespace} {event} is not a declared outbound event")
        await self._sio.emit(event, payload, to=to, namespace=namespace, ignore_queue=local)

    async def service_state(self, state: str) -> None:
        """Redis went (`degraded`) or is back (`ok`): every queue socket of this process hears
        it from this process (each process tells its own; Redis cannot carry it)."""
        for namespace in (KIOSK, STAFF):
            await self._emit(namespace, "service:state", {"state": state}, to=None, local=True)

    # who hears what ---------------------------------------------------------------------------
    async def follow_ticket(self, sid: str, ticket_id: str) -> None:
        """A kiosk socket hears its ticket's updates."""
        await self._sio.enter_room(sid, _ticket_room(ticket_id), namespace=KIOSK)

    async def join_desk(self, sid: str, user: User) -> None:
        """A staff socket hears its own rings and state, and its departments' queues."""
        await self._sio.enter_room(sid, _staff_room(user.username), namespace=STAFF)
        for pool in user.departments:
            await self._sio.enter_room(sid, _dept_room(pool), namespace=STAFF)

    async def join_room(self, sid: str, room_id: str) -> None:
        await self._sio.enter_room(sid, f"room:{room_id}", namespace=ROOM)

    # events of the queue script ---------------------------------------------------------------
    async def apply(self, events: Events) -> None:
        """Tell the sockets concerned what the queue script changed; what they are told comes
        from the facts the script returned with the events, and what this sends to other
        processes goes to Redis in one message."""
        async with self._batch():
            await self._apply(events)

    async def _apply(self, events: Events) -> None:
        staff: set[str] = set()
        tickets: dict[str, Ticket | None] = {}

        async def ticket(ticket_id: str) -> Ticket | None:
            # Each ticket once per batch of events, as the script left it.
            if ticket_id not in tickets:
                tickets[ticket_id] = Ticket.of(events, ticket_id) \
                    if ticket_id in events.tickets else await self._store.ticket(ticket_id)
            return tickets[ticket_id]

        for kind, a, b in events:
            if kind == EventKind.RING:
                facts = events.tickets.get(a)
                deadline = facts.deadline if facts else await self._store.ringing_deadline(a)
                await self._ring(await ticket(a), b, deadline)
                staff.add(b)
            elif kind == EventKind.WITHDRAWN:
                current = await ticket(a)
                reason = "cancelled" if current and current.status in (
                    TicketStatus.CANCELLED, TicketStatus.ABANDONED) else "timeout"
                logger.info("ticket %s: ring of %s withdrawn (%s)", a, b, reason)
                await self._emit(STAFF, "call:withdrawn", {"ticket_id": a, "reason": reason},
                                 to=_staff_room(b))
                staff.add(b)
            elif kind in (EventKind.PAUSED, EventKind.PRESENCE):
                logger.info("staff %s: %s %s", a, kind, b)
                staff.add(a)
            elif kind == EventKind.TICKET:
                await ticket(a)
            elif kind == EventKind.QUEUE:
                self._dirty_queues.add(a)
        for ticket_id, current in tickets.items():
            if current is not None:
                await self.ticket(ticket_id, ticket=current)
        for username in staff:
            user = await self._user(username)
            if user is not None:
                await self.staff_state(user, events.staff.get(username))

    async def _user(self, username: str) -> User | None:
        """An account, kept for USER_CACHE_S: only for telling sockets, never for deciding
        what someone may do (that reads the accounts)."""
        now = time.monotonic()
        cached = self._users.get(username)
        if cached is not None and now - cached[0] < USER_CACHE_S:
            return cached[1]
        user = await self._accounts.user(username)
        self._users[username] = (now, user)
        return user

    async def _ring(self, ticket: Ticket | None, username: str, deadline: float | None) -> None:
        """`deadline`: of the ticket's ring now (None: it rings no more)."""
        if ticket is None or deadline is None:
            return
        logger.info("ticket %s rings staff %s", ticket.ticket_id, username)
        await self._emit(STAFF, "call:incoming", {
            "ticket_id": ticket.ticket_id, "number": ticket.number,
            "department": ticket.department, "priority": ticket.priority,
            "expires_at": deadline,
        }, to=_staff_room(username))

    # tickets and queues -----------------------------------------------------------------------
    async def ticket(self, ticket_id: str, *, basis: WaitBasis | None = None,
                     ticket: Ticket | None = None) -> None:
        """A ticket's view to its applicant's sockets."""
        if ticket is None:
            ticket = await self._store.ticket(ticket_id)
        if ticket is None:
            return
        await self._emit(KIOSK, "ticket:update", await self._snapshots.ticket(ticket, basis),
                         to=_ticket_room(ticket_id))

    async def ticket_connected(self, ticket: Ticket, room: RoomGrant | None) -> None:
        """A call was accepted: the applicant's sockets get the room to join (None when it is
        gone already)."""
        view: TicketView = await self._snapshots.ticket(ticket)
        view["room"] = room
        await self._emit(KIOSK, "ticket:update", view, to=_ticket_room(ticket.ticket_id))

    async def interpreter_unavailable(self, ticket_id: str, skill: str) -> None:
        """The applicant asked for an interpreter and nobody of the pool is available: the call
        goes on without one (signaling/interpreters.py)."""
        payload: InterpreterUnavailable = {"skill": skill}
        await self._emit(KIOSK, "interpreter:unavailable", payload,
                         to=_ticket_room(ticket_id))

    def queue_changed(self, dept_id: str) -> None:
        """The department's positions go out with the next flush."""
        self._dirty_queues.add(dept_id)

    async def flush_queues(self) -> None:
        dirty, self._dirty_queues = self._dirty_queues, set()
        for dept_id in dirty:
            await self.queue(dept_id)

    async def queue(self, dept_id: str) -> None:
        """Send every waiting ticket of a department its position, and its staff the count."""
        waiting = await self._store.waiting(dept_id)
        basis = await self._snapshots.wait_basis(dept_id) if waiting else None
        for ticket_id in waiting:
            await self.ticket(ticket_id, basis=basis)
        await self._emit(STAFF, "queue:update", {
            "department": dept_id, "waiting": len(waiting),
            "longest_since": await self._store.longest_since(dept_id),
        }, to=_dept_room(dept_id))

    # staff desks ------------------------------------------------------------------------------
    async def staff_state(self, user: User, known: StaffFacts | None = None) -> None:
        """`known`: their state as a queue script read it, if one just did."""
        await self._emit(STAFF, "staff:state", await self._snapshots.staff(user, known),
                         to=_staff_room(user.username))

    async def desk_connected(self, sid: str, view: StaffState) -> None:
        """The first state of a (re)connected desk, to that socket only."""
        await self._emit(STAFF, "staff:state", view, to=sid)

    async def session_ended(self, sid: str, reason: str) -> None:
        """A desk whose login session ended (signed out, disabled, password changed elsewhere)
        is told why, just before the server closes its socket."""
        await self._emit(STAFF, "session:ended", {"reason": reason}, to=sid)

    async def device_revoked(self, sid: str, device_id: str) -> None:
        """Tell a registered kiosk's socket that its device was revoked (the caller closes
        it)."""
        await self._emit(KIOSK, "device:revoked", {"device_id": device_id}, to=sid)

    async def callback_new(self, entry: CallbackNew) -> None:
        await self._emit(STAFF, "callback:new", entry, to=_dept_room(entry["department"]))

    async def callback_done(self, departments: Iterable[str], callback_id: str) -> None:
        for dept in departments:
            await self._emit(STAFF, "callback:done", {"callback_id": callback_id},
                             to=_dept_room(dept))

    async def invite(self, invite: Invite) -> None:
        await self._emit(STAFF, "room:invite", invite, to=_dept_room(invite["department"]))

    async def invite_closed(self, payload: InviteClosed) -> None:
        await self._emit(STAFF, "room:invite_closed", payload,
                         to=_dept_room(payload["department"]))

    # room participants ------------------------------------------------------------------------
    async def notice(self, room_id: str, document: dict[str, Any]) -> None:
        """The room's 一次性告知单 changed: every participant (desks, kiosk, listeners) gets it."""
        await self._emit(ROOM, "notice:update", {"notice": document}, to=f"room:{room_id}")

    async def to_participant(self, sid: str, event: str, payload: Mapping[str, Any]) -> None:
        """A room's event (rooms/ builds them) to one participant's socket."""
        await self._emit(ROOM, event, payload, to=sid)
