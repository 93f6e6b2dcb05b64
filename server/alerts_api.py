"""Storage alerts for supervisors: GET /api/alerts, POST /api/alerts/{id}/ack, and the watch that
raises one when free space under the recordings directory is below ``recordings_min_free_mb``
(a room's recording cut short by a failed write is alerted by the hub when the recorder says so).
``setup(app)`` adds both."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web

from recordings.alerts import free_mb
from server.auth import REVIEWER_ROLES, ApiError, require_user
from server.background import background
from server.keys import ARCHIVE, CONFIG

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

# Free space is looked at every 30 s (statvfs is cheap, but a disk does not fill in less).
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


async def watch(app: web.Application, interval: float = SPACE_CHECK_S) -> None:
    """Raise an alert while free space is low (at start, then every ``interval``), and let the
    next one be raised once space was freed."""
    config, archive = app[CONFIG], app[ARCHIVE]
    subject = str(config.recordings_dir.resolve())
    minimum = config.recordings_min_free_mb
    while minimum > 0:
        try:
            free = await asyncio.to_thread(free_mb, config.recordings_dir)
            if free >= minimum:
                await archive.alerts.clear("low_space", subject)
            elif await archive.alerts.raise_once(
                    "low_space", subject,
                    detail=f"{free:.0f} MB free under {subject} (minimum {minimum} MB)"):
                logger.warning("recordings: only %.0f MB free under %s", free, subject)
        except Exception:
            logger.exception("storage alerts: check failed; trying again")
        await asyncio.sleep(interval)


def setup(app: web.Application) -> None:
    """The routes and the watch (after the rooms exist: the app's other contexts first)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(background("storage-alerts", watch))
