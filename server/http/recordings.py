"""The recordings supervisors review: the filtered list, one recording with its timeline, its
media files and legal hold. Every access is audited (the auditor reads it: server/http/audit.py),
and a scoped supervisor sees only their departments' recordings (others answer like unknown
ones)."""

from __future__ import annotations

import logging
import math
from typing import Any

from aiohttp import web

from recordings.archive import RecordingFilter
from rooms.roles import REVIEWER_ROLES, Role
from server.http.auth import require_user
from server.http.payload import SAFE_ID, json_object, time_range
from server.http.remote import client_address
from server.keys import ARCHIVE
from signaling.accounts import User
from signaling.errors import SignalError

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _scope(user: User) -> tuple[str, ...]:
    """The departments a reviewer may see recordings of; empty: all of them."""
    return user.departments if user.role == Role.SUPERVISOR else ()


async def audit_access(request: web.Request, user: User, action: str, recording_id: str = "",
                       department: str = "", detail: str = "") -> None:
    await request.app[ARCHIVE].audit.append(user.username, action, recording_id=recording_id,
                                            remote=client_address(request),
                                            department=department, detail=detail)


def _number(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise SignalError("invalid_payload.seconds", name=name)
    return value


def _filters(request: web.Request) -> RecordingFilter:
    query = request.query
    known = {"from", "to", "department", "staff", "rating", "min_duration", "max_duration",
             "incomplete"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise SignalError("invalid_payload.filters", filters=", ".join(unknown))
    start, end = time_range(request)
    department = query.get("department", "").strip() or None
    if department is not None and not SAFE_ID.match(department):
        raise SignalError("invalid_payload.department_id")
    staff = query.get("staff", "").strip() or None
    if staff is not None and len(staff) > 64:
        raise SignalError("invalid_payload.staff")
    rating: int | None = None
    raw_rating = query.get("rating", "").strip()
    if raw_rating:
        if raw_rating == "none":
            rating = 0
        elif raw_rating in ("1", "2", "3", "4", "5"):
            rating = int(raw_rating)
        else:
            raise SignalError("invalid_payload.rating")
    low, high = _number(request, "min_duration"), _number(request, "max_duration")
    if low is not None and high is not None and high < low:
        raise SignalError("invalid_payload.duration_order")
    incomplete: bool | None = None
    raw = query.get("incomplete", "").strip().lower()
    if raw:
        if raw not in ("1", "0", "true", "false"):
            raise SignalError("invalid_payload.incomplete")
        incomplete = raw in ("1", "true")
    return RecordingFilter(start=start, end=end, department=department, staff=staff,
                           rating=rating, min_duration=low, max_duration=high,
                           incomplete=incomplete)


@routes.get("/api/recordings")
async def recordings(request: web.Request) -> web.Response:
    user = await require_user(request, REVIEWER_ROLES)
    filters = _filters(request)
    found = await request.app[ARCHIVE].list(filters, _scope(user))
    await audit_access(request, user, "list", detail=request.query_string[:500])
    return web.json_response({"ok": True, "recordings": found})


async def visible(request: web.Request, user: User) -> dict[str, Any]:
    """The index entry of the recording in the URL, if it exists and is in the user's scope;
    out of scope answers exactly like a recording that does not exist."""
    entry = await request.app[ARCHIVE].entry(request.match_info["recording_id"])
    scope = _scope(user)
    if entry is None or (scope and entry["department"] not in scope):
        raise SignalError("not_found.recording")
    return entry


@routes.get("/api/recordings/{recording_id}")
async def recording(request: web.Request) -> web.Response:
    user = await require_user(request, REVIEWER_ROLES)
    entry = await visible(request, user)
    found = await request.app[ARCHIVE].get(entry["recording_id"])
    if found is None:
        raise SignalError("not_found.recording")
    entry, timeline = found
    await audit_access(request, user, "view", entry["recording_id"], entry["department"])
    return web.json_response({"ok": True, "recording": entry, "timeline": timeline})


@routes.get("/api/recordings/{recording_id}/files/{name}")
async def recording_file(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, REVIEWER_ROLES)
    entry = await visible(request, user)
    path = await request.app[ARCHIVE].file(entry["recording_id"], request.match_info["name"])
    if path is None:
        raise SignalError("not_found.recording")
    # A player asks for the same file in many Range requests: one audit entry per download
    # start (no Range, or a range from byte 0).
    range_header = request.headers.get("Range", "")
    if not range_header or range_header.replace(" ", "").startswith("bytes=0-"):
        await audit_access(request, user, "file", entry["recording_id"], entry["department"],
                           detail=path.name)
    # FileResponse answers Range requests, so the player can seek without downloading it all.
    return web.FileResponse(path, headers={"Cache-Control": "private, no-store"})


@routes.post("/api/recordings/{recording_id}/hold")
async def recording_hold(request: web.Request) -> web.Response:
    """Put a recording on legal hold (retention never purges it) or release it."""
    user = await require_user(request, (Role.ADMIN,))
    data = await json_object(request, 1024)
    hold = data.get("hold")
    if not isinstance(hold, bool):
        raise SignalError("invalid_payload.hold")
    entry = await request.app[ARCHIVE].set_hold(request.match_info["recording_id"], hold)
    if entry is None:
        raise SignalError("not_found.recording")
    await audit_access(request, user, "hold" if hold else "release", entry["recording_id"],
                       entry["department"])
    logger.info("admin %s %s recording %s", user.username,
                "held" if hold else "released", entry["recording_id"])
    return web.json_response({"ok": True, "recording": entry})
