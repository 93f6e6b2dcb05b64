"""The JSON API: login, departments, and the recordings supervisors review."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from server.auth import REVIEWER_ROLES, SESSION_COOKIE, ApiError, require_user
from server.keys import ARCHIVE, CONFIG, REDIS, STORE
from server.passwords import verify_password

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_LOGIN_BYTES = 4096


def _bad(message: str, message_en: str) -> ApiError:
    return ApiError(400, "invalid_payload", message, message_en)


async def _json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
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
    data = await _json_object(request, MAX_LOGIN_BYTES)
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
    rows = await request.app[STORE].departments()
    return web.json_response({"ok": True, "departments": [
        {"id": r["id"], "name_zh": r["name_zh"], "name_en": r["name_en"]} for r in rows]})


@routes.get("/api/recordings")
async def recordings(request: web.Request) -> web.Response:
    await require_user(request, REVIEWER_ROLES)
    return web.json_response({"ok": True, "recordings": await request.app[ARCHIVE].list()})


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "没有找到这个录像。", "No such recording.")


@routes.get("/api/recordings/{recording_id}")
async def recording(request: web.Request) -> web.Response:
    await require_user(request, REVIEWER_ROLES)
    found = await request.app[ARCHIVE].get(request.match_info["recording_id"])
    if found is None:
        raise _not_found()
    entry, timeline = found
    return web.json_response({"ok": True, "recording": entry, "timeline": timeline})


@routes.get("/api/recordings/{recording_id}/files/{name}")
async def recording_file(request: web.Request) -> web.StreamResponse:
    await require_user(request, REVIEWER_ROLES)
    path = await request.app[ARCHIVE].file(request.match_info["recording_id"],
                                           request.match_info["name"])
    if path is None:
        raise _not_found()
    # FileResponse answers Range requests, so the player can seek without downloading it all.
    return web.FileResponse(path, headers={"Cache-Control": "private, no-store"})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        redis_ok = bool(await request.app[REDIS].ping())
    except Exception:
        redis_ok = False
    return web.json_response({"ok": redis_ok, "redis": redis_ok}, status=200 if redis_ok else 503)
