"""The 一次性告知单 in real Chromium: the desk picks a matter, unticks a material and signs; the
kiosk sees each change live, and after the call the sealed notice with its QR code; the QR's link
opens the read-only page on a "phone" (another browser context, no sign-in), which verifies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.pages import connected, joint_call, new_page
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def test_a_desk_builds_the_notice_and_the_applicant_takes_it_home(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await connected(server, browser)
    panel = staff.get_by_test_id("checklist-panel")
    await expect(panel).to_be_visible(timeout=10_000)
    # Only 税务's matters are offered to a 税务 desk.
    options = await staff.get_by_test_id("checklist-matter").locator("option").all_inner_texts()
    assert "增值税发票申领" in options and "个体工商户设立登记" not in options
    await staff.get_by_test_id("checklist-matter").select_option("tax-invoice")
    await staff.get_by_test_id("checklist-add").click()
    item = staff.get_by_test_id("checklist-item")
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text("增值税发票申领")

    # The applicant's screen shows it at once, with every material ticked.
    view = kiosk.get_by_test_id("checklist-view")
    await expect(view).to_be_visible(timeout=5_000)
    await expect(view.get_by_test_id("checklist-item")).to_contain_text("增值税发票申领")
    materials = view.get_by_test_id("checklist-material")
    count = await materials.count()
    assert count >= 2
    # The desk unticks one, edits another's text, adds a note and signs.
    first = item.get_by_test_id("checklist-material").nth(0)
    await first.get_by_test_id("checklist-material-check").uncheck()
    await expect(materials).to_have_count(count - 1)
    text = item.get_by_test_id("checklist-material-text").nth(1)
    await text.fill("经办人身份证原件（已核对）")
    await text.press("Enter")
    await expect(view).to_contain_text("经办人身份证原件（已核对）")
    await staff.get_by_test_id("checklist-note").fill("请于工作日 9:00–17:00 到 3 号窗口领取")
    await staff.get_by_test_id("checklist-note-add").click()
    await expect(view).to_contain_text("3 号窗口")
    await staff.get_by_test_id("checklist-sign").click()
    await expect(staff.get_by_test_id("checklist-status")).to_be_visible()
    await expect(staff.get_by_test_id("checklist-add")).to_be_disabled()
    await expect(view.get_by_test_id("checklist-signature")).to_have_attribute(
        "data-signed", "true")

    # The desk ends the call: the kiosk shows the sealed notice with its QR code.
    await staff.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("rating-5")).to_be_visible(timeout=10_000)
    qr = kiosk.get_by_test_id("checklist-qr")
    await expect(qr).to_be_visible(timeout=10_000)
    await expect(view).to_have_attribute("data-sealed", "true")
    url = await qr.get_attribute("data-url")
    assert url and url == await qr.get_attribute("href")
    assert url.startswith(f"{server.url}/notice/")
    assert await kiosk.get_by_test_id("checklist-qr-image").evaluate(
        "img => img.complete && img.naturalWidth > 0")
    # The notice stays beside the rating without covering it.
    await kiosk.get_by_test_id("rating-1").click()
    await kiosk.get_by_test_id("rating-submit").click()
    await expect(kiosk.get_by_test_id("thanks-back")).to_be_visible()

    # The phone opens the link: the document, its signature checked, a print layout.
    phone = await new_page(browser)
    await phone.set_viewport_size({"width": 390, "height": 844})
    await phone.goto(url)
    document = phone.get_by_test_id("checklist-document")
    await expect(document).to_be_visible()
    await expect(phone.get_by_test_id("checklist-signature-ok")).to_be_visible()
    await expect(document).to_contain_text("增值税发票申领")
    await expect(document).to_contain_text("经办人身份证原件（已核对）")
    await expect(document).to_contain_text("3 号窗口")
    await expect(phone.get_by_test_id("checklist-part-signature")).to_contain_text("税务")
    await expect(phone.get_by_test_id("checklist-material")).to_have_count(count - 1)
    await phone.emulate_media(media="print")
    await expect(phone.locator(".notice-raw")).to_be_hidden()
    # The same page without its token is not there.
    response = await phone.goto(url.split("?")[0])
    assert response is not None and response.status == 404
    await phone.context.close()


async def test_in_a_joint_consultation_each_department_adds_and_signs_its_own_part(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, tax, market = await joint_call(server, browser)
    await expect(market.get_by_test_id("checklist-panel")).to_be_visible(timeout=15_000)
    # The invited desk is offered its own department's matters only.
    options = await market.get_by_test_id("checklist-matter").locator("option").all_inner_texts()
    assert "个体工商户设立登记" in options and "增值税发票申领" not in options

    for page, matter in ((tax, "tax-invoice"), (market, "market-sole-proprietor")):
        await page.get_by_test_id("checklist-matter").select_option(matter)
        await page.get_by_test_id("checklist-add").click()
    view = kiosk.get_by_test_id("checklist-view")
    await expect(view.get_by_test_id("checklist-part")).to_have_count(2, timeout=5_000)
    await expect(view).to_contain_text("增值税发票申领")
    await expect(view).to_contain_text("个体工商户设立登记")
    # Each desk sees the other's part, read only (no checkboxes in it).
    other = tax.locator('[data-testid="checklist-part"][data-department="market"]')
    await expect(other).to_contain_text("个体工商户设立登记")
    await expect(other.get_by_test_id("checklist-material-check")).to_have_count(0)
    for page in (tax, market):
        await page.get_by_test_id("checklist-sign").click()
    await expect(view.locator('[data-signed="true"]')).to_have_count(2, timeout=5_000)

    await tax.get_by_test_id("hangup").click()
    qr = kiosk.get_by_test_id("checklist-qr")
    await expect(qr).to_be_visible(timeout=10_000)
    phone = await new_page(browser)
    await phone.goto(str(await qr.get_attribute("data-url")))
    await expect(phone.get_by_test_id("checklist-signature-ok")).to_be_visible()
    await expect(phone.get_by_test_id("checklist-part")).to_have_count(2)
    await expect(phone.get_by_test_id("checklist-part-signature")).to_have_count(2)
    await phone.context.close()
    await market.context.close()
