"""Appointments (预约) in real Chromium: the admin opens bookings for 税务 on the admin page; an
applicant books the next slot on the kiosk page (department → slot → name and phone → code with
its QR); two walk-ins are already waiting when the applicant arrives with the code (made a few
minutes before the slot, like 9:58 for 10:00) and takes 税Y001, first in the queue ahead of both;
the same code again is refused with its text; the link in the QR opens the arrival form with the
code; the desk saw the booking coming and the admin's day list shows it arrived, masked."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import replace
from typing import Any

import pytest

from server.config import Config
from server.keys import STORE
from signaling.client import SignalingClient
from signaling.config import SignalingConfig
from signaling.errors import CATALOGUE
from tests.support.axe import assert_accessible
from tests.support.browser import login
from tests.support.pages import new_page
from tests.support.server import LiveServer


@pytest.fixture
def config(config: Config) -> Config:
    # Today and tomorrow are working days: a run just before the hall's midnight finds its slot
    # tomorrow.
    today = SignalingConfig().local_time(time.time()).date()
    return replace(config, extra_workdays=(today.isoformat(),
                                           (today + dt.timedelta(days=1)).isoformat()))


async def test_a_booking_goes_ahead_of_two_walk_ins(server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    admin = await new_page(browser)
    await login(admin, server.url + "/admin", "admin")
    await expect(admin.get_by_test_id("admin-bookings")).to_be_visible()
    await admin.get_by_test_id("booking-rules-department").select_option("tax")
    await expect(admin.get_by_test_id("booking-rules-capacity")).to_have_value("0")
    for name, value in (("slot_minutes", "5"), ("capacity", "2"), ("early_minutes", "10"),
                        ("late_minutes", "15")):
        await admin.get_by_test_id(f"booking-rules-{name}").fill(value)
    await admin.get_by_test_id("booking-rules-save").click()
    await expect(admin.get_by_test_id("booking-rules-saved")).to_be_visible()

    kiosk = await new_page(browser)
    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("appointment-start").click()
    await kiosk.get_by_test_id("booking-new").click()
    await kiosk.get_by_test_id("booking-dept-tax").click()
    slot = kiosk.get_by_test_id("appointment-slot").first
    await expect(slot).to_contain_text("余 2 个")
    await assert_accessible(kiosk, "kiosk booking slots")
    start = int(await slot.get_attribute("data-start") or 0)
    assert 0 < start - time.time() <= 300  # the next five-minute slot: booked just before it
    await slot.click()
    await kiosk.get_by_test_id("booking-name").fill("张三")
    await kiosk.get_by_test_id("booking-phone").fill("13812345678")
    await kiosk.get_by_test_id("appointment-confirm").click()
    await expect(kiosk.get_by_test_id("booking-error")).to_have_text("请先勾选同意。")
    await kiosk.get_by_test_id("booking-consent").check()
    await kiosk.get_by_test_id("appointment-confirm").click()
    code_box = kiosk.get_by_test_id("appointment-code")
    await expect(code_box).to_have_text(re.compile(r"^[A-Z2-9]{8}$"))
    code = await code_box.inner_text()
    await expect(kiosk.get_by_test_id("booking-qr-image")).to_have_attribute(
        "src", re.compile(r"^data:image/svg\+xml;base64,"))
    assert (await kiosk.get_by_test_id("booking-qr").get_attribute("href") or "").endswith(
        f"/?booking={code}")
    await expect(kiosk.get_by_test_id("booking-done-hint")).to_contain_text("138****5678")
    await assert_accessible(kiosk, "kiosk booking code")
    await kiosk.get_by_test_id("booking-done-back").click()

    # The 税务 desk sees who is booked next, masked.
    desk = await new_page(browser)
    await login(desk, server.url + "/staff", "tax01")
    booked = desk.get_by_test_id("desk-booking")
    await expect(booked).to_have_count(1)
    await expect(booked).to_contain_text(code)
    await expect(booked).to_contain_text("张*")
    await expect(booked).not_to_contain_text("张三")

    # Two walk-ins are waiting when the applicant arrives.
    walk_in = await SignalingClient.connect(server.url, "/kiosk")
    try:
        for _ in range(2):
            await walk_in.request("ticket:create", {"department": "tax", "consent": True})
        await kiosk.get_by_test_id("appointment-start").click()
        await kiosk.get_by_test_id("booking-have-code").click()
        await kiosk.get_by_test_id("booking-code-input").fill(code.lower())
        await kiosk.get_by_test_id("booking-arrive-consent").check()
        await kiosk.get_by_test_id("booking-arrive-submit").click()
        await expect(kiosk.get_by_test_id("ticket-number")).to_have_text("税Y001")
        await expect(kiosk.get_by_test_id("queue-position")).to_contain_text("1")
        store = server.app[STORE]
        order = [await store.ticket(t) for t in await store.waiting("tax")]
        assert [t.number for t in order if t] == ["税Y001", "税A001", "税A002"]

        # The QR's link on a phone: the arrival form with the code; used once, it is refused.
        phone = await new_page(browser)
        await phone.goto(server.url + f"/?booking={code}")
        await expect(phone.get_by_test_id("booking-code-input")).to_have_value(code)
        await phone.get_by_test_id("booking-arrive-consent").check()
        await phone.get_by_test_id("booking-arrive-submit").click()
        await expect(phone.get_by_test_id("booking-arrive-error")).to_have_text(
            CATALOGUE["booking_used"].zh)
    finally:
        await walk_in.close()

    await admin.get_by_test_id("bookings-show").click()
    row = admin.get_by_test_id("booking-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(code)
    await expect(row).to_contain_text("张*")
    await expect(row).to_contain_text("138****5678")
    await expect(row).to_contain_text("已取号")
