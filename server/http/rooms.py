"""Who may enter a live room besides the applicant and the staff member who accepted: a
supervisor listening in (silent), staff of another department invited for a 会商, and the hall
guide who made the ticket. Each gets a room token here; the room itself checks nothing more.

A room lives in one process (its RoomManager, `ROOMS`), reached at its node's base (`/n/<name>`
behind the launcher's nginx); these handlers answer 409 other_node with that base for a room
hosted elsewhere, and the page asks there. `where` tells a room's participant its room's base
now (after the room moved to another node). See docs/operations.md, "Several processes and
machines"."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from rooms.roles import REVIEWER_ROLES, Role, participant_id
from rooms.room import Room
from server.http.auth import require_user
from server.http.payload import SAFE_ID, json_object
from server.http.remote import client_address
from server.keys import (
    ARCHIVE,
    CONSULT,
    DIRECTORY,
    INTERPRETERS,
    NODE,
    NODES,
    ROOMS,
    SNAPSHOTS,
    STORE,
)
from signaling.accounts import User
from signaling.errors import SignalError
from signaling.room_directory import RoomEntry
from signaling.skills import room_role, skill_of
from signaling.states import TicketStatus

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

NOTE_MAX = 200


async def _entry(request: web.Request) -> RoomEntry:
    """The live room of the URL, or 404."""
    room_id = request.match_info["room_id"]
    entry = await request.app[DIRECTORY].entry(room_id) if SAFE_ID.match(room_id) else None
    if entry is None:
        raise SignalError("not_found.room")
    return entry


async def _hosted(request: web.Request, entry: RoomEntry) -> Room:
    """The room object, when this process hosts it; 409 other_node with the hosting node's base
    when another does (the page asks there again)."""
    room = request.app[ROOMS].get(entry.room_id)
    if room is None or room.closed:
        if entry.node and entry.node != request.app[NODE]:
            raise SignalError("other_node", extra={
                "base": await request.app[NODES].base_of(entry.node)})
        raise SignalError("not_found.room")
    return room


def _in_scope(user: User, departments: list[str]) -> bool:
    """A supervisor scoped to departments sees the rooms any of them takes part in."""
    if user.role != Role.SUPERVISOR or not user.departments:
        return True
    return bool(set(user.departments) & set(departments))


def _grant(request: web.Request, room_id: str, token: str, role: str,
           participant_id: str) -> dict[str, str]:
    """A room token, with the base of this process (which hosts the room)."""
    return {"room_id": room_id, "token": token, "role": role, "participant_id": participant_id,
            "base": request.app[NODES].base}


@routes.get("/api/rooms")
async def live_rooms(request: web.Request) -> web.Response:
    """Live rooms for the supervisor's wallboard."""
    user = await require_user(request, REVIEWER_ROLES)
    store = request.app[STORE]
    out = []
    for entry in await request.app[DIRECTORY].live():
        if not _in_scope(user, entry.departments):
            continue
        room = request.app[ROOMS].get(entry.room_id)
        ticket = await store.ticket(entry.ticket_id)
        count = len(room.participants_info()) if room is not None and not room.closed \
            else entry.participants
        out.append({
            "room_id": entry.room_id, "departments": entry.departments,
            "ticket_id": entry.ticket_id, "ticket_number": ticket.number if ticket else "",
            "staff": entry.staff, "started_at": entry.created_at, "participants": count,
            "invites": [i.department for i in entry.invites],
            "here": room is not None,
        })
    return web.json_response({"ok": True, "now": time.time(), "rooms": out})


@routes.get("/api/rooms/{room_id}/where")
async def where(request: web.Request) -> web.Response:
    """Where a live room is hosted now, for a holder of one of its room tokens (header
    X-Room-Token): its base, "" for a process reached without a prefix."""
    token = request.headers.get("X-Room-Token", "")
    grant = await request.app[DIRECTORY].token(token) if 0 < len(token) <= 128 else None
    if grant is None or grant.get("room_id") != request.match_info["room_id"]:
        raise SignalError("forbidden.room_token")
    entry = await _entry(request)
    return web.json_response({"ok": True, "room_id": entry.room_id,
                              "base": await request.app[NODES].base_of(entry.node)})


@routes.post("/api/rooms/{room_id}/observe")
async def observe(request: web.Request) -> web.Response:
    """A supervisor listens in: a token with role supervisor (receives all, publishes nothing)."""
    user = await require_user(request, REVIEWER_ROLES)
    entry = await _entry(request)
    if not _in_scope(user, entry.departments):
        raise SignalError("forbidden.observe_scope")
    room = await _hosted(request, entry)
    listener = participant_id(Role.SUPERVISOR, user.username)
    token = await request.app[DIRECTORY].create_token(
        room.room_id, role=Role.SUPERVISOR, participant_id=listener, name=user.display_name,
        department="", ticket_id=entry.ticket_id)
    # Listening in is access to a consultation as much as replaying its recording.
    await request.app[ARCHIVE].audit.append(
        user.username, "observe", recording_id=room.room_id, remote=client_address(request),
        department=entry.department, detail=",".join(entry.departments))
    logger.info("supervisor %s listens in on room %s", user.username, room.room_id)
    return web.json_response({"ok": True, "room": _grant(request, room.room_id, token,
                                                         Role.SUPERVISOR, listener)})


