"""The sealed 一次性告知单 over HTTP: the server's public key, the kiosk's request for a read-only
link (with its QR code), the read-only page the link opens on a phone (no sign-in; a wrong or
missing token answers 404), and the supervisors' view of a recording's notice."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from rooms.roles import REVIEWER_ROLES
from server.http.auth import require_user
from server.http.payload import json_object
from server.http.recordings import audit_access, visible
from server.keys import ARCHIVE, CONFIG, NOTICES, STORE
from signaling.errors import SignalError
from signaling.notice_seal import verify
from signaling.qr import qr_svg

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

KEY_PATH = "/.well-known/yunzhen-notice-key"
MAX_LINK_BODY = 1024
FORMS = {"original": "原件", "copy": "复印件", "either": "原件或复印件"}


@routes.get(KEY_PATH)
async def public_key(request: web.Request) -> web.Response:
    """The Ed25519 public key that signs sealed notices (PEM, SubjectPublicKeyInfo)."""
    signer = request.app[NOTICES].signer
    return web.Response(text=signer.public_pem(), content_type="text/plain",
                        headers={"X-Key-Id": signer.key_id,
                                 "Cache-Control": "public, max-age=3600"})


@routes.post("/api/notice-link")
async def notice_link(request: web.Request) -> web.Response:
    """The applicant's kiosk, with its ticket's token, gets the sealed notice of its consultation,
    a new read-only link to it and the link as a QR code; `notice` null when none was made."""
    data = await json_object(request, MAX_LINK_BODY)
    ticket_id, token = data.get("ticket_id"), data.get("token")
    if not isinstance(ticket_id, str) or not isinstance(token, str) \
            or not 0 < len(ticket_id) <= 64 or not 0 < len(token) <= 128:
        raise SignalError("invalid_payload", "ticket_id and token")
    ticket = await request.app[STORE].check_ticket_token(ticket_id, token)
    if ticket is None:
        raise SignalError("not_found", "no ticket with this id and token")
    notices = request.app[NOTICES]
    room_id = ticket.room_id
    envelope, live = await notices.sealed_or_live(room_id) if room_id else (None, None)
    if envelope is None:
        if live is not None and live.get("sealed_at") is None:
            raise SignalError("bad_state.notice_pending")
        return web.json_response({"ok": True, "notice": None})
    link = await notices.make_link(room_id)
    origins = request.app[CONFIG].origins
    origin = request.headers.get("Origin", "")
    url = f"{origin if origin in origins else origins[0]}/notice/{quote(room_id)}?t={link}"
    logger.info("ticket %s: read-only notice link made for room %s", ticket_id, room_id)
    return web.json_response({"ok": True, "notice": envelope, "url": url,
                              "qr_svg": qr_svg(url, "一次性告知单")})


async def _stored(request: web.Request, room_id: str) -> tuple[dict[str, Any], bool] | None:
    """The sealed envelope (Redis, else the recording's notice.json) and whether its signature
    verifies with the server's key."""
    raw = request.app[ARCHIVE].notice(room_id)
    try:
        envelope = json.loads(raw) if raw is not None \
            else await request.app[NOTICES].sealed(room_id)
    except ValueError:
        logger.warning("room %s: notice.json is not JSON", room_id)
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("document"), dict):
        return None
    return envelope, verify(envelope, request.app[NOTICES].signer.public_key)


def _render(request: web.Request, envelope: dict[str, Any], ok: bool) -> web.Response:
    zone = ZoneInfo(request.app[CONFIG].timezone)

    def when(epoch: Any) -> str:
        """A time of the document in the hall's time zone."""
        if not isinstance(epoch, int | float):
            return ""
        return dt.datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M")

    response = aiohttp_jinja2.render_template("notice.html", request, {
        "static": "/static", "envelope": envelope, "doc": envelope["document"],
        "signature_ok": ok, "forms": FORMS, "key_path": KEY_PATH,
        "when": when,
        "canonical": json.dumps(envelope, ensure_ascii=False, sort_keys=True)})
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _not_found() -> web.Response:
    return web.Response(status=404, text="404: 没有找到这份告知单 / No such notice",
                        content_type="text/plain")


@routes.get("/notice/{room_id}")
async def notice_page(request: web.Request) -> web.Response:
    """The read-only page of a sealed notice, for the applicant's phone (A4 print layout)."""
    room_id = request.match_info["room_id"]
    notices = request.app[NOTICES]
    if len(room_id) > 64 or not await notices.link_valid(room_id, request.query.get("t", "")):
        return _not_found()
    found = await _stored(request, room_id)
    if found is None:
        return _not_found()
    return _render(request, *found)


async def _reviewed(request: web.Request) -> tuple[dict[str, Any], bool]:
    """A recording's sealed notice and whether it verifies, for a supervisor of its department
    (others: 404); the read is audited."""
    user = await require_user(request, REVIEWER_ROLES)
    entry = await visible(request, user)
    found = await _stored(request, entry["recording_id"])
    if found is None:
        raise SignalError("not_found.notice")
    await audit_access(request, user, "notice", entry["recording_id"], entry["department"])
    return found


@routes.get("/api/recordings/{recording_id}/notice")
async def recording_notice(request: web.Request) -> web.Response:
    envelope, ok = await _reviewed(request)
    return web.json_response({"ok": True, "notice": envelope, "signature_ok": ok})


@routes.get("/recordings/{recording_id}/notice")
async def recording_notice_page(request: web.Request) -> web.Response:
    """The same document as a page, opened from the replay."""
    return _render(request, *await _reviewed(request))
