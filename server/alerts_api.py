"""Storage alerts for supervisors: GET /api/alerts, POST /api/alerts/{id}/ack, and the watch that
raises them in this process (a room's recording cut short by a failed write, free space under
the recordings directory below ``recordings_min_free_mb``). ``setup(app)`` adds both."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

from aiohttp import web

from recordings.alerts import free_mb
from server.auth import REVIEWER_ROLES, ApiError, require_user
from server.keys import ARCHIVE, CONFIG, ROOMS

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

# A failed room is seen within a second; free space is looked at every 30 s (statvfs is cheap,
# but a disk does not fill in less).
ROOM_CHECK_S = 1.0
SPACE_CHECK_S = 30.0
_ALERT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@routes.get("/api/alerts")
async def alerts(request: web.Request) -> web.Response:
    """Alerts of the last 30 days, newest first; a scoped supervisor gets their departments'
    rooms and the storage-wide ones."""
    user = await require_user(request, REVIEWER_ROLES)
    found = await request.app[ARCHIVE].alerts.entries(user.departments)
    return web.json_response({"ok": True, "alerts": found,
                              "unacknowledged": sum(not a["acknowledged"] for a in found)})


@routes.post("/api/alerts/{alert_id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    user = await require_user(request, REVIEWER_ROLES)
    alert_id = request.match_info["alert_id"]
    archive = request.app[ARCHIVE]
    alert = await archive.alerts.get(alert_id) if _ALERT_ID.match(alert_id) else None
    department = (alert or {}).get("department", "")
    if alert is None or (user.departments and department
                         and department not in user.departments):
        raise ApiError(404, "not_found", "没有这条告警。", "No such alert.")
    if await archive.alerts.acknowledge(alert_id, user.username):
        await archive.audit.append(user.username, "alert_ack",
                                   recording_id=alert.get("room_id", ""), department=department,
                                   remote=request.remote or "",
                                   detail=f"{alert.get('kind', '')} {alert_id}")
    entry = next((a for a in await archive.alerts.entries(user.departments)
                  if a["id"] == alert_id), None)
    return web.json_response({"ok": True, "alert": entry})


async def watch(app: web.Application, room_interval: float = ROOM_CHECK_S,
                space_interval: float = SPACE_CHECK_S) -> None:
    """Raise an alert for every room of this process whose recording failed, and for low free
    space (at start, then every ``space_interval``)."""
    config, archive = app[CONFIG], app[ARCHIVE]
    seen: set[str] = set()
    subject = str(config.recordings_dir.resolve())
    next_space = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            for room in app[ROOMS].rooms():
                reason = room.recorder.failed
                if reason is None or room.room_id in seen:
                    continue
                seen.add(room.room_id)
                await archive.alerts.raise_once(
                    reason, room.room_id, room_id=room.room_id,
                    ticket_number=str(room.meta.get("ticket_number") or ""),
                    department=str(room.meta.get("department") or ""),
                    detail=room.recorder.failure_detail)
            if loop.time() >= next_space and config.recordings_min_free_mb > 0:
                next_space = loop.time() + space_interval
                free = await asyncio.to_thread(free_mb, config.recordings_dir)
                if free < config.recordings_min_free_mb:
                    if await archive.alerts.raise_once(
                            "low_space", subject,
                            detail=f"{free:.0f} MB free under {subject} "
                                   f"(minimum {config.recordings_min_free_mb} MB)"):
                        logger.warning("recordings: only %.0f MB free under %s", free, subject)
                else:
                    await archive.alerts.clear("low_space", subject)
        except Exception:
            logger.exception("storage alerts: check failed; trying again")
        await asyncio.sleep(room_interval)


async def _watch_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(watch(app), name="storage-alerts")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setup(app: web.Application) -> None:
    """The routes and the watch (after the rooms exist: the app's other contexts first)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_watch_ctx)