@routes.post("/api/rooms/{room_id}/invite")
async def invite(request: web.Request) -> web.Response:
    """A staff member or the hall guide in the room invites another department (会商), with an
    optional note."""
    user = await require_user(request, (Role.STAFF, Role.GUIDE))
    data = await json_object(request, 4096)
    department, note = data.get("department"), data.get("note", "")
    if not isinstance(department, str) or not SAFE_ID.match(department):
        raise SignalError("invalid_payload.invite_department")
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise SignalError("invalid_payload.note", max=NOTE_MAX)
    entry = await _entry(request)
    room = await _hosted(request, entry)
    me = room.participant(participant_id(
        Role.GUIDE if user.role == Role.GUIDE else Role.STAFF, user.username))
    if me is None:
        raise SignalError("forbidden.invite_outsider")
    if await request.app[STORE].department(department) is None:
        raise SignalError("unknown_department.invite")
    by_department = me.department or entry.department
    if skill_of(department):
        code = await request.app[INTERPRETERS].ring(room, department, by_department=by_department,
                                                    by=user)
    else:
        code = await request.app[CONSULT].invite(room, department, note.strip(),
                                                 by_department=by_department, by=user)
    if code == "unavailable":
        raise SignalError("no_interpreter")
    if code == "in_room":
        raise SignalError("in_room.department")
    if code == "pending":
        raise SignalError("pending")
    if code == "full":
        raise SignalError("too_many_invites")
    if code != "ok":
        raise SignalError("not_found.room")
    return web.json_response({"ok": True, "department": department})


@routes.post("/api/rooms/{room_id}/join")
async def join(request: web.Request) -> web.Response:
    """Staff of an invited department (the first one takes the invitation), or the hall guide
    who made the ticket, get a token for the room."""
    user = await require_user(request, (Role.STAFF, Role.GUIDE))
    entry = await _entry(request)
    store, directory = request.app[STORE], request.app[DIRECTORY]
    ticket_id = entry.ticket_id
    if user.role == Role.GUIDE:
        if not ticket_id or await store.ticket_guide(ticket_id) != user.username:
            raise SignalError("forbidden.join_other_guide")
        room = await _hosted(request, entry)
        guide = participant_id(Role.GUIDE, user.username)
        token = await directory.create_token(
            room.room_id, role=Role.GUIDE, participant_id=guide, name=user.display_name,
            department="", ticket_id=ticket_id)
        await store.log("JOIN", ticket=ticket_id, department=entry.department,
                        staff=user.username, detail=f"{room.room_id} guide")
        logger.info("guide %s joins room %s", user.username, room.room_id)
        return web.json_response({"ok": True,
                                  "room": _grant(request, room.room_id, token, Role.GUIDE, guide)})

    mine = [d for d in user.departments if d in entry.invited or d in entry.joined]
    if not mine:
        raise SignalError("forbidden.join_uninvited")
    room = await _hosted(request, entry)
    department = entry.joined_as(user.username) \
        or await request.app[CONSULT].take_invitation(room, user, mine)
    # An interpreter pool's member joins as the room's interpreter, a department's as staff.
    role = room_role(department)
    staff = participant_id(role, user.username)
    token = await directory.create_token(
        room.room_id, role=role, participant_id=staff, name=user.display_name,
        department=department, ticket_id=ticket_id)
    ticket = await store.ticket(ticket_id)
    logger.info("staff %s joins room %s for department %s", user.username, room.room_id,
                department)
    return web.json_response({
        "ok": True, "room": _grant(request, room.room_id, token, role, staff),
        "department": department,
        "ticket": await request.app[SNAPSHOTS].ticket(ticket) if ticket else None})


@routes.post("/api/rooms/{room_id}/leave")
async def leave(request: web.Request) -> web.Response:
    """An invited staff member leaves the room (the room goes on): back to available."""
    user = await require_user(request, (Role.STAFF,))
    room_id = request.match_info["room_id"]
    if not SAFE_ID.match(room_id) \
            or await request.app[DIRECTORY].guest_room(user.username) != room_id:
        raise SignalError("forbidden.leave_uninvited")
    await request.app[CONSULT].guest_left(user.username, room_id)
    return web.json_response({"ok": True})


@routes.get("/api/rooms/mine")
async def mine(request: web.Request) -> web.Response:
    """A hall guide's consultations of the last day that are still going on."""
    user = await require_user(request, (Role.GUIDE,))
    store, directory = request.app[STORE], request.app[DIRECTORY]
    out: list[dict[str, Any]] = []
    for ticket in await store.guide_tickets(user.username, time.time()):
        if ticket.status not in (TicketStatus.WAITING, TicketStatus.RINGING,
                                 TicketStatus.CONNECTED):
            continue
        view: dict[str, Any] = {**await request.app[SNAPSHOTS].ticket(ticket)}
        live = ticket.status == TicketStatus.CONNECTED and ticket.room_id \
            and await directory.entry(ticket.room_id) is not None
        view["room_id"] = ticket.room_id if live else ""
        out.append(view)
    return web.json_response({"ok": True, "user": user.public(), "tickets": out})
