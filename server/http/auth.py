"""Who is asking: sign-in (password, then the second factor when the account has one), the
forced password change and second-factor enrolment that may come before the service is theirs,
sign-out, /api/me, the idle-timeout keep-alive, and the role checks every handler uses. Every
sign-in, failure, lockout, sign-out and credential change is audited."""

from __future__ import annotations

import logging

from aiohttp import web

from rooms.roles import REVIEWER_ROLES
from server.http.payload import json_object
from server.http.remote import client_address, is_https
from server.keys import ACCOUNTS, AUDIT, CONFIG, SESSIONS
from signaling import totp
from signaling.accounts import MAX_PASSWORD, SESSION_COOKIE, User
from signaling.errors import SignalError
from signaling.qr import qr_svg
from signaling.sessions import Session

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_LOGIN_BYTES = 4096
# What a session in a stage must do first (see signaling.accounts.SignIn).
STAGE_REFUSAL = {"password": "password_change_required", "enroll": "totp_enrollment_required"}
STAGE_AUDIT = {"password": "must change the password first",
               "enroll": "must set up the second factor first"}


async def session_of(request: web.Request) -> Session:
    """The request's login session, whatever its stage; 401 without one."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignalError("unauthenticated")
    return await request.app[SESSIONS].get(token)


async def current_user(request: web.Request) -> User | None:
    """The signed-in account of a page request (a session past its stages), or None."""
    try:
        session = await session_of(request)
    except SignalError:
        return None
    return None if session.stage else session.user


async def require_user(request: web.Request, roles: tuple[str, ...]) -> User:
    session = await session_of(request)
    if session.stage:
        raise SignalError(STAGE_REFUSAL[session.stage])
    user = session.user
    if user.role not in roles:
        raise SignalError("forbidden.reviewers" if roles == REVIEWER_ROLES else "forbidden")
    if request.method != "GET":
        await request.app[SESSIONS].touch(session)  # a change is activity
    return user


def _strings(data: dict[str, object], *names: str) -> list[str]:
    values = [data.get(name, "") for name in names]
    if not all(isinstance(v, str) and len(v) <= MAX_PASSWORD for v in values):
        raise SignalError("invalid_payload.login")
    return [str(v) for v in values]


def _session_answer(request: web.Request, user: User, stage: str,
                    token: str | None = None) -> web.Response:
    config = request.app[CONFIG]
    response = web.json_response({"ok": True, "user": user.public(), "next": stage or None,
                                  "idle_timeout": config.idle_timeout})
    if token is not None:
        response.set_cookie(SESSION_COOKIE, token, max_age=config.session_ttl, httponly=True,
                            samesite="Strict", path="/", secure=is_https(request))
    return response


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    data = await json_object(request, MAX_LOGIN_BYTES)
    username, password, code = _strings(data, "username", "password", "code")
    if not username or not password:
        raise SignalError("invalid_payload.login")
    audit, address = request.app[AUDIT], client_address(request)
    try:
        signed = await request.app[ACCOUNTS].sign_in(username, password, code, address)
    except SignalError as exc:
        if exc.name != "totp_required":
            logger.info("sign-in refused for %r from %s: %s", username[:64], address, exc.name)
            await audit.append(username[:64], "locked" if exc.detail == "locked now"
                               else "login_failed", remote=address, target=username[:64],
                               detail=exc.name)
        raise
    user = signed.user
    token = await request.app[SESSIONS].create(user, signed.stage, address)
    await audit.append(user.username, "login", remote=address, target=user.username,
                       detail=STAGE_AUDIT.get(signed.stage, ""))
    logger.info("user %s signed in from %s%s", user.username, address,
                f" (must {signed.stage} first)" if signed.stage else "")
    return _session_answer(request, user, signed.stage, token)


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    try:
        session = await session_of(request)
    except SignalError:
        session = None
    if session is not None:
        await request.app[SESSIONS].end(session.sha, session.user.username, "logout")
        await request.app[AUDIT].append(session.user.username, "logout",
                                        remote=client_address(request),
                                        target=session.user.username)
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    """Who is signed in, and what they must do first (`next`)."""
    session = await session_of(request)
    return _session_answer(request, session.user, session.stage)


@routes.post("/api/session/touch")
async def touch(request: web.Request) -> web.Response:
    """The page saw its user act: the idle timeout starts again."""
    session = await session_of(request)
    left = await request.app[SESSIONS].touch(session)
    return web.json_response({"ok": True, "idle_left": int(left)})


@routes.post("/api/password")
async def change_password(request: web.Request) -> web.Response:
    """The person changes their own password (forced at first sign-in, after a reset and when
    it expired). Their other sessions end."""
    session = await session_of(request)
    if session.stage == "enroll":
        raise SignalError(STAGE_REFUSAL["enroll"])
    data = await json_object(request, MAX_LOGIN_BYTES)
    current, new = _strings(data, "current", "new")
    accounts, sessions = request.app[ACCOUNTS], request.app[SESSIONS]
    user = await accounts.change_password(session.user.username, current, new)
    await sessions.end_user(user.username, "password_changed", keep=session.sha)
    stage = accounts.stage(user)
    await sessions.update(session, stage=stage)
    await request.app[AUDIT].append(user.username, "password_change",
                                    remote=client_address(request), target=user.username)
    logger.info("user %s changed their password", user.username)
    return _session_answer(request, user, stage)


@routes.post("/api/totp/setup")
async def totp_setup(request: web.Request) -> web.Response:
    """A new second factor to enrol: the secret, its otpauth URI and QR code. It is kept with the
    session until a code from it proves the app has it."""
    session = await session_of(request)
    if session.stage == "password":
        raise SignalError(STAGE_REFUSAL["password"])
    secret = totp.new_secret()
    await request.app[SESSIONS].update(session, totp_pending=secret)
    uri = totp.provisioning_uri(secret, session.user.username)
    return web.json_response({"ok": True, "secret": secret, "uri": uri,
                              "qr_svg": qr_svg(uri, "TOTP")})


@routes.post("/api/totp/enroll")
async def totp_enroll(request: web.Request) -> web.Response:
    session = await session_of(request)
    if not session.totp_pending:
        raise SignalError("bad_state", "ask /api/totp/setup first")
    data = await json_object(request, MAX_LOGIN_BYTES)
    (code,) = _strings(data, "code")
    user = session.user
    codes = await request.app[ACCOUNTS].enroll_totp(user.username, session.totp_pending, code)
    await request.app[SESSIONS].update(session, totp_pending="", stage="")
    await request.app[AUDIT].append(user.username, "totp_enroll",
                                    remote=client_address(request), target=user.username)
    logger.info("user %s set up a second factor", user.username)
    return web.json_response({"ok": True, "recovery_codes": codes, "next": None,
                              "user": user.public()})

