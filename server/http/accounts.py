"""The admin's accounts API (the admin page's accounts section): list, create, edit, disable and
enable, unlock, reset a password or the second factor. Admins only; the rules, the audit and the
sessions that end are signaling/account_admin.py's."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rooms.roles import Role
from server.http.auth import require_user
from server.http.payload import json_object
from server.http.remote import client_address
from server.keys import ACCOUNTS, AUDIT, SESSIONS, STORE
from signaling.account_admin import AccountAdmin, Actor, Profile
from signaling.accounts import MAX_USERNAME, USERNAME_CHARS
from signaling.errors import SignalError

routes = web.RouteTableDef()

MAX_ACCOUNT_BYTES = 16 * 1024
MAX_DEPARTMENTS = 64


async def _admin(request: web.Request) -> tuple[AccountAdmin, Actor]:
    user = await require_user(request, (Role.ADMIN,))
    app = request.app
    service = AccountAdmin(app[ACCOUNTS], app[SESSIONS], app[STORE], app[AUDIT])
    return service, Actor(user.username, client_address(request))


def _username(request: web.Request) -> str:
    """The account named in the URL; one no account can have is not looked up."""
    username = request.match_info["username"]
    if len(username) > MAX_USERNAME or not set(username) <= USERNAME_CHARS:
        raise SignalError("not_found.account")
    return username


def _profile(data: dict[str, Any], *, partial: bool) -> Profile:
    """The profile fields of a body: strings, and a list of department ids."""
    values: dict[str, Any] = {}
    for name in ("display_name", "role"):
        if name not in data and partial:
            continue
        value = data.get(name)
        if not isinstance(value, str):
            raise SignalError("invalid_payload.account", reason=f"{name} 应为文字")
        values[name] = value
    if "departments" in data or not partial:
        departments = data.get("departments", [])
        if not isinstance(departments, list) or len(departments) > MAX_DEPARTMENTS \
                or not all(isinstance(d, str) for d in departments):
            raise SignalError("invalid_payload.account", reason="departments 应为部门编号的列表")
        values["departments"] = tuple(dict.fromkeys(departments))
    return Profile(**values)


def _answer(account: dict[str, Any], password: str | None = None,
            status: int = 200) -> web.Response:
    body: dict[str, Any] = {"ok": True, "account": account}
    if password is not None:
        body["temporary_password"] = password
    return web.json_response(body, status=status)


@routes.get("/api/admin/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    """Every account, and the backup groups an account may belong to besides departments."""
    service, _ = await _admin(request)
    _, groups = await service.pools()
    return web.json_response({"ok": True, "groups": groups, "accounts": [
        user.admin_view() for user in await service.accounts.users()]})


@routes.post("/api/admin/accounts")
async def create_account(request: web.Request) -> web.Response:
    service, actor = await _admin(request)
    data = await json_object(request, MAX_ACCOUNT_BYTES)
    username = data.get("username")
    if not isinstance(username, str):
        raise SignalError("invalid_payload.account", reason="username 应为文字")
    user, password = await service.create(actor, username, _profile(data, partial=False))
    return _answer(user.admin_view(), password, status=201)


@routes.patch("/api/admin/accounts/{username}")
async def update_account(request: web.Request) -> web.Response:
    service, actor = await _admin(request)
    username = _username(request)
    data = await json_object(request, MAX_ACCOUNT_BYTES)
    user = await service.update(actor, username, _profile(data, partial=True))
    return _answer(user.admin_view())


@routes.post("/api/admin/accounts/{username}/{action:disable|enable}")
async def set_disabled(request: web.Request) -> web.Response:
    service, actor = await _admin(request)
    disabled = request.match_info["action"] == "disable"
    user = await service.set_disabled(actor, _username(request), disabled)
    return _answer(user.admin_view())


@routes.post("/api/admin/accounts/{username}/unlock")
async def unlock(request: web.Request) -> web.Response:
    service, actor = await _admin(request)
    return _answer((await service.unlock(actor, _username(request))).admin_view())


@routes.post("/api/admin/accounts/{username}/reset-password")
async def reset_password(request: web.Request) -> web.Response:
    service, actor = await _admin(request)
    user, password = await service.reset_password(actor, _username(request))
    return _answer(user.admin_view(), password)


@routes.post("/api/admin/accounts/{username}/reset-2fa")
async def reset_totp(request: web.Request) -> web.Response:
    service, actor = await _admin(request)
    return _answer((await service.reset_totp(actor, _username(request))).admin_view())
