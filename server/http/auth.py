"""Who is asking: login, logout and /api/me, the login session behind a request, and the role
checks every handler uses."""

from __future__ import annotations

import logging

from aiohttp import web

from rooms.roles import REVIEWER_ROLES, Role
from server.http.payload import json_object
from server.keys import CONFIG, STORE
from signaling.accounts import SESSION_COOKIE, User, verify_password
from signaling.errors import SignalError

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_LOGIN_BYTES = 4096


async def current_user(request: web.Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await request.app[STORE].session_user(token)


async def require_user(request: web.Request, roles: tuple[str, ...]) -> User:
    user = await current_user(request)
    if user is None:
        raise SignalError("unauthenticated")
    if user.role not in roles:
        raise SignalError("forbidden.reviewers" if roles == REVIEWER_ROLES else "forbidden")
    return user


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    data = await json_object(request, MAX_LOGIN_BYTES)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise SignalError("invalid_payload.login")
    store = request.app[STORE]
    found = await store.user_with_password(username)
    if found is None or not verify_password(password, found[1]):
        logger.info("login refused for %r from %s", username[:64], request.remote)
        raise SignalError("bad_credentials")
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
    user = await require_user(request, (Role.STAFF, Role.SUPERVISOR, Role.ADMIN))
    return web.json_response({"ok": True, "user": user.public()})
