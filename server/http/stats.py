"""Statistics for supervisors: the rollups of a date range as JSON rows and totals, and the same
as a CSV export (audited). A supervisor with departments sees only those."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import time
from typing import Any

from aiohttp import web

from rooms.roles import REVIEWER_ROLES
from server.http.auth import require_user
from server.http.remote import client_address
from server.keys import AUDIT, CONFIG, REDIS
from signaling.accounts import User
from signaling.errors import SignalError
from signaling.stats import GROUPS
from signaling.stats_store import MAX_DAYS, StatsQuery, StatsReader

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

PARAMETERS = ("from", "to", "group", "department", "hall")
DEFAULT_DAYS = 30
MAX_HALL = 64
DEPARTMENT_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# CSV columns: (header, the row's field); Chinese headers, for the spreadsheets of the hall.
CSV_COLUMNS = (("周期", "period"), ("咨询量", "consultations"), ("接通", "answered"),
               ("放弃", "abandoned"), ("通话中断", "dropped"), ("回电登记", "callbacks"),
               ("会商", "joint"), ("会商占比", "joint_share"), ("等待中位数(秒)", "wait_p50_s"),
               ("等待P90(秒)", "wait_p90_s"), ("通话总时长(秒)", "talk_s"),
               ("平均通话(秒)", "talk_avg_s"), ("评价数", "rated"), ("非常满意", "r5"),
               ("满意", "r4"), ("基本满意", "r3"), ("不满意", "r2"), ("非常不满意", "r1"),
               ("满意率", "satisfaction"), ("差评工单", "cases_opened"),
               ("未办结", "cases_open"), ("已办结", "cases_closed"), ("超期", "cases_overdue"),
               ("按期办结率", "cases_on_time_rate"))
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _date(request: web.Request, name: str, default: dt.date) -> dt.date:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    if not DATE.match(raw):
        raise SignalError("invalid_payload.stats_dates")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise SignalError("invalid_payload.stats_dates") from None


def parse_query(request: web.Request, user: User) -> StatsQuery:
    """The view asked for, checked: bounded dates, a known grouping, a department of the
    supervisor's scope (a scoped supervisor without one sees all of theirs)."""
    unknown = sorted(set(request.query) - set(PARAMETERS))
    if unknown:
        raise SignalError("invalid_payload.filters", filters=", ".join(unknown)[:200])
    today = request.app[CONFIG].signaling.local_time(time.time()).date()
    end = _date(request, "to", today)
    start = _date(request, "from", end - dt.timedelta(days=DEFAULT_DAYS - 1))
    if end < start or (end - start).days + 1 > MAX_DAYS:
        raise SignalError("invalid_payload.stats_range", max=MAX_DAYS)
    group = request.query.get("group", "").strip() or "day"
    if group not in GROUPS:
        raise SignalError("invalid_payload.stats_group")
    department = request.query.get("department", "").strip()
    if department and not DEPARTMENT_ID.match(department):
        raise SignalError("invalid_payload.department_id")
    scope = frozenset(user.departments)
    if department and scope and department not in scope:
        raise SignalError("forbidden.stats_scope")
    departments = frozenset({department}) if department else (scope or None)
    hall: str | None = request.query.get("hall")
    if hall is not None and len(hall) > MAX_HALL:
        raise SignalError("invalid_payload.text_filter", name="hall", max=MAX_HALL)
    return StatsQuery(start, end, group, departments, hall)


async def _summary(request: web.Request, query: StatsQuery) -> dict[str, Any]:
    reader = StatsReader(request.app[REDIS], request.app[CONFIG].signaling.zone)
    return await reader.summary(query)


@routes.get("/api/stats")
async def stats(request: web.Request) -> web.Response:
    user = await require_user(request, REVIEWER_ROLES)
    query = parse_query(request, user)
    return web.json_response({"ok": True, **await _summary(request, query)})


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _csv_row(row: dict[str, Any]) -> list[str]:
    ratings = row.get("ratings", {})
    values = {**row, **{f"r{n}": ratings.get(str(n), 0) for n in range(1, 6)}}
    return [_cell(values.get(name)) for _, name in CSV_COLUMNS]


@routes.get("/api/stats.csv")
async def stats_csv(request: web.Request) -> web.Response:
    """The rows of the view and a total line, as CSV (UTF-8 with a BOM, for spreadsheets)."""
    user = await require_user(request, REVIEWER_ROLES)
    query = parse_query(request, user)
    summary = await _summary(request, query)
    await request.app[AUDIT].append(
        user.username, "stats_export", remote=client_address(request),
        department=",".join(sorted(query.departments or ())), detail=request.query_string[:500])
    logger.info("%s exported statistics %s..%s", user.username, query.start, query.end)
    out = io.StringIO()
    out.write("\ufeff")  # the BOM: spreadsheets then read the Chinese text as UTF-8
    writer = csv.writer(out)
    writer.writerow([header for header, _ in CSV_COLUMNS])
    for row in summary["rows"]:
        writer.writerow(_csv_row(row))
    writer.writerow(_csv_row({**summary["totals"], "period": "合计"}))
    name = f"stats-{query.start.isoformat()}-{query.end.isoformat()}.csv"
    return web.Response(body=out.getvalue().encode(), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store"})
