"""The hub: carries out queue, presence and room decisions (made atomically in Redis by the queue
script) and tells the affected sockets. It is the one place that turns a state change into
messages, and it runs the per-process clock: ticks (timeouts, tiers, grace periods) and heartbeats.

Socket.IO rooms used for fan-out (through Redis between processes):
  /kiosk  ticket:<ticket_id>   the applicant's sockets of one ticket
  /staff  staff:<username>     all tabs of one staff member
  /staff  dept:<pool>          every staff member of a department or backup group
                               (and 会商 invitations to the department: room:invite)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import socketio

from recordings.archive import Archive
from rooms.config import MediaConfig
from rooms.manager import RoomManager
from rooms.room import Room, RoomMeta
from signaling.config import SignalingConfig
from signaling.departments import Department
from signaling.errors import SignalError
from signaling.eta import average_handling, estimate_wait
from signaling.store import Event, Store, Ticket, User

logger = logging.getLogger(__name__)

TICK_INTERVAL = 0.25
HEARTBEAT_INTERVAL = 2.0
# Queue positions are sent at most this often per department: a busy queue changes many times a
# second, and every change moves every ticket behind it.
POSITIONS_INTERVAL = 0.3
USER_CACHE_S = 5.0
# Pending 会商 invitations per room: enough for a few departments, not a broadcast.
MAX_PENDING_INVITES = 3
# Why a staff member invited into a room is away: the ACD does not ring them while they are in it.
CONSULT_REASON = "consult"


class Hub:
    def __init__(self, config: SignalingConfig, store: Store, sio: socketio.AsyncServer,
                 archive: Archive, media: MediaConfig, recordings_dir: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.sio = sio
        self.archive = archive
        self.clock = clock
        self.tz = zoneinfo.ZoneInfo(config.timezone)
        self.node_id = secrets.token_hex(4)
        self.rooms = RoomManager(media, recordings_dir, self._on_room_closed,
                                 on_recording_failed=self._on_recording_failed)
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty_queues: set[str] = set()
        self._users: dict[str, tuple[float, User | None]] = {}

    async def start(self) -> None:
        await self.store.heartbeat(self.node_id, self.clock())
        self._tasks = [
            asyncio.create_task(self._every(TICK_INTERVAL, self._tick), name="queue-tick"),
            asyncio.create_task(self._every(HEARTBEAT_INTERVAL, self._heartbeat),
                                name="heartbeat"),
            asyncio.create_task(self._every(POSITIONS_INTERVAL, self._flush_queues),
                                name="queue-positions"),
        ]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.rooms.close()

    async def _every(self, interval: float, step: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s failed; trying again", step.__name__)

    async def _tick(self) -> None:
        await self.apply(await self.store.tick(self.clock()))

    async def _heartbeat(self) -> None:
        await self.store.heartbeat(self.node_id, self.clock())
        # The live-rooms list may be answered by any process: it reads the participant count
        # the host writes here.
        for room in self.rooms.rooms():
            if not room.closed:
                await self.store.update_room(room.room_id, {
                    "participants": str(len(room.participants_info()))})

    # events from the queue script -----------------------------------------------------------
    async def apply(self, events: list[Event]) -> None:
        """Tell the sockets concerned what the queue script changed."""
        staff: set[str] = set()
        tickets: dict[str, Ticket | None] = {}

        async def ticket(ticket_id: str) -> Ticket | None:
            # Each ticket is read once per batch of events, after the script's changes.
            if ticket_id not in tickets:
                tickets[ticket_id] = await self.store.ticket(ticket_id)
            return tickets[ticket_id]

        for kind, a, b in events:
            if kind == "ring":
                await self._ring(await ticket(a), b)
                staff.add(b)
            elif kind == "withdrawn":
                current = await ticket(a)
                reason = "cancelled" if current and current.status in (
                    "cancelled", "abandoned") else "timeout"
                logger.info("ticket %s: ring of %s withdrawn (%s)", a, b, reason)
                await self.sio.emit("call:withdrawn", {"ticket_id": a, "reason": reason},
                                    to=f"staff:{b}", namespace="/staff")
                staff.add(b)
            elif kind in ("paused", "presence"):
                logger.info("staff %s: %s %s", a, kind, b)
                staff.add(a)
            elif kind == "ticket":
                await ticket(a)
            elif kind == "queue":
                self._dirty_queues.add(a)
        for ticket_id, current in tickets.items():
            if current is not None:
                await self.notify_ticket(ticket_id, ticket=current)
        for username in staff:
            user = await self._user(username)
            if user is not None:
                await self.push_staff_state(user)

    async def _user(self, username: str) -> User | None:
        """An account, kept for USER_CACHE_S: only for telling sockets, never for deciding
        what someone may do (that reads the store)."""
        now = time.monotonic()
        cached = self._users.get(username)
        if cached is not None and now - cached[0] < USER_CACHE_S:
            return cached[1]
        user = await self.store.user(username)
        self._users[username] = (now, user)
        return user

    async def _ring(self, ticket: Ticket | None, username: str) -> None:
        deadline = await self.store.ringing_deadline(ticket.ticket_id) if ticket else None
        if ticket is None or deadline is None:
            return
        logger.info("ticket %s rings staff %s", ticket.ticket_id, username)
        await self.sio.emit("call:incoming", {
            "ticket_id": ticket.ticket_id, "number": ticket.number,
            "department": ticket.department, "priority": ticket.priority,
            "expires_at": deadline,
        }, to=f"staff:{username}", namespace="/staff")

    # tickets ------------------------------------------------------------------------------------
    def local_time(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now, self.tz)

    async def department_view(self, dept: Department, now: float) -> dict[str, Any]:
        moment = self.local_time(now)
        open_now = dept.is_open(moment)
        upcoming = None if open_now else dept.next_open(moment)
        return {"id": dept.id, "name_zh": dept.name_zh, "name_en": dept.name_en,
                "matters": list(dept.matters), "open_now": open_now,
                "next_open": upcoming.timestamp() if upcoming else None,
                "hours": dept.hours_text()}

    async def _wait_basis(self, dept_id: str) -> tuple[int, int, float]:
        """(staff on duty, staff available now, average handling time) of a department."""
        on_duty, available = await self.store.duty(dept_id)
        return on_duty, available, average_handling(await self.store.handling_times(dept_id))

    async def ticket_view(self, ticket: Ticket,
                          basis: tuple[int, int, float] | None = None) -> dict[str, Any]:
        position = await self.store.position(ticket) if ticket.status == "waiting" else 0
        eta = None
        if ticket.status == "waiting":
            on_duty, available, handling = basis or await self._wait_basis(ticket.department)
            eta = estimate_wait(position, on_duty, available, handling)
        return {
            "ticket_id": ticket.ticket_id, "number": ticket.number,
            "department": ticket.department, "also": list(ticket.also),
            "priority": ticket.priority, "channel": ticket.channel, "status": ticket.status,
            "position": position, "eta_seconds": eta, "created_at": ticket.created_at,
        }

    async def create_ticket(self, dept_id: str, *, priority: bool, channel: str,
                            also: tuple[str, ...], guide: str = "") -> tuple[Ticket, str]:
        dept = await self.store.department(dept_id)
        if dept is None:
            raise SignalError("unknown_department", dept_id)
        for other in also:
            if other == dept_id or await self.store.department(other) is None:
                raise SignalError("unknown_department", other)
        now = self.clock()
        if not dept.is_open(self.local_time(now)):
            upcoming = dept.next_open(self.local_time(now))
            raise SignalError("closed", dept.hours_text(),
                              extra={"next_open": upcoming.timestamp() if upcoming else None,
                                     "hours": dept.hours_text()})
        code, ticket, token, events = await self.store.create_ticket(
            dept_id, now, priority=priority, channel=channel, also=also)
        if code != "ok" or ticket is None:
            raise SignalError(code, dept_id)
        logger.info("ticket %s (%s) entered queue %s%s", ticket.ticket_id, ticket.number,
                    dept_id, " (priority)" if priority else "")
        if guide:
            # The guide may join this ticket's room later (POST /api/rooms/{id}/join).
            await self.store.set_ticket_guide(ticket.ticket_id, guide, now)
        await self.apply(events)
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

    async def notify_ticket(self, ticket_id: str, extra: dict[str, Any] | None = None,
                            basis: tuple[int, int, float] | None = None,
                            ticket: Ticket | None = None) -> None:
        if ticket is None:
            ticket = await self.store.ticket(ticket_id)
        if ticket is None:
            return
        view = await self.ticket_view(ticket, basis)
        if extra:
            view.update(extra)
        await self.sio.emit("ticket:update", view, to=f"ticket:{ticket_id}", namespace="/kiosk")

    async def _flush_queues(self) -> None:
        dirty, self._dirty_queues = self._dirty_queues, set()
        for dept_id in dirty:
            await self.notify_queue(dept_id)

    async def notify_queue(self, dept_id: str) -> None:
        """Send every waiting ticket of a department its position, and its staff the count."""
        waiting = await self.store.waiting(dept_id)
        basis = await self._wait_basis(dept_id) if waiting else None
        for ticket_id in waiting:
            await self.notify_ticket(ticket_id, basis=basis)
        await self.sio.emit("queue:update", {
            "department": dept_id, "waiting": len(waiting),
            "longest_since": await self.store.longest_since(dept_id),
        }, to=f"dept:{dept_id}", namespace="/staff")

    async def connection(self, kind: str, ident: str, delta: int) -> int:
        total, events = await self.store.connection(kind, ident, self.node_id, delta,
                                                    self.clock())
        await self.apply(events)
        return total

    async def cancel(self, ticket: Ticket) -> None:
        code, events = await self.store.cancel_ticket(ticket.ticket_id, self.clock())
        if code != "ok":
            raise SignalError("bad_state", f"ticket is {ticket.status}")
        logger.info("ticket %s cancelled", ticket.ticket_id)
        await self.apply(events)

    async def rate(self, ticket: Ticket, rating: int) -> None:
        code = await self.store.rate_ticket(ticket.ticket_id, rating)
        if code != "ok":
            raise SignalError("bad_state", "ticket cannot be rated now (or was rated already)")
        logger.info("ticket %s rated %d", ticket.ticket_id, rating)
        if ticket.room_id:
            await self.archive.set_rating(ticket.room_id, rating, self.clock())

    async def request_callback(self, dept_id: str, request: dict[str, Any]) -> dict[str, Any]:
        if await self.store.department(dept_id) is None:
            raise SignalError("unknown_department", dept_id)
        entry = await self.store.add_callback(dept_id, {**request, "created_at": self.clock()})
        logger.info("callback %s requested for %s", entry["callback_id"], dept_id)
        await self.sio.emit("callback:new", entry, to=f"dept:{dept_id}", namespace="/staff")
        return entry

    # presence --------------------------------------------------------------------------------
    async def staff_view(self, user: User) -> dict[str, Any]:
        state, queues, longest, callbacks = await self.store.staff_overview(user.username,
                                                                            user.departments)
        wrap_until = state.get("wrap_until")
        presence = state.get("presence", "offline")
        return {"username": user.username, "display_name": user.display_name,
                "departments": list(user.departments), "presence": presence,
                "reason": state.get("reason", ""),
                "wrap_up_until": float(wrap_until) if wrap_until and presence == "wrap_up"
                else None,
                "queues": queues, "longest": longest, "callbacks": callbacks}

    async def staff_connect_view(self, user: User) -> dict[str, Any]:
        """The staff state a (re)connecting desk gets first: also the 会商 invitations pending
        for its departments, and the room it is in (a fresh token), so a reloaded desk goes
        back into its call."""
        view = await self.staff_view(user)
        view["invites"] = await self.invites_for(user.departments)
        room = await self.staff_room(user, view["presence"])
        if room is not None:
            view["room"] = room
        return view

    async def staff_room(self, user: User, presence: str) -> dict[str, Any] | None:
        room_id, department = "", ""
        guest = await self.store.guest_room(user.username)
        entry = await self.store.room(guest) if guest else None
        if entry is not None:
            room_id = guest
            department = next((f.split(":", 1)[1] for f, v in entry.items()
                               if f.startswith("joined:") and v == user.username), "")
        elif presence == "in_call":
            ticket = await self.store.ticket(
                await self.store.tickets_of_staff_ringing(user.username))
            if ticket is not None and ticket.room_id and ticket.status == "connected":
                room_id, department = ticket.room_id, ticket.department
                entry = await self.store.room(room_id)
        room = self.rooms.get(room_id) if room_id else None
        if entry is None or room is None or room.closed:
            return None
        ticket = await self.store.ticket(entry.get("ticket_id", ""))
        token = await self.store.create_room_token(
            room_id, role="staff", participant_id=f"s-{user.username}",
            name=user.display_name, department=department, ticket_id=entry.get("ticket_id", ""))
        return {"room_id": room_id, "token": token, "guest": bool(guest),
                "ticket": await self.ticket_view(ticket) if ticket else None}

    async def push_staff_state(self, user: User) -> None:
        await self.sio.emit("staff:state", await self.staff_view(user),
                            to=f"staff:{user.username}", namespace="/staff")

    async def set_presence(self, user: User, state: str, reason: str = "") -> str:
        code, presence, events = await self.store.set_presence(user.username, state,
                                                               self.clock(), reason)
        if code != "ok":
            raise SignalError("bad_state", f"presence is {presence}")
        logger.info("staff %s is %s%s", user.username, presence, f" ({reason})" if reason else "")
        await self.apply(events)
        await self.push_staff_state(user)
        return presence

    async def decline(self, user: User, ticket_id: str) -> None:
        code, events = await self.store.decline(ticket_id, user.username, self.clock())
        if code != "ok":
            raise SignalError("not_offered", ticket_id)
        logger.info("staff %s declined ticket %s", user.username, ticket_id)
        await self.apply(events)
        await self.push_staff_state(user)

    # calls and rooms -----------------------------------------------------------------------------
    async def accept(self, user: User, ticket_id: str) -> dict[str, Any]:
        now = self.clock()
        if await self.store.accept(ticket_id, user.username, now) != "ok":
            raise SignalError("not_offered", ticket_id)
        ticket = await self.store.ticket(ticket_id)
        assert ticket is not None
        room_id = f"r{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{secrets.token_hex(3)}"
        self.rooms.open(room_id, RoomMeta(ticket_id=ticket_id, ticket_number=ticket.number,
                                          department=ticket.department, staff=user.username))
        await self.store.put_room(room_id, node=self.node_id, ticket_id=ticket_id,
                                  department=ticket.department, staff=user.username, now=now)
        token = await self.store.create_room_token(
            room_id, role="staff", participant_id=f"s-{user.username}",
            name=user.display_name, department=ticket.department, ticket_id=ticket_id)
        logger.info("ticket %s connected to staff %s in room %s", ticket_id, user.username,
                    room_id)
        ticket = await self.store.ticket(ticket_id)
        assert ticket is not None
        await self.notify_ticket(ticket_id, {"room": await self.applicant_room(ticket)})
        await self.push_staff_state(user)
        self._dirty_queues.add(ticket.department)
        # The departments named at the kiosk besides the main one are invited at once.
        for other in ticket.also:
            code = await self.invite(room_id, other, "", by_department=ticket.department,
                                     by=user)
            if code != "ok":
                logger.warning("room %s: could not invite %s (%s)", room_id, other, code)
        return {"room": {"room_id": room_id, "token": token},
                "ticket": await self.ticket_view(ticket)}

    # 会商: other departments invited into a live room -----------------------------------------
    async def room_departments(self, entry: dict[str, str]) -> list[str]:
        """The departments taking part in a room: its own, then those that joined."""
        joined = [f.split(":", 1)[1] for f in entry if f.startswith("joined:")]
        return [entry.get("department", ""), *sorted(joined)]

    @staticmethod
    def pending_invites(entry: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        for field, raw in entry.items():
            if field.startswith("invite:"):
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    continue
        return sorted(out, key=lambda i: i.get("created_at", 0))

    async def invite(self, room_id: str, department: str, note: str, *, by_department: str,
                     by: User) -> str:
        """Invite a department into a room: ok, or why not (gone, in_room, pending, full)."""
        entry = await self.store.room(room_id)
        if entry is None:
            return "gone"
        if department in await self.room_departments(entry):
            return "in_room"
        ticket = await self.store.ticket(entry.get("ticket_id", ""))
        invite = {"room_id": room_id, "department": department, "note": note,
                  "from_department": by_department, "invited_by": by.display_name,
                  "invited_by_username": by.username,
                  "ticket_id": entry.get("ticket_id", ""),
                  "ticket_number": ticket.number if ticket else "",
                  "created_at": self.clock()}
        code = await self.store.add_invite(room_id, department, invite, MAX_PENDING_INVITES)
        if code != "ok":
            return code
        await self.store.log("INVITE", ticket=entry.get("ticket_id", ""), department=department,
                             staff=by.username, detail=f"{room_id} from {by_department}")
        room = self.rooms.get(room_id)
        if room is not None:
            room.add_event("invite", department=department, note=note,
                           participant_id=f"{'g' if by.role == 'guide' else 's'}-{by.username}")
        logger.info("room %s: %s invites department %s", room_id, by.username, department)
        await self.sio.emit("room:invite", invite, to=f"dept:{department}", namespace="/staff")
        return "ok"

    async def invites_for(self, departments: tuple[str, ...]) -> list[dict[str, Any]]:
        """The pending invitations to any of these departments (a staff desk's on connect)."""
        wanted = set(departments)
        out = []
        for entry in await self.store.live_rooms():
            out += [i for i in self.pending_invites(entry) if i.get("department") in wanted]
        return out

    async def joined_by_invite(self, room: Room, user: User, department: str) -> None:
        """A staff member took a room's invitation: the others of the department are told, the
        ACD stops ringing them while they are in the room, and a reload finds the room again."""
        await self.sio.emit("room:invite_closed", {
            "room_id": room.room_id, "department": department, "reason": "taken",
            "by": user.display_name}, to=f"dept:{department}", namespace="/staff")
        room.add_event("invite_taken", department=department, participant_id=f"s-{user.username}")
        await self.store.log("JOIN", ticket=room.meta.ticket_id,
                             department=department, staff=user.username, detail=room.room_id)
        await self.store.set_guest(user.username, room.room_id)
        state = await self.store.staff_state(user.username)
        # Away (not in_call, which the queue script keeps for its own calls) takes them out of
        # the ACD; from wrap-up too, which would otherwise end in available while in the room.
        if state.get("presence") in ("available", "wrap_up"):
            try:
                await self.set_presence(user, "away", CONSULT_REASON)
            except SignalError:
                logger.info("staff %s: presence not changed for the room", user.username)

    async def guest_left(self, username: str, room_id: str) -> None:
        """An invited staff member is out of the room: back to available if we set them away."""
        if await self.store.guest_room(username) != room_id:
            return
        await self.store.set_guest(username, None)
        state = await self.store.staff_state(username)
        user = await self.store.user(username)
        if user is not None and state.get("presence") == "away" \
                and state.get("reason") == CONSULT_REASON:
            try:
                await self.set_presence(user, "available")
            except SignalError:
                logger.info("staff %s: not set available after the room", username)

    async def _on_recording_failed(self, room: Room) -> None:
        """A room's recording stopped (a full disk) while the call goes on: alert supervisors."""
        reason = room.recorder.failed
        if reason is None:
            return
        try:
            await self.archive.alerts.raise_once(
                reason, room.room_id, room_id=room.room_id,
                ticket_number=room.meta.ticket_number,
                department=room.meta.department,
                detail=room.recorder.failure_detail)
        except Exception:
            logger.exception("room %s: raising the recording alert failed", room.room_id)

    async def _on_room_closed(self, room: Room, summary: dict[str, Any] | None) -> None:
        ticket_id = room.meta.ticket_id
        try:
            if summary is not None:
                await self.archive.index(summary)
            entry = await self.store.room(room.room_id) or {}
            await self.store.delete_room(room.room_id)
            for invite in self.pending_invites(entry):
                await self.sio.emit("room:invite_closed", {
                    "room_id": room.room_id, "department": invite.get("department", ""),
                    "reason": "ended"}, to=f"dept:{invite.get('department', '')}",
                    namespace="/staff")
            for field, username in entry.items():
                if field.startswith("joined:"):
                    await self.guest_left(username, room.room_id)
            if ticket_id:
                _staff, events = await self.store.finish_ticket(ticket_id, self.clock())
                await self.apply(events)
        except Exception:
            logger.exception("room %s: closing bookkeeping failed (ticket %s)", room.room_id,
                             ticket_id)
