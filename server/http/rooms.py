"""Who may enter a live room besides the applicant and the staff member who accepted: a
supervisor listening in (silent), staff of another department invited for a 会商, and the hall
guide who made the ticket. Each gets a room token here; the room itself checks nothing more.

A room lives in one process (`hub.rooms`); its token only works on that process, so these
handlers answer 409 other_node for a room hosted elsewhere rather than hand out a useless token
(see docs/operations.md on sticky sessions)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from aiohttp import web

from rooms.room import Room
from server.http.auth import REVIEWER_ROLES, require_user
from server.http.payload import json_object
from server.keys import ARCHIVE, HUB, STORE
from signaling.errors import SignalError
from signaling.store import User

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

_ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DEPT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NOTE_MAX = 200


async def _entry(request: web.Request) -> dict[str, str]:
    """The live room of the URL, or 404."""
    room_id = request.match_info["room_id"]
    entry = await request.app[STORE].room(room_id) if _ROOM_ID.match(room_id) else None
    if entry is None:
        raise SignalError("not_found.room")
    return entry


def _hosted(request: web.Request, entry: dict[str, str]) -> Room:
    """The room object, when this process hosts it."""
    hub = request.app[HUB]
    room = hub.rooms.get(entry["room_id"])
    if room is None or room.closed:
        if entry.get("node") and entry["node"] != hub.node_id:
            raise SignalError("other_node")
        raise SignalError("not_found.room")
    return room


def _in_scope(user: User, departments: list[str]) -> bool:
    """A supervisor scoped to departments sees the rooms any of them takes part in."""
    if user.role != "supervisor" or not user.departments:
        return True
    return bool(set(user.departments) & set(departments))


def _grant(room_id: str, token: str, role: str, participant_id: str) -> dict[str, str]:
    return {"room_id": room_id, "token": token, "role": role, "participant_id": participant_id}


@routes.get("/api/rooms")
async def live_rooms(request: web.Request) -> web.Response:
    """Live rooms for the supervisor's wallboard."""
    user = await require_user(request, REVIEWER_ROLES)
    hub, store = request.app[HUB], request.app[STORE]
    out = []
    for entry in await store.live_rooms():
        departments = await hub.room_departments(entry)
        if not _in_scope(user, departments):
            continue
        room = hub.rooms.get(entry["room_id"])
        ticket = await store.ticket(entry.get("ticket_id", ""))
        count = len(room.participants_info()) if room is not None and not room.closed \
            else int(entry.get("participants") or 0)
        out.append({
            "room_id": entry["room_id"], "departments": departments,
            "ticket_id": entry.get("ticket_id", ""),
            "ticket_number": ticket.number if ticket else "",
            "staff": entry.get("staff", ""), "started_at": float(entry.get("created_at") or 0),
            "participants": count,
            "invites": [i.get("department") for i in hub.pending_invites(entry)],
            "here": room is not None,
        })
    return web.json_response({"ok": True, "now": time.time(), "rooms": out})


@routes.post("/api/rooms/{room_id}/observe")
async def observe(request: web.Request) -> web.Response:
    """A supervisor listens in: a token with role supervisor (receives all, publishes nothing)."""
    user = await require_user(request, REVIEWER_ROLES)
    entry = await _entry(request)
    hub = request.app[HUB]
    departments = await hub.room_departments(entry)
    if not _in_scope(user, departments):
        raise SignalError("forbidden.observe_scope")
    room = _hosted(request, entry)
    participant_id = f"v-{user.username}"
    token = await request.app[STORE].create_room_token(
        room.room_id, role="supervisor", participant_id=participant_id, name=user.display_name,
        department="", ticket_id=entry.get("ticket_id", ""))
    # Listening in is access to a consultation as much as replaying its recording.
    await request.app[ARCHIVE].audit.append(
        user.username, "observe", recording_id=room.room_id, remote=request.remote or "",
        department=entry.get("department", ""), detail=",".join(departments))
    logger.info("supervisor %s listens in on room %s", user.username, room.room_id)
    return web.json_response({"ok": True, "room": _grant(room.room_id, token, "supervisor",
                                                         participant_id)})


