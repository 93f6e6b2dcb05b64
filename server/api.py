"""The JSON API: login, departments, and the recordings supervisors review."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import re
import time
from typing import Any

from aiohttp import web

from recordings.archive import RecordingFilter
from server.auth import REVIEWER_ROLES, SESSION_COOKIE, ApiError, require_user
from server.config import ConfigError
from server.keys import ARCHIVE, CONFIG, HUB, REDIS, STORE
from signaling.departments import Department
from signaling.passwords import verify_password
from signaling.store import User

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_LOGIN_BYTES = 4096
_DEPT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _bad(message: str, message_en: str) -> ApiError:
    return ApiError(400, "invalid_payload", message, message_en)


async def json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > max_bytes:
        raise _bad("请求内容过大。", "The request body is too large.")
    body = await request.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise _bad("请求内容过大。", "The request body is too large.")
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise _bad("请求不是有效的 JSON。", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise _bad("请求格式不正确。", "The request must be a JSON object.")
    return data


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    data = await json_object(request, MAX_LOGIN_BYTES)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise _bad("请输入用户名和密码。", "Enter a username and a password.")
    store = request.app[STORE]
    found = await store.user_with_password(username)
    if found is None or not verify_password(password, found[1]):
        logger.info("login refused for %r from %s", username[:64], request.remote)
        raise ApiError(401, "bad_credentials", "用户名或密码错误。",
                       "Wrong username or password.")
    user = found[0]
    config = request.app[CONFIG]
    token = await store.create_session(user.username, config.session_ttl)
    logger.info("user %s logged in from %s", user.username, request.remote)
    response = web.json_response({"ok": True, "user": user.public()})
    response.set_cookie(SESSION_COOKIE, token, max_age=config.session_ttl, httponly=True,
                        samesite="Strict", path="/")
    return response


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app[STORE].delete_session(token)
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    user = await require_user(request, ("staff", "supervisor", "admin"))
    return web.json_response({"ok": True, "user": user.public()})


@routes.get("/api/departments")
async def departments(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "departments": await department_views(request)})


async def department_views(request: web.Request) -> list[dict[str, Any]]:
    hub, now = request.app[HUB], time.time()
    return [await hub.department_view(d, now) for d in await request.app[STORE].departments()]


@routes.get("/api/wallboard")
async def wallboard(request: web.Request) -> web.Response:
    """Live queues and staff states for supervisors."""
    await require_user(request, REVIEWER_ROLES)
    store = request.app[STORE]
    staff = []
    counts: dict[str, dict[str, int]] = {}
    for user in await store.staff_users():
        state = await store.staff_state(user.username)
        presence = state.get("presence", "offline")
        staff.append({**user.public(), "presence": presence, "reason": state.get("reason", ""),
                      "since": float(state["since"]) if state.get("since") else None,
                      "reconnecting": state.get("gone") == "1"})
        for dept in user.departments:
            by_state = counts.setdefault(dept, {})
            by_state[presence] = by_state.get(presence, 0) + 1
    queues = [{"department": d.id, "name_zh": d.name_zh, "name_en": d.name_en,
               "waiting": len(await store.waiting(d.id)),
               "longest_since": await store.longest_since(d.id),
               "staff": counts.get(d.id, {})} for d in await store.departments()]
    return web.json_response({"ok": True, "now": time.time(), "queues": queues, "staff": staff})


@routes.get("/api/admin/departments/{dept_id}")
async def admin_department(request: web.Request) -> web.Response:
    await require_user(request, ("admin",))
    dept = await request.app[STORE].department(request.match_info["dept_id"])
    if dept is None:
        raise ApiError(404, "not_found", "没有这个部门。", "No such department.")
    return web.json_response({"ok": True, "department": dept.to_dict()})


@routes.put("/api/admin/departments/{dept_id}")
async def admin_put_department(request: web.Request) -> web.Response:
    """Create or change a department; it takes effect at once in every process."""
    user = await require_user(request, ("admin",))
    data = await json_object(request, 64 * 1024)
    if data.get("id", request.match_info["dept_id"]) != request.match_info["dept_id"]:
        raise _bad("部门编号与地址不一致。", "The id in the body differs from the URL.")
    try:
        dept = Department.from_dict({**data, "id": request.match_info["dept_id"]})
    except ConfigError as exc:
        raise ApiError(400, "invalid_payload", f"部门设置有误：{exc}",
                       f"Invalid department: {exc}") from None
    store = request.app[STORE]
    await store.put_department(dept)
    await store.log("CONFIG", department=dept.id, staff=user.username, detail="department saved")
    logger.info("admin %s saved department %s", user.username, dept.id)
    return web.json_response({"ok": True, "department": dept.to_dict()})


@routes.get("/api/admin/queue-log.csv")
async def queue_log(request: web.Request) -> web.StreamResponse:
    """The queue log between two local dates (inclusive), as CSV."""
    await require_user(request, ("admin",))
    hub = request.app[HUB]
    try:
        first = dt.date.fromisoformat(request.query.get("from", ""))
        last = dt.date.fromisoformat(request.query.get("to", request.query.get("from", "")))
    except ValueError:
        raise _bad("请用 YYYY-MM-DD 格式填写起止日期。",
                   "Give from and to as YYYY-MM-DD.") from None
    if last < first or (last - first).days > 366:
        raise _bad("日期范围不正确（最多一年）。", "The date range is wrong (a year at most).")
    start = dt.datetime.combine(first, dt.time(), hub.tz).timestamp()
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), hub.tz).timestamp()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time", "event", "ticket", "department", "staff", "detail"])
    for entry in await request.app[STORE].log_entries(start, end):
        when = hub.local_time(float(entry.get("time") or 0)).isoformat(timespec="seconds")
        writer.writerow([when, entry.get("event", ""), entry.get("ticket", ""),
                         entry.get("department", ""), entry.get("staff", ""),
                         entry.get("detail", "")])
    return web.Response(body=out.getvalue().encode("utf-8-sig"), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="queue-log-{first}-{last}.csv"'})


def _scope(user: User) -> tuple[str, ...]:
    """The departments a reviewer may see recordings of; empty: all of them."""
    return user.departments if user.role == "supervisor" else ()


async def audit_access(request: web.Request, user: User, action: str, recording_id: str = "",
                       department: str = "", detail: str = "") -> None:
    await request.app[ARCHIVE].audit.append(user.username, action, recording_id=recording_id,
                                            remote=request.remote or "",
                                            department=department, detail=detail)


def _when(request: web.Request, name: str, end: bool) -> float | None:
    """A time parameter: a local date YYYY-MM-DD (``to`` takes in the whole day) or epoch
    seconds."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value < 0:
            raise _bad(f"{name} 应为 YYYY-MM-DD 日期或时间戳。",
                       f"{name} must be a YYYY-MM-DD date or epoch seconds.") from None
        return value
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), request.app[HUB].tz).timestamp()


