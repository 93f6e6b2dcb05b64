"""The audit log for the security auditor, and only for them (三权分立: not the admin, not the
supervisors): entries filtered by who, action and time, the CSV export, and the chain check.
Every read, export and check is itself audited."""

from __future__ import annotations

import csv
import io
import json
import logging
from typing import Any

from aiohttp import web

from rooms.roles import Role
from server.http.auth import require_user
from server.http.payload import time_range
from server.http.remote import client_address
from server.keys import AUDIT, CONFIG
from signaling.accounts import User
from signaling.errors import SignalError

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

LIST_LIMIT = 200
MAX_LIST_LIMIT = 5000
MAX_EXPORT_ROWS = 100_000
MAX_FILTER = 64
FILTERS = ("who", "action", "from", "to", "limit")
CSV_COLUMNS = ("id", "seq", "time", "epoch", "who", "action", "target", "recording_id",
               "department", "remote", "detail", "before", "after", "prev", "mac")
# A spreadsheet runs a cell that starts with one of these as a formula; `who` may be whatever a
# stranger typed as a username on the sign-in form.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


async def require_auditor(request: web.Request) -> User:
    try:
        return await require_user(request, (Role.AUDITOR,))
    except SignalError as exc:
        if exc.name == "forbidden":
            raise SignalError("forbidden.audit") from None
        raise


def _filters(request: web.Request, max_limit: int,
             default_limit: int) -> tuple[float | None, float | None, str, str, int]:
    unknown = sorted(set(request.query) - set(FILTERS))
    if unknown:
        raise SignalError("invalid_payload.filters", filters=", ".join(unknown))
    start, end = time_range(request)
    who, action = (request.query.get(name, "").strip() for name in ("who", "action"))
    for name, value in (("who", who), ("action", action)):
        if len(value) > MAX_FILTER:
            raise SignalError("invalid_payload.text_filter", name=name, max=MAX_FILTER)
    raw = request.query.get("limit", "").strip()
    if not raw:
        return start, end, who, action, default_limit
    # isascii: str.isdigit() also takes digits such as '²' that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= max_limit:
        raise SignalError("invalid_payload.limit", max=max_limit)
    return start, end, who, action, int(raw)


def _json_field(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw  # shown as it is stored; verify says whether it was tampered with


def _view(entry: dict[str, str]) -> dict[str, Any]:
    try:
        seq: int | None = int(entry.get("seq", ""))
    except ValueError:
        seq = None
    try:
        when = float(entry.get("time") or 0)
    except ValueError:
        when = 0.0
    return {"id": entry["id"], "seq": seq, "time": when,
            **{name: entry.get(name, "") for name in ("who", "action", "target",
                                                      "recording_id", "department", "remote",
                                                      "detail")},
            "before": _json_field(entry.get("before", "")),
            "after": _json_field(entry.get("after", ""))}


async def _audit(request: web.Request, user: User, action: str, detail: str) -> None:
    await request.app[AUDIT].append(user.username, action, remote=client_address(request),
                                    detail=detail[:500])


@routes.get("/api/audit")
async def audit_entries(request: web.Request) -> web.Response:
    """Entries newest first (at most ``limit``); ``more``: there are older ones that match."""
    user = await require_auditor(request)
    start, end, who, action, limit = _filters(request, MAX_LIST_LIMIT, LIST_LIMIT)
    await _audit(request, user, "audit_read", request.query_string)
    found = await request.app[AUDIT].entries(start, end, who=who, action=action,
                                             limit=limit + 1)
    return web.json_response({"ok": True, "entries": [_view(e) for e in found[:limit]],
                              "more": len(found) > limit})


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


@routes.get("/api/audit.csv")
async def audit_csv(request: web.Request) -> web.StreamResponse:
    """The same entries as CSV (UTF-8 with a BOM, for spreadsheets), every field of each."""
    user = await require_auditor(request)
    start, end, who, action, limit = _filters(request, MAX_EXPORT_ROWS, MAX_EXPORT_ROWS)
    await _audit(request, user, "audit_export", request.query_string)
    signaling = request.app[CONFIG].signaling
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="audit.csv"',
        "Cache-Control": "private, no-store"})
    await response.prepare(request)
    out = io.StringIO()
    out.write("\ufeff")  # the BOM: spreadsheets then read the Chinese text as UTF-8
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = 0
    async for entry in request.app[AUDIT].scan(start, end, who=who, action=action):
        try:
            when = signaling.local_time(float(entry.get("time") or 0)).isoformat(
                timespec="milliseconds")
        except ValueError:
            when = ""
        values = {**entry, "time": when, "epoch": entry.get("time", "")}
        writer.writerow([_cell(values.get(column, "")) for column in CSV_COLUMNS])
        rows += 1
        if rows >= limit:
            break
        if rows % 500 == 0:
            await response.write(out.getvalue().encode())
            out.seek(0)
            out.truncate()
    await response.write(out.getvalue().encode())
    await response.write_eof()
    return response


@routes.post("/api/audit/verify")
async def audit_verify(request: web.Request) -> web.Response:
    """Check the whole chain; the report names the first broken or missing entry."""
    user = await require_auditor(request)
    report = await request.app[AUDIT].verify()
    first = report.first
    await _audit(request, user, "audit_verify",
                 "ok" if first is None else
                 f"{first.kind} at seq {first.seq} ({first.entry_id}); {report.problems} break(s)")
    if first is not None:
        logger.warning("audit chain broken (checked by %s): %s", user.username,
                       report.summary())
    return web.json_response({"ok": True, "report": report.to_dict()})
