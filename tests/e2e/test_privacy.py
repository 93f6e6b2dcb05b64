"""The kiosk's personal-data notices in real Chromium: the call-back form says what the number is
for, who sees it and for how long (the server's callback_keep_days), takes nothing without the
consent box, and confirms with the number masked; the recording notice shows its version and the
server's retention period."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from server.config import Config
from signaling.departments import Department
from signaling.privacy import CONSENT_NOTICE_VERSION
from signaling.store import Store
from tests.support.pages import new_page
from tests.support.server import LiveServer


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, callback_keep_days=7, retention_days=90)


async def test_the_call_back_form_asks_consent_and_confirms_with_the_number_masked(
        server: LiveServer, store: Store, browser: Any) -> None:
    from playwright.async_api import expect

    estate = await store.department("estate")
    assert estate is not None
    await store.put_department(Department.from_dict(
        {**estate.to_dict(), "closed_days": [], "hours": {"mon-sun": []}}))
    kiosk = await new_page(browser)
    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("dept-estate").click()
    await expect(kiosk.get_by_test_id("callback-form")).to_be_visible()
    privacy = kiosk.get_by_test_id("callback-privacy")
    await expect(privacy).to_contain_text("仅用于")
    await expect(privacy).to_contain_text("保存 7 天后自动删除")
    await expect(kiosk.get_by_test_id("callback-consent-version")).to_have_text(
        f"告知书版本：{CONSENT_NOTICE_VERSION}")

    await kiosk.get_by_test_id("callback-name").fill("张三")
    await kiosk.get_by_test_id("callback-phone").fill("138 1234 5678")
    await kiosk.get_by_test_id("callback-submit").click()
    await expect(kiosk.get_by_test_id("callback-error")).to_have_text(
        "请先勾选同意，才能为您预约回电。")
    assert await store.callbacks(("estate",)) == []

    await kiosk.get_by_test_id("callback-consent").check()
    await kiosk.get_by_test_id("callback-submit").click()
    done = kiosk.get_by_test_id("callback-done-text")
    await expect(done).to_have_text("工作人员上班后会致电 138****5678 给您回电。")
    body = await kiosk.evaluate("document.body.innerText")
    assert "1234 5678" not in body and "12345678" not in body
    # Nothing of it stays in the form for the next person at the kiosk.
    assert await kiosk.get_by_test_id("callback-phone").input_value() == ""
    assert await kiosk.get_by_test_id("callback-consent").is_checked() is False
    [entry] = await store.callbacks(("estate",))
    assert (entry["phone"], entry["consent_version"]) == ("138 1234 5678",
                                                          CONSENT_NOTICE_VERSION)

    # The recording notice names the version the applicant agrees to.
    await kiosk.get_by_test_id("callback-done-back").click()
    await kiosk.get_by_test_id("dept-tax").click()
    await expect(kiosk.get_by_test_id("consent-version")).to_have_text(
        f"告知书版本：{CONSENT_NOTICE_VERSION}")
    # ... and says how long recordings are kept: the server's retention_days.
    await expect(kiosk.get_by_test_id("recording-notice")).to_contain_text("保存90天。")
    await kiosk.context.close()
