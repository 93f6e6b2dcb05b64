"""Composite MP4 export of a recording over HTTP: start it, follow its progress, download it.
The jobs themselves are the pool in recordings/jobs.py (``EXPORTS``)."""

from __future__ import annotations

import logging

from aiohttp import web

from recordings.jobs import NoSuchRecording, TooManyExports
from rooms.roles import REVIEWER_ROLES
from server.http.auth import require_user
from server.http.recordings import audit_access, visible
from server.keys import EXPORTS
from signaling.errors import SignalError

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/api/recordings/{recording_id}/export")
async def start_export(request: web.Request) -> web.Response:
    user = await require_user(request, REVIEWER_ROLES)
    entry = await visible(request, user)
    try:
        job, started = await request.app[EXPORTS].start(entry["recording_id"])
    except TooManyExports:
        raise SignalError("busy.exports") from None
    except NoSuchRecording:
        raise SignalError("not_found.recording") from None
    await audit_access(request, user, "export", entry["recording_id"], entry["department"],
                       detail="started" if started else job["state"])
    if started:
        logger.info("%s started the export of recording %s", user.username,
                    entry["recording_id"])
    return web.json_response({"ok": True, "export": job}, status=202 if started else 200)


@routes.get("/api/recordings/{recording_id}/export")
async def export_status(request: web.Request) -> web.Response:
    user = await require_user(request, REVIEWER_ROLES)
    entry = await visible(request, user)
    return web.json_response({"ok": True,
                              "export": await request.app[EXPORTS].status(entry["recording_id"])})


@routes.get("/api/recordings/{recording_id}/export.mp4")
async def export_file(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, REVIEWER_ROLES)
    entry = await visible(request, user)
    jobs = request.app[EXPORTS]
    recording_id = entry["recording_id"]
    if (await jobs.status(recording_id))["state"] != "done":
        raise SignalError("not_ready")
    path = jobs.path(recording_id)
    # One audit entry per download start, not per Range request of a seeking player.
    range_header = request.headers.get("Range", "")
    if not range_header or range_header.replace(" ", "").startswith("bytes=0-"):
        await audit_access(request, user, "export_file", recording_id, entry["department"],
                           detail=path.name)
    return web.FileResponse(path, headers={
        "Cache-Control": "private, no-store", "Content-Type": "video/mp4",
        "Content-Disposition": f'attachment; filename="yunzhen-{recording_id}.mp4"'})
