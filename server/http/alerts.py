"""Storage alerts for supervisors: the list, and acknowledging one (raised by the storage watch,
recordings/storage.py, and by signaling/calls.py when a room's recording is cut short)."""

from __future__ import annotations

import re

from aiohttp import web

from server.http.auth import REVIEWER_ROLES, require_user
from server.http.remote import client_address
from server.keys import ARCHIVE
from signaling.errors import SignalError

routes = web.RouteTableDef()
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
        raise SignalError("not_found.alert")
    if await archive.alerts.acknowledge(alert_id, user.username):
        await archive.audit.append(user.username, "alert_ack",
                                   recording_id=alert.get("room_id", ""), department=department,
                                   remote=client_address(request),
                                   detail=f"{alert.get('kind', '')} {alert_id}")
    entry = next((a for a in await archive.alerts.entries(user.departments)
                  if a["id"] == alert_id), None)
    return web.json_response({"ok": True, "alert": entry})
