"""Appointments (预约) over HTTP: the slots a department offers and booking one (public, like the
kiosk: consent to the notice required), a booking by its code (masked), the admin's booking
rules per department (audited) and bookings per day, and the next bookings of a desk's
departments (names masked)."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

from aiohttp import web

from rooms.roles import Role
from server.http.auth import require_user
from server.http.payload import SAFE_ID, json_object
from server.http.remote import client_address
from server.keys import BOOKINGS, CONFIG, DURABLE, LIMITS
from signaling import keys
from signaling.errors import SignalError
from signaling.privacy import CONSENT_NOTICE_VERSION
from signaling.qr import qr_svg

routes = web.RouteTableDef()

MAX_BOOKING_BYTES = 2 * 1024
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{3,22}[0-9]$")
_CODE = re.compile(r"^[A-Za-z0-9 -]{1,20}$")


def _department(request: web.Request, value: object) -> str:
    if not isinstance(value, str) or not SAFE_ID.match(value):
        raise SignalError("invalid_payload.department_id")
    return value


def booking_url(request: web.Request, code: str) -> str:
    """The link in the booking's QR code: the kiosk page with the code (at home it takes the
    ticket there, in the slot's window)."""
    origins = request.app[CONFIG].origins
    origin = request.headers.get("Origin", "")
    base = origin if origin in origins else origins[0]
    return f"{base}/?booking={quote(code)}"


@routes.get("/api/bookings/slots")
async def slots(request: web.Request) -> web.Response:
    dept = _department(request, request.query.get("department", ""))
    bookings = request.app[BOOKINGS]
    rules = await bookings.rules(dept)
    return web.json_response({"ok": True, "department": dept,
                              "slot_minutes": rules.slot_minutes,
                              "slots": await bookings.slots(dept)})


@routes.post("/api/bookings")
async def book(request: web.Request) -> web.Response:
    """{department, slot (epoch start), name, phone, consent}: the code (shown to the applicant
    only, with its QR code); the phone comes back masked (a hall screen is seen by others).
    Held to the abuse limits per client address and per phone number (signaling/limits.py)."""
    data = await json_object(request, MAX_BOOKING_BYTES)
    if data.get("consent") is not True:
        raise SignalError("consent_required.booking")
    dept = _department(request, data.get("department"))
    start, name, phone = data.get("slot"), data.get("name"), data.get("phone")
    if isinstance(start, bool) or not isinstance(start, int):
        raise SignalError("booking_slot", "slot must be the slot's start (epoch seconds)")
    if not isinstance(name, str) or not isinstance(phone, str) or not name.strip() or \
            len(name.strip()) > 32 or not _PHONE.match(phone.strip()):
        raise SignalError("invalid_payload.booking")
    await request.app[LIMITS].booking_request(client_address(request))
    await request.app[LIMITS].booking_phone(phone)
    booking = await request.app[BOOKINGS].book(dept, start, name.strip(), phone.strip(),
                                               CONSENT_NOTICE_VERSION)
    await request.app[DURABLE].replicated(keys.BOOKING(booking.code))
    url = booking_url(request, booking.code)
    rules = await request.app[BOOKINGS].rules(dept)
    zone = request.app[CONFIG].signaling.zone
    return web.json_response({"ok": True, "booking": booking.view(zone),
                              "early_minutes": rules.early_minutes,
                              "late_minutes": rules.late_minutes,
                              "url": url, "qr_svg": qr_svg(url, "预约码 " + booking.code)},
                             status=201)


@routes.get("/api/bookings/{code}")
async def booking(request: web.Request) -> web.Response:
    """A booking by its code (the code is the secret): masked, for the kiosk's arrival."""
    code = request.match_info["code"]
    found = await request.app[BOOKINGS].get(code) if _CODE.match(code) else None
    if found is None:
        raise SignalError("booking_unknown", code[:20])
    return web.json_response({"ok": True,
                              "booking": found.view(request.app[CONFIG].signaling.zone)})


@routes.get("/api/admin/bookings/rules/{dept}")
async def rules(request: web.Request) -> web.Response:
    await require_user(request, (Role.ADMIN,))
    dept = _department(request, request.match_info["dept"])
    return web.json_response({"ok": True, "department": dept,
                              "rules": (await request.app[BOOKINGS].rules(dept)).to_dict()})


@routes.put("/api/admin/bookings/rules/{dept}")
async def set_rules(request: web.Request) -> web.Response:
    user = await require_user(request, (Role.ADMIN,))
    dept = _department(request, request.match_info["dept"])
    data = await json_object(request, MAX_BOOKING_BYTES)
    rules = await request.app[BOOKINGS].set_rules(user.username, dept, data,
                                                  client_address(request))
    return web.json_response({"ok": True, "department": dept, "rules": rules.to_dict()})


@routes.get("/api/admin/bookings")
async def day(request: web.Request) -> web.Response:
    """?day=YYYY-MM-DD (today on the hall's calendar by default): the day's bookings, masked."""
    await require_user(request, (Role.ADMIN, Role.SUPERVISOR))
    config = request.app[CONFIG].signaling
    raw = request.query.get("day", "")
    try:
        when = dt.date.fromisoformat(raw) if raw else config.local_time(
            dt.datetime.now(dt.UTC).timestamp()).date()
    except ValueError:
        raise SignalError("invalid_payload.time", name="day") from None
    found = await request.app[BOOKINGS].day(when)
    return web.json_response({"ok": True, "day": when.isoformat(),
                              "bookings": [b.view(config.zone) for b in found]})


@routes.get("/api/desk/bookings")
async def upcoming(request: web.Request) -> web.Response:
    """Who is booked next today in the staff member's departments (names masked)."""
    user = await require_user(request, (Role.STAFF,))
    found = await request.app[BOOKINGS].upcoming(user.departments)
    zone = request.app[CONFIG].signaling.zone
    return web.json_response({"ok": True, "bookings": [b.view(zone) for b in found]})
