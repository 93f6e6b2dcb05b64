"""Appointments over HTTP and the kiosk socket, against the real service: the admin's rules
(admin only, audited), booking (consent, name and phone checked; full slots refused), the code's
masked view and QR, arriving by ticket:create with the code (the booked lane, ahead of walk-ins;
a second use refused), the admin's day list and the desk's list (masked)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from typing import Any

import pytest

from recordings.audit import AUDIT
from server.config import Config
from server.keys import STORE
from signaling.client import SignalingClient
from signaling.config import SignalingConfig
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

RULES = {"slot_minutes": 5, "capacity": 2, "days_ahead": 1, "early_minutes": 10,
         "late_minutes": 15}


def today(days: int = 0) -> str:
    """The hall's date, or the one `days` later."""
    date = SignalingConfig().local_time(time.time()).date() + dt.timedelta(days=days)
    return date.isoformat()


@pytest.fixture
def config(config: Config) -> Config:
    # Today and tomorrow are working days whatever the calendar says: the slots are built from
    # now, and a test run just before the hall's midnight finds them tomorrow. Two bookings per
    # phone number and day.
    return replace(config, extra_workdays=(today(), today(1)), callbacks_per_phone_per_day=2)


async def set_rules(server: LiveServer, rules: dict[str, Any]) -> None:
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        response = await admin.put(server.url + "/api/admin/bookings/rules/tax", json=rules)
        assert response.status == 200, await response.json()


async def book(server: LiveServer, slot: int, **extra: Any) -> tuple[int, dict[str, Any]]:
    body = {"department": "tax", "slot": slot, "name": "张三", "phone": "13812345678",
            "consent": True, **extra}
    async with client_session() as session:
        response = await session.post(server.url + "/api/bookings", json=body)
        return response.status, await response.json()


async def test_rules_are_the_admins_and_audited(server: LiveServer) -> None:
    async with client_session() as staff:
        await logged_in(staff, server.url, "tax01")
        response = await staff.put(server.url + "/api/admin/bookings/rules/tax", json=RULES)
        assert response.status == 403
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        bad = await admin.put(server.url + "/api/admin/bookings/rules/tax",
                              json={"slot_minutes": 1})
        assert bad.status == 400 and "slot_minutes" in (await bad.json())["error"]["message"]
        assert (await admin.put(server.url + "/api/admin/bookings/rules/tax",
                                json=RULES)).status == 200
        got = await (await admin.get(server.url + "/api/admin/bookings/rules/tax")).json()
        assert got["rules"] == RULES
    entries = [e for e in await stream_entries(server.app[STORE].redis, AUDIT)
               if e["action"] == "booking_rules"]
    assert len(entries) == 1 and entries[0]["who"] == "admin" and entries[0]["target"] == "tax"


async def test_booking_arrival_and_the_lists(server: LiveServer) -> None:
    async with client_session() as session:
        closed = await (await session.get(server.url +
                                          "/api/bookings/slots?department=tax")).json()
        assert closed["slots"] == []  # capacity 0 until the admin opens bookings
    await set_rules(server, RULES)
    async with client_session() as session:
        slots = (await (await session.get(server.url +
                                          "/api/bookings/slots?department=tax")).json())["slots"]
    first = slots[0]
    assert first["free"] == 2 and first["end"] - first["start"] == 300
    assert first["start"] > time.time()

    status, refused = await book(server, first["start"], consent=False)
    assert status == 400 and refused["error"]["code"] == "consent_required"
    status, refused = await book(server, first["start"], phone="12")
    assert status == 400 and refused["error"]["code"] == "invalid_payload"
    status, refused = await book(server, first["start"] + 60)
    assert status == 409 and refused["error"]["code"] == "booking_slot"

    status, answer = await book(server, first["start"])
    assert status == 201, answer
    code = answer["booking"]["code"]
    assert answer["booking"]["phone"] == "138****5678" and answer["booking"]["name"] == "张*"
    assert answer["url"].endswith(f"/?booking={code}") and answer["qr_svg"].startswith("<svg")
    assert (await book(server, first["start"], name="李四", phone="13911112222"))[0] == 201
    status, full = await book(server, first["start"], name="王五", phone="13733334444")
    assert status == 409 and full["error"]["code"] == "booking_full"

    async with client_session() as session:
        seen = await (await session.get(server.url + f"/api/bookings/{code.lower()}")).json()
        assert seen["booking"]["code"] == code and seen["booking"]["name"] == "张*"
        missing = await session.get(server.url + "/api/bookings/NOPE2345")
        assert missing.status == 404 and (await missing.json())["error"]["code"] == \
            "booking_unknown"

    # Two walk-ins wait; the booking's ticket goes ahead of both.
    walk_in = await SignalingClient.connect(server.url, "/kiosk")
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    try:
        for _ in range(2):
            await walk_in.request("ticket:create", {"department": "tax", "consent": True})
        wrong = await kiosk.call("ticket:create", {"department": "market", "consent": True,
                                                   "booking": code})
        assert wrong["error"]["code"] == "booking_used"
        taken = await kiosk.request("ticket:create", {"department": "tax", "consent": True,
                                                      "booking": code})
        assert taken["ticket"]["number"] == "税Y001"
        assert taken["ticket"]["position"] == 1
        again = await kiosk.call("ticket:create", {"department": "tax", "consent": True,
                                                   "booking": code})
        assert again["error"]["code"] == "booking_used"
    finally:
        await walk_in.close()
        await kiosk.close()

    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        day = await (await admin.get(server.url + f"/api/admin/bookings?day={today()}")).json()
        assert sorted(b["status"] for b in day["bookings"]) == ["arrived", "booked"]
        assert all("*" in b["phone"] for b in day["bookings"])
        bad = await admin.get(server.url + "/api/admin/bookings?day=yesterday")
        assert bad.status == 400
    async with client_session() as desk:
        await logged_in(desk, server.url, "tax01")
        upcoming = await (await desk.get(server.url + "/api/desk/bookings")).json()
        assert [b["name"] for b in upcoming["bookings"]] == ["李*"]
    async with client_session() as desk:
        await logged_in(desk, server.url, "market01")
        assert (await (await desk.get(server.url + "/api/desk/bookings")).json())[
            "bookings"] == []
    assert dt.date.fromisoformat(day["day"])


async def test_bookings_per_phone_number_are_limited(server: LiveServer) -> None:
    await set_rules(server, {**RULES, "capacity": 5})
    async with client_session() as session:
        offered = (await (await session.get(server.url +
                                            "/api/bookings/slots?department=tax")).json())["slots"]
    # Three slots of one day (near midnight, today has fewer left).
    days: dict[str, list[dict[str, Any]]] = {}
    for slot in offered:
        days.setdefault(slot["label"][:10], []).append(slot)
    slots = next(same_day for same_day in days.values() if len(same_day) >= 3)
    for slot in slots[:2]:
        assert (await book(server, slot["start"], phone="139 0000 0000"))[0] == 201
    status, refused = await book(server, slots[2]["start"], phone="13900000000")
    assert status == 429 and refused["error"]["code"] == "limit"
    assert refused["error"]["message"] == "这个电话号码今天已预约 2 次，请勿重复预约。"
    assert (await book(server, slots[2]["start"], phone="13900000001"))[0] == 201
