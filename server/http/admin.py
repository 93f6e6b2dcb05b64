"""What an admin changes and reads out: a department's settings, and the queue log as CSV; both
audited (the accounts are server/http/accounts.py's)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging

from aiohttp import web

from rooms.roles import Role
from server.config import ConfigError
from server.http.auth import require_user
from server.http.payload import MAX_EPOCH, day_start, json_object, next_day
from server.http.remote import client_address
from server.keys import AUDIT, CONFIG, STORE
from signaling.departments import Department
from signaling.errors import SignalError

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/admin/departments/{dept_id}")
async def admin_department(request: web.Request) -> web.Response:
    await require_user(request, (Role.ADMIN,))
    dept = await request.app[STORE].department(request.match_info["dept_id"])
    if dept is None:
        raise SignalError("not_found.department")
    return web.json_response({"ok": True, "department": dept.to_dict()})


@routes.put("/api/admin/departments/{dept_id}")
async def admin_put_department(request: web.Request) -> web.Response:
    """Create or change a department; it takes effect at once in every process."""
    user = await require_user(request, (Role.ADMIN,))
    data = await json_object(request, 64 * 1024)
    if data.get("id", request.match_info["dept_id"]) != request.match_info["dept_id"]:
        raise SignalError("invalid_payload.department_id_differs")
    try:
        dept = Department.from_dict({**data, "id": request.match_info["dept_id"]})
    except ConfigError as exc:
        raise SignalError("invalid_payload.department", reason=str(exc)) from None
    store = request.app[STORE]
    before = await store.department(dept.id)
    await store.put_department(dept)
    await store.log("CONFIG", department=dept.id, staff=user.username, detail="department saved")
    await request.app[AUDIT].append(user.username, "department_save",
                                    remote=client_address(request), target=dept.id,
                                    department=dept.id,
                                    before=before.to_dict() if before else None,
                                    after=dept.to_dict())
    logger.info("admin %s saved department %s", user.username, dept.id)
    return web.json_response({"ok": True, "department": dept.to_dict()})


@routes.get("/api/admin/queue-log.csv")
async def queue_log(request: web.Request) -> web.StreamResponse:
    """The queue log between two local dates (inclusive), as CSV."""
    user = await require_user(request, (Role.ADMIN,))
    signaling = request.app[CONFIG].signaling
    try:
        first = dt.date.fromisoformat(request.query.get("from", ""))
        last = dt.date.fromisoformat(request.query.get("to", request.query.get("from", "")))
    except ValueError:
        raise SignalError("invalid_payload.log_dates") from None
    if last < first or (last - first).days > 366:
        raise SignalError("invalid_payload.log_range")
    after = next_day(last)
    start = day_start(first, signaling.zone)
    end = MAX_EPOCH if after is None else day_start(after, signaling.zone)
    await request.app[AUDIT].append(user.username, "queue_log_export",
                                    remote=client_address(request), detail=f"{first} to {last}")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time", "event", "ticket", "department", "staff", "detail"])
    for entry in await request.app[STORE].log_entries(start, end):
        when = signaling.local_time(float(entry.get("time") or 0)).isoformat(timespec="seconds")
        writer.writerow([when, entry.get("event", ""), entry.get("ticket", ""),
                         entry.get("department", ""), entry.get("staff", ""),
                         entry.get("detail", "")])
    return web.Response(body=out.getvalue().encode("utf-8-sig"), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="queue-log-{first}-{last}.csv"'})
