"""The hall's whole service loop in real Chromium (issue 12): a tax call with market regulation
invited; each department adds a matter to the 一次性告知单 and signs its part while the applicant
watches the list grow; at the end the kiosk shows the sealed notice's QR code, and the applicant
rates tax 2 and market 5. The QR's link opens the read-only page on a phone, which verifies. A
差评 case opens for tax only, due 15 working days later counted across the National Day holiday;
a supervisor walks it to closed; the statistics show the consultation and both ratings."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from server.keys import CASES
from signaling import keys
from tests.support.browser import login
from tests.support.pages import joint_call, new_page
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

# The case opens on the last working day before the 2026 National Day holiday (10-01…10-07, with
# Saturday 10-10 worked): 15 working days from the next one end on 10-27, not 10-21.
OPENED = dt.datetime(2026, 9, 30, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DUE = "2026-10-27"


async def test_a_joint_consultation_from_the_notice_to_a_closed_case_and_the_statistics(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    server.app[CASES].now = OPENED.timestamp
    kiosk, tax, market = await joint_call(server, browser)
    await expect(market.get_by_test_id("checklist-panel")).to_be_visible(timeout=15_000)

    # Each department adds a matter of its own; the applicant sees each one as it comes.
    view = kiosk.get_by_test_id("checklist-view")
    for page, matter, name in ((tax, "tax-invoice", "增值税发票申领"),
                               (market, "market-sole-proprietor", "个体工商户设立登记")):
        await page.get_by_test_id("checklist-matter").select_option(matter)
        await page.get_by_test_id("checklist-add").click()
        await expect(page.get_by_test_id("checklist-item").first).to_be_visible()
        await expect(view).to_contain_text(name, timeout=5_000)
    for page in (tax, market):
        await page.get_by_test_id("checklist-sign").click()
    await expect(view.locator('[data-signed="true"]')).to_have_count(2, timeout=5_000)

    # The applicant ends the call: the sealed notice's QR code, then a rating per department.
    await kiosk.get_by_test_id("hangup").click()
    qr = kiosk.get_by_test_id("checklist-qr")
    await expect(qr).to_be_visible(timeout=10_000)
    url = str(await qr.get_attribute("data-url"))
    await kiosk.get_by_test_id("rating-tax-2").click()
    await kiosk.get_by_test_id("rating-market-5").click()
    await kiosk.get_by_test_id("rating-submit").click()
    await expect(kiosk.get_by_test_id("thanks-back")).to_be_visible(timeout=10_000)

    phone = await new_page(browser)
    await phone.set_viewport_size({"width": 390, "height": 844})
    await phone.goto(url)
    await expect(phone.get_by_test_id("checklist-document")).to_contain_text("增值税发票申领")
    await expect(phone.get_by_test_id("checklist-document")).to_contain_text("个体工商户设立登记")
    await expect(phone.get_by_test_id("checklist-signature-ok")).to_be_visible()
    await phone.context.close()

    # One case, for tax only, due across the holiday.
    redis = server.app[CASES].redis
    case_ids = await redis.zrange(keys.CASES, 0, -1)
    assert len(case_ids) == 1
    case = await redis.hgetall(keys.CASE(case_ids[0]))
    assert (case["department"], case["score"], case["due"]) == ("tax", "2", DUE)

    supervisor = await new_page(browser)
    await login(supervisor, f"{server.url}/supervisor", "supervisor")
    row = supervisor.get_by_test_id("case-row")
    await expect(row).to_have_count(1, timeout=15_000)
    await expect(row).to_have_attribute("data-department", "tax")
    await expect(row).to_have_attribute("data-due", DUE)
    await row.get_by_test_id("case-open").click()
    for step, text in (("callback", "已回访，群众反映等待时间长属实"),
                       ("explain", "当日 10 时系统升级，已向群众说明"),
                       ("feedback", "已电话告知群众"), ("recheck", "复核通过")):
        await supervisor.get_by_test_id("case-step").select_option(step)
        await supervisor.get_by_test_id("case-text").fill(text)
        await supervisor.get_by_test_id("case-step-submit").click()
        await expect(supervisor.get_by_test_id("case-history-item").last).to_contain_text(text)
    await expect(supervisor.get_by_test_id("case-panel")).to_have_attribute("data-state", "closed")
    await expect(row).to_have_attribute("data-state", "closed")

    # The statistics count the consultation, the 会商 and both ratings (one 满意 of two).
    await supervisor.get_by_test_id("stats").scroll_into_view_if_needed()
    total = supervisor.get_by_test_id("stats-total")
    field = total.locator('[data-field="rated"]')
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and await field.text_content() != "2":
        await supervisor.get_by_test_id("stats-apply").click()  # the rollups follow every 2 s
        await supervisor.wait_for_timeout(500)
    for name, value in (("consultations", "1"), ("answered", "1"), ("joint_share", "100.0%"),
                        ("rated", "2"), ("satisfaction", "50.0%")):
        await expect(total.locator(f'[data-field="{name}"]')).to_have_text(value)
    await expect(supervisor.get_by_test_id("stats-chart").first).to_have_attribute(
        "data-ready", "1")