def _range(request: web.Request) -> tuple[float | None, float | None]:
    start, end = _when(request, "from", False), _when(request, "to", True)
    if start is not None and end is not None and end < start:
        raise _bad("结束时间早于开始时间。", "to is before from.")
    return start, end


def _number(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise _bad(f"{name} 应为不小于 0 的秒数。", f"{name} must be a number of seconds ≥ 0.")
    return value


def _filters(request: web.Request) -> RecordingFilter:
    query = request.query
    known = {"from", "to", "department", "staff", "rating", "min_duration", "max_duration",
             "incomplete"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise _bad(f"不认识的筛选条件：{', '.join(unknown)}",
                   f"Unknown filter(s): {', '.join(unknown)}")
    start, end = _range(request)
    department = query.get("department", "").strip() or None
    if department is not None and not _DEPT_ID.match(department):
        raise _bad("部门编号不正确。", "department is not a department id.")
    staff = query.get("staff", "").strip() or None
    if staff is not None and len(staff) > 64:
        raise _bad("坐席名称过长。", "staff is too long.")
    rating: int | None = None
    raw_rating = query.get("rating", "").strip()
    if raw_rating:
        if raw_rating == "none":
            rating = 0
        elif raw_rating in ("1", "2", "3", "4", "5"):
            rating = int(raw_rating)
        else:
            raise _bad("评价应为 1–5 或 none。", "rating must be 1 to 5, or none.")
    low, high = _number(request, "min_duration"), _number(request, "max_duration")
    if low is not None and high is not None and high < low:
        raise _bad("最长时长小于最短时长。", "max_duration is below min_duration.")
    incomplete: bool | None = None
    raw = query.get("incomplete", "").strip().lower()
    if raw:
        if raw not in ("1", "0", "true", "false"):
            raise _bad("incomplete 应为 1 或 0。", "incomplete must be 1 or 0.")
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


def not_found() -> ApiError:
    return ApiError(404, "not_found", "没有找到这个录像。", "No such recording.")


async def visible(request: web.Request, user: User) -> dict[str, Any]:
    """The index entry of the recording in the URL, if it exists and is in the user's scope;
    out of scope answers exactly like a recording that does not exist."""
    entry = await request.app[ARCHIVE].entry(request.match_info["recording_id"])
    scope = _scope(user)
    if entry is None or (scope and entry["department"] not in scope):
        raise not_found()
    return entry


@routes.get("/api/recordings/{recording_id}")
async def recording(request: web.Request) -> web.Response:
    user = await require_user(request, REVIEWER_ROLES)
    entry = await visible(request, user)
    found = await request.app[ARCHIVE].get(entry["recording_id"])
    if found is None:
        raise not_found()
    entry, timeline = found
    await audit_access(request, user, "view", entry["recording_id"], entry["department"])
    return web.json_response({"ok": True, "recording": entry, "timeline": timeline})


@routes.get("/api/recordings/{recording_id}/files/{name}")
async def recording_file(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, REVIEWER_ROLES)
    entry = await visible(request, user)
    path = await request.app[ARCHIVE].file(entry["recording_id"], request.match_info["name"])
    if path is None:
        raise not_found()
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
    user = await require_user(request, ("admin",))
    data = await json_object(request, 1024)
    hold = data.get("hold")
    if not isinstance(hold, bool):
        raise _bad("hold 应为 true 或 false。", "hold must be true or false.")
    entry = await request.app[ARCHIVE].set_hold(request.match_info["recording_id"], hold)
    if entry is None:
        raise not_found()
    await audit_access(request, user, "hold" if hold else "release", entry["recording_id"],
                 entry["department"])
    logger.info("admin %s %s recording %s", user.username,
                "held" if hold else "released", entry["recording_id"])
    return web.json_response({"ok": True, "recording": entry})


@routes.get("/api/audit")
async def audit(request: web.Request) -> web.Response:
    """The archive's audit trail between two times, newest first (default: the last 7 days)."""
    user = await require_user(request, REVIEWER_ROLES)
    start, end = _range(request)
    end = end if end is not None else time.time()
    start = start if start is not None else end - 7 * 86400
    entries = await request.app[ARCHIVE].audit.entries(start, end, _scope(user), user.username)
    return web.json_response({"ok": True, "entries": entries})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        redis_ok = bool(await request.app[REDIS].ping())
    except Exception:
        redis_ok = False
    return web.json_response({"ok": redis_ok, "redis": redis_ok}, status=200 if redis_ok else 503)