@routes.post("/api/rooms/{room_id}/invite")
async def invite(request: web.Request) -> web.Response:
    """A staff member or the hall guide in the room invites another department (会商), with an
    optional note."""
    user = await require_user(request, ("staff", "guide"))
    data = await json_object(request, 4096)
    department, note = data.get("department"), data.get("note", "")
    if not isinstance(department, str) or not _DEPT_ID.match(department):
        raise SignalError("invalid_payload.invite_department")
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise SignalError("invalid_payload.note", max=NOTE_MAX)
    entry = await _entry(request)
    room = _hosted(request, entry)
    me = room.participant(f"{'g' if user.role == 'guide' else 's'}-{user.username}")
    if me is None:
        raise SignalError("forbidden.invite_outsider")
    hub = request.app[HUB]
    if await request.app[STORE].department(department) is None:
        raise SignalError("unknown_department.invite")
    code = await hub.invite(room.room_id, department, note.strip(),
                            by_department=me.department or entry.get("department", ""), by=user)
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
    user = await require_user(request, ("staff", "guide"))
    entry = await _entry(request)
    store, hub = request.app[STORE], request.app[HUB]
    ticket_id = entry.get("ticket_id", "")
    if user.role == "guide":
        if not ticket_id or await store.ticket_guide(ticket_id) != user.username:
            raise SignalError("forbidden.join_other_guide")
        room = _hosted(request, entry)
        participant_id = f"g-{user.username}"
        token = await store.create_room_token(
            room.room_id, role="guide", participant_id=participant_id, name=user.display_name,
            department="", ticket_id=ticket_id)
        await store.log("JOIN", ticket=ticket_id, department=entry.get("department", ""),
                        staff=user.username, detail=f"{room.room_id} guide")
        logger.info("guide %s joins room %s", user.username, room.room_id)
        return web.json_response({"ok": True,
                                  "room": _grant(room.room_id, token, "guide", participant_id)})

    invited = {i["department"] for i in hub.pending_invites(entry)}
    joined = {f.split(":", 1)[1]: v for f, v in entry.items() if f.startswith("joined:")}
    mine = [d for d in user.departments if d in invited or d in joined]
    if not mine:
        raise SignalError("forbidden.join_uninvited")
    room = _hosted(request, entry)
    participant_id = f"s-{user.username}"
    department = next((d for d, who in joined.items() if who == user.username), "")
    if not department:
        if room.participant(participant_id) is not None:
            raise SignalError("in_room.self")
        state = await store.staff_state(user.username)
        if state.get("presence") in ("in_call", "ringing"):
            raise SignalError("busy.in_call")
        for candidate in mine:
            code = await store.take_invite(room.room_id, candidate, user.username)
            if code == "ok":
                department = candidate
                break
        if not department:
            raise SignalError("taken")
        await hub.joined_by_invite(room, user, department)
    token = await store.create_room_token(
        room.room_id, role="staff", participant_id=participant_id, name=user.display_name,
        department=department, ticket_id=ticket_id)
    ticket = await store.ticket(ticket_id)
    logger.info("staff %s joins room %s for department %s", user.username, room.room_id,
                department)
    return web.json_response({
        "ok": True, "room": _grant(room.room_id, token, "staff", participant_id),
        "department": department,
        "ticket": await hub.ticket_view(ticket) if ticket else None})


@routes.post("/api/rooms/{room_id}/leave")
async def leave(request: web.Request) -> web.Response:
    """An invited staff member leaves the room (the room goes on): back to available."""
    user = await require_user(request, ("staff",))
    room_id = request.match_info["room_id"]
    store = request.app[STORE]
    if not _ROOM_ID.match(room_id) or await store.guest_room(user.username) != room_id:
        raise SignalError("forbidden.leave_uninvited")
    await request.app[HUB].guest_left(user.username, room_id)
    return web.json_response({"ok": True})


@routes.get("/api/rooms/mine")
async def mine(request: web.Request) -> web.Response:
    """A hall guide's consultations of the last day that are still going on."""
    user = await require_user(request, ("guide",))
    store, hub = request.app[STORE], request.app[HUB]
    out: list[dict[str, Any]] = []
    for ticket in await store.guide_tickets(user.username, time.time()):
        if ticket.status not in ("waiting", "ringing", "connected"):
            continue
        view = await hub.ticket_view(ticket)
        live = ticket.status == "connected" and ticket.room_id \
            and await store.room(ticket.room_id) is not None
        view["room_id"] = ticket.room_id if live else ""
        out.append(view)
    return web.json_response({"ok": True, "user": user.public(), "tickets": out})
