"""Registered kiosks over HTTP: the admin's API (list, enrol, revoke; the rules and the audit are
signaling/devices.py's), and the enrolment URL `/?device=<token>` that a hall screen opens once:
it keeps the token as an HttpOnly cookie and leaves the URL (server/http/pages.py sends `/`
here when the query has `device`)."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

from aiohttp import web

from rooms.roles import Role
from server.http.auth import require_user
from server.http.payload import SAFE_ID, json_object
from server.http.remote import client_address, is_https
from server.keys import CONFIG, DEVICES
from signaling.account_admin import Actor
from signaling.devices import DEVICE_COOKIE, Device
from signaling.errors import SignalError
from signaling.qr import qr_svg

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_DEVICE_BYTES = 4096
MAX_TOKEN = 128
# Browsers keep a cookie 400 days at most (Chromium caps Max-Age there); every load of the kiosk
# page sets it again, so a screen in use never loses it.
COOKIE_MAX_AGE = 400 * 86400
# The device token in an enrolment URL, as the access log would otherwise write it.
_TOKEN_IN_URL = re.compile(r"([?&]device=)[^&\s\"]*")


class HideDeviceTokens(logging.Filter):
    """Keeps device tokens out of the access log (aiohttp.access writes every request line,
    enrolment URLs included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "device=" in message:
            record.msg, record.args = _TOKEN_IN_URL.sub(r"\1…", message), None
        return True


def _enrolment_url(request: web.Request, token: str) -> str:
    """The URL a hall screen opens: at the origin the admin works from when it is one of the
    public origins (a browser's request says), else at the first of them."""
    origins = request.app[CONFIG].origins
    origin = request.headers.get("Origin", "")
    base = origin if origin in origins else origins[0]
    return f"{base}/?device={quote(token)}"


async def _admin(request: web.Request) -> Actor:
    user = await require_user(request, (Role.ADMIN,))
    return Actor(user.username, client_address(request))


@routes.get("/api/admin/devices")
async def list_devices(request: web.Request) -> web.Response:
    await _admin(request)
    return web.json_response({"ok": True, "devices": [
        device.admin_view() for device in await request.app[DEVICES].devices()]})


@routes.post("/api/admin/devices")
async def create_device(request: web.Request) -> web.Response:
    """Enrol a kiosk: the answer has its token, enrolment URL and the URL's QR code, once."""
    actor = await _admin(request)
    data = await json_object(request, MAX_DEVICE_BYTES)
    device, token = await request.app[DEVICES].create(
        actor, data.get("name"), data.get("hall"), data.get("location", ""))
    url = _enrolment_url(request, token)
    return web.json_response({"ok": True, "device": device.admin_view(), "token": token,
                              "url": url, "qr_svg": qr_svg(url, "云诊 kiosk")}, status=201)


@routes.post("/api/admin/devices/{device_id}/revoke")
async def revoke_device(request: web.Request) -> web.Response:
    actor = await _admin(request)
    device_id = request.match_info["device_id"]
    if not SAFE_ID.match(device_id):
        raise SignalError("not_found.device")
    device = await request.app[DEVICES].revoke(actor, device_id)
    return web.json_response({"ok": True, "device": device.admin_view()})


async def kiosk_device(request: web.Request) -> Device | None:
    """The registered kiosk a kiosk page request comes from (its cookie), or None."""
    token = request.cookies.get(DEVICE_COOKIE, "")
    if not token or len(token) > MAX_TOKEN:
        return None
    return await request.app[DEVICES].by_token(token)


def keep_device_cookie(request: web.Request, response: web.StreamResponse,
                       device: Device | None) -> None:
    """Set the device cookie again on a registered kiosk's page (its age starts anew); drop one
    whose device is unknown or revoked."""
    token = request.cookies.get(DEVICE_COOKIE)
    if token is None:
        return
    if device is None:
        response.del_cookie(DEVICE_COOKIE, path="/")
        return
    response.set_cookie(DEVICE_COOKIE, token, max_age=COOKIE_MAX_AGE, httponly=True,
                        samesite="Strict", path="/", secure=is_https(request))


async def enrol(request: web.Request) -> web.StreamResponse:
    """`/?device=<token>` on a hall screen: keep the token as the device cookie (when it is a
    device's, not revoked) and go to `/`, so the token stays neither in the address bar nor in
    the history."""
    token = request.query.get("device", "")
    device = await request.app[DEVICES].by_token(token) \
        if 0 < len(token) <= MAX_TOKEN else None
    response = web.HTTPSeeOther("/")
    address = client_address(request)
    if device is None:
        logger.warning("an enrolment URL with an unknown or revoked device token was opened "
                       "from %s", address)
    else:
        response.set_cookie(DEVICE_COOKIE, token, max_age=COOKIE_MAX_AGE, httponly=True,
                            samesite="Strict", path="/", secure=is_https(request))
        logger.info("kiosk %s (%s) enrolled on a screen at %s", device.device_id, device.hall,
                    address)
    raise response
