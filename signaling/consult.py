"""会商: staff of another department invited into a live room. An invitation goes to every desk
of the department; the first member to join takes it; the ACD does not ring them while they are
in the room, and they are back on duty when they leave it or it ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rooms.roles import Role, participant_id
from rooms.room import Room
from signaling.accounts import Accounts, User
from signaling.errors import SignalError
from signaling.fanout import Fanout
from signaling.room_directory import Invitation, RoomDirectory, RoomEntry
from signaling.schema import Invite
from signaling.skills import room_role, skill_of
from signaling.staff_presence import StaffPresence
from signaling.states import Presence
from signaling.store import Store

logger = logging.getLogger(__name__)

# Pending 会商 invitations per room: enough for a few departments, not a broadcast.
MAX_PENDING_INVITES = 3
# Why a staff member invited into a room is away: the ACD does not ring them while they are in it.
CONSULT_REASON = "consult"


class Consult:
    def __init__(self, store: Store, accounts: Accounts, directory: RoomDirectory,
                 fanout: Fanout, presence: StaffPresence,
                 now: Callable[[], float] = time.time) -> None:
        self._store, self._accounts, self._directory, self._fanout = (
            store, accounts, directory, fanout)
        self._presence, self._now = presence, now

    async def invite(self, room: Room, department: str, note: str, *, by_department: str,
                     by: User) -> str:
        """Invite a department into a room: ok, or why not (gone, in_room, pending, full)."""
        entry = await self._directory.entry(room.room_id)
        if entry is None:
            return "gone"
        if department in entry.departments:
            return "in_room"
        ticket = await self._store.ticket(entry.ticket_id)
        invitation = Invitation(
            room_id=room.room_id, department=department, note=note,
            from_department=by_department, invited_by=by.display_name,
            invited_by_username=by.username, ticket_id=entry.ticket_id,
            ticket_number=ticket.number if ticket else "", created_at=self._now())
        code = await self._directory.add_invite(invitation, MAX_PENDING_INVITES)
        if code != "ok":
            return code
        await self._store.log("INVITE", ticket=entry.ticket_id, department=department,
                              staff=by.username, detail=f"{room.room_id} from {by_department}")
        inviter = Role.GUIDE if by.role == Role.GUIDE else Role.STAFF
        room.add_event("invite", department=department, note=note,
                       participant_id=participant_id(inviter, by.username))
        logger.info("room %s: %s invites department %s", room.room_id, by.username, department)
        await self._fanout.invite(invitation.payload())
        return "ok"

    async def invites_for(self, departments: tuple[str, ...]) -> list[Invite]:
        """The pending invitations to any of these departments (a staff desk's on connect)."""
        wanted = set(departments)
        return [i.payload() for entry in await self._directory.live() for i in entry.invites
                if i.department in wanted]

    async def take_invitation(self, room: Room, user: User, departments: list[str]) -> str:
        """A staff member joins the room for the first of `departments` whose invitation is
        still pending, and takes it: returns that department. Refused while they are in the room
        or in a call of their own, and when colleagues took every one (taken)."""
        if any(room.participant(participant_id(role, user.username)) is not None
               for role in (Role.STAFF, Role.INTERPRETER)):
            raise SignalError("in_room.self")
        state = await self._store.staff_state(user.username)
        if state.get("presence") in (Presence.IN_CALL, Presence.RINGING):
            raise SignalError("busy.in_call")
        for department in departments:
            if await self._directory.take_invite(room.room_id, department, user.username) == "ok":
                await self._joined(room, user, department)
                return department
        raise SignalError("taken")

    async def _joined(self, room: Room, user: User, department: str) -> None:
        """The others of the department are told, the ACD stops ringing the invitee while they
        are in the room, and a reload finds the room again."""
        await self._fanout.invite_closed({"room_id": room.room_id, "department": department,
                                          "reason": "taken", "by": user.display_name})
        role = room_role(department)
        room.add_event("invite_taken", department=department, role=role,
                       participant_id=participant_id(role, user.username))
        await self._store.log("JOIN", ticket=room.meta.ticket_id,
                              department=department, staff=user.username, detail=room.room_id)
        if not skill_of(department):
            # The department took part: the applicant may rate it after the call (an
            # interpreter pool is not a department that served them).
            await self._store.set_ticket_joined(room.meta.ticket_id, department, user.username)
        await self._directory.set_guest(user.username, room.room_id)
        state = await self._store.staff_state(user.username)
        # Away (not in_call, which the queue script keeps for its own calls) takes them out of
        # the ACD; from wrap-up too, which would otherwise end in available while in the room.
        if state.get("presence") in (Presence.AVAILABLE, Presence.WRAP_UP):
            try:
                await self._presence.set(user, Presence.AWAY, CONSULT_REASON)
            except SignalError:
                logger.info("staff %s: presence not changed for the room", user.username)

    async def guest_left(self, username: str, room_id: str) -> None:
        """An invited staff member is out of the room: back to available if we set them away."""
        if await self._directory.guest_room(username) != room_id:
            return
        await self._directory.set_guest(username, None)
        state = await self._store.staff_state(username)
        user = await self._accounts.user(username)
        if user is not None and state.get("presence") == Presence.AWAY \
                and state.get("reason") == CONSULT_REASON:
            try:
                await self._presence.set(user, Presence.AVAILABLE)
            except SignalError:
                logger.info("staff %s: not set available after the room", username)

    async def room_ended(self, entry: RoomEntry) -> None:
        """The pending invitations are withdrawn, the invitees are back on duty."""
        for invitation in entry.invites:
            await self._fanout.invite_closed({"room_id": entry.room_id,
                                              "department": invitation.department,
                                              "reason": "ended"})
        for username in entry.joined.values():
            await self.guest_left(username, entry.room_id)
