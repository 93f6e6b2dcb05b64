"""Take the service loop's screenshots: the real service (private Redis, demo data), a 税务 call
with 市场监管 invited, both departments' parts of the 一次性告知单 on the kiosk, the sealed notice
with its QR code after the call, the read-only page on a phone, and the 差评 case on the
supervisor page.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/screenshots/take_loop.py'
"""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import expect
from service import KIOSK, OUT, with_service  # docs/screenshots/service.py

from tests.support.browser import login
from tests.support.pages import connected, new_page
from tests.support.server import LiveServer


async def walk(live: LiveServer, browser: Any) -> None:
    market = await new_page(browser)
    await login(market, f"{live.url}/staff", "market01")
    await market.get_by_test_id("presence-available").click()
    kiosk, tax = await connected(live, browser)
    await kiosk.set_viewport_size(KIOSK)
    await tax.get_by_test_id("invite-department").select_option("market")
    await tax.get_by_test_id("invite-send").click()
    await market.get_by_test_id("invite-join").click()
    await expect(market.get_by_test_id("checklist-panel")).to_be_visible(timeout=15_000)
    for page, matter in ((tax, "tax-invoice"), (market, "market-sole-proprietor")):
        await page.get_by_test_id("checklist-matter").select_option(matter)
        await page.get_by_test_id("checklist-add").click()
    await tax.get_by_test_id("checklist-note").fill("请于工作日 9:00–17:00 到 3 号窗口领取发票")
    await tax.get_by_test_id("checklist-note-add").click()
    await tax.get_by_test_id("checklist-sign").click()
    view = kiosk.get_by_test_id("checklist-view")
    await expect(view.get_by_test_id("checklist-part")).to_have_count(2, timeout=5_000)
    await expect(view.locator('[data-signed="true"]')).to_have_count(1, timeout=5_000)
    await tax.wait_for_timeout(1000)
    await tax.screenshot(path=OUT / "staff-checklist.png")
    await kiosk.screenshot(path=OUT / "kiosk-checklist.png")

    await market.get_by_test_id("checklist-sign").click()
    await expect(view.locator('[data-signed="true"]')).to_have_count(2, timeout=5_000)
    await kiosk.get_by_test_id("hangup").click()
    qr = kiosk.get_by_test_id("checklist-qr")
    await expect(qr).to_be_visible(timeout=10_000)
    await kiosk.get_by_test_id("rating-tax-2").click()
    await kiosk.get_by_test_id("rating-tax-reason-long_wait").check()
    await kiosk.get_by_test_id("rating-market-5").click()
    await kiosk.wait_for_timeout(500)
    await kiosk.screenshot(path=OUT / "kiosk-notice-qr.png")
    url = str(await qr.get_attribute("data-url"))
    await kiosk.get_by_test_id("rating-submit").click()

    phone = await new_page(browser)
    await phone.set_viewport_size({"width": 390, "height": 844})
    await phone.goto(url)
    await expect(phone.get_by_test_id("checklist-signature-ok")).to_be_visible()
    await phone.screenshot(path=OUT / "notice-phone.png", full_page=True)

    supervisor = await new_page(browser)
    await supervisor.set_viewport_size({"width": 1280, "height": 900})
    await login(supervisor, f"{live.url}/supervisor", "supervisor")
    row = supervisor.get_by_test_id("case-row")
    await expect(row).to_have_count(1, timeout=15_000)
    await row.get_by_test_id("case-open").click()
    await supervisor.get_by_test_id("case-step").select_option("callback")
    await supervisor.get_by_test_id("case-text").fill("已电话回访，群众反映等待时间长属实")
    await supervisor.get_by_test_id("case-step-submit").click()
    await expect(supervisor.get_by_test_id("case-history-item")).to_have_count(2)
    await supervisor.get_by_test_id("case-panel").scroll_into_view_if_needed()
    await supervisor.screenshot(path=OUT / "supervisor-case.png")


if __name__ == "__main__":
    asyncio.run(with_service(walk))
