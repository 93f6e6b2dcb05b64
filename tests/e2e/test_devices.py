"""Registered kiosks in a real browser: an admin enrols a hall screen on /admin and reads its
enrolment URL (with its QR code) once; the screen, in a browser of its own, opens the URL, lands
on / without the token in its address (the token is an HttpOnly cookie, out of the page's reach)
and takes a ticket as a registered kiosk; the admin revokes the device and the screen says so at
once."""

from __future__ import annotations

import re
from typing import Any

from server.keys import STORE
from tests.support.browser import login
from tests.support.pages import new_page
from tests.support.server import LiveServer

HALL = "市民中心一楼大厅"


async def test_an_admin_enrols_a_hall_screen_and_revoking_it_stops_the_screen(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    admin = await new_page(browser)
    confirmations: list[str] = []

    async def confirm(dialog: Any) -> None:  # revoking asks first
        confirmations.append(dialog.message)
        await dialog.accept()

    admin.on("dialog", confirm)
    await login(admin, f"{server.url}/admin", "admin")
    await expect(admin.get_by_test_id("device-list")).to_contain_text("还没有登记设备")

    await admin.get_by_test_id("device-new").click()
    # Name and hall are needed.
    await admin.get_by_test_id("device-create").click()
    await expect(admin.get_by_test_id("device-error")).to_have_text("请填写设备名称和所在大厅。")
    await admin.get_by_test_id("device-name").fill("1号机")
    await admin.get_by_test_id("device-hall").fill(HALL)
    await admin.get_by_test_id("device-location").fill("东侧入口")
    await admin.get_by_test_id("device-create").click()
    token_box = admin.get_by_test_id("device-token")
    await expect(token_box).to_have_text(
        re.compile(rf"^{re.escape(server.url)}/\?device=\S{{40,}}$"))
    url = (await token_box.inner_text()).strip()
    token = url.split("device=", 1)[1]
    await expect(admin.get_by_test_id("device-qr")).to_have_attribute(
        "src", re.compile(r"^data:image/svg\+xml;base64,"))
    await expect(admin.get_by_test_id("device-token-panel")).to_contain_text("只显示这一次")
    row = admin.get_by_test_id("device-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("1号机")
    await expect(row).to_contain_text(HALL)
    await expect(row).to_contain_text("东侧入口")
    await expect(row.get_by_test_id("device-last-seen")).to_have_text("尚未连接")
    await expect(row.get_by_test_id("device-state")).to_have_text("使用中")

    # The hall screen, in a browser of its own, opens the enrolment URL once.
    screen = await new_page(browser)
    await screen.goto(url)
    await expect(screen.get_by_test_id("department-list")).to_be_visible()
    href = await screen.evaluate("location.href")
    assert href == f"{server.url}/" and token not in href
    # The token is an HttpOnly cookie: the page's scripts cannot read it.
    assert token not in await screen.evaluate("document.cookie")
    await expect(screen.get_by_test_id("kiosk-device")).to_have_text(f"{HALL} · 1号机")

    # It takes a ticket as a registered kiosk: the ticket records the device and its hall.
    await screen.get_by_test_id("dept-tax").click()
    await screen.get_by_test_id("consent-accept").check()
    await screen.get_by_test_id("start-consult").click()
    await expect(screen.get_by_test_id("ticket-number")).to_have_text(re.compile(r"^税A\d{3}$"))
    store = server.app[STORE]
    [ticket_id] = await store.waiting("tax")
    ticket = await store.ticket(ticket_id)
    assert ticket is not None and ticket.hall == HALL and ticket.device

    # The admin sees when it was last connected, then revokes it (after confirming).
    await admin.reload()
    row = admin.get_by_test_id("device-row")
    await expect(row.get_by_test_id("device-last-seen")).not_to_have_text("尚未连接")
    await expect(admin.get_by_test_id("device-token")).to_have_text("")  # shown once only
    await row.get_by_test_id("device-revoke").click()
    await expect(row.get_by_test_id("device-state")).to_contain_text("已停用")
    await expect(row.get_by_test_id("device-revoke")).to_be_disabled()
    assert len(confirmations) == 1 and "1号机" in confirmations[0]

    # The screen is told at once, and says so instead of anything else.
    revoked = screen.get_by_test_id("device-revoked")
    await expect(revoked).to_be_visible()
    await expect(revoked).to_contain_text("本设备已被停用")
    await expect(screen.get_by_test_id("waiting-department")).to_be_hidden()
    await expect(screen.get_by_test_id("connection-status")).to_be_hidden()
