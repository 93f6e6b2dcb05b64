"""好差评 of a 会商 and its 差评 case in real Chromium: tax serves, market regulation joins, the
applicant rates tax 2 (with a reason and a comment) and market 5; a case opens for tax only, due
15 working days later; a supervisor walks it to closed on the supervisor page."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.keys import CASES, CONFIG, STORE
from signaling import keys
from tests.support.browser import login
from tests.support.pages import joint_call, new_page
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

pytestmark = pytest.mark.browser


async def test_a_consultation_rated_per_department_opens_a_case_walked_to_closed(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, _tax, _market = await joint_call(server, browser)

    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("rating-tax-2")).to_be_visible(timeout=10_000)
    await expect(kiosk.get_by_test_id("rating-single")).to_be_hidden()
    await expect(kiosk.get_by_test_id("rating-submit")).to_be_disabled()
    await kiosk.get_by_test_id("rating-tax-2").click()
    await kiosk.get_by_test_id("rating-tax-reason-long_wait").check()
    await kiosk.get_by_test_id("rating-tax-comment").fill("等了很久才接通")
    # A 5 offers only the good reasons.
    await kiosk.get_by_test_id("rating-market-5").click()
    await expect(kiosk.get_by_test_id("rating-market-reason-friendly")).to_be_visible()
    await expect(kiosk.get_by_test_id("rating-market-reason-long_wait")).to_have_count(0)
    await kiosk.get_by_test_id("rating-submit").click()
    await expect(kiosk.get_by_test_id("thanks-back")).to_be_visible(timeout=10_000)

    redis = server.app[STORE].redis
    rated = [e for e in await stream_entries(redis, keys.LOG) if e["event"] == "RATE"]
    assert [(e["department"], e["staff"], e["detail"]) for e in rated] == [
        ("tax", "tax01", "2"), ("market", "market01", "5")]
    case_ids = await redis.zrange(keys.CASES, 0, -1)
    assert len(case_ids) == 1
    case = await redis.hgetall(keys.CASE(case_ids[0]))
    today = server.app[CASES].today()
    due = server.app[CONFIG].signaling.calendar().add_working_days(today, 15).isoformat()
    assert (case["department"], case["score"], case["reasons"], case["comment"], case["due"]) == (
        "tax", "2", "long_wait", "等了很久才接通", due)
    assert case["room_id"]

    supervisor = await new_page(browser)
    await login(supervisor, f"{server.url}/supervisor", "supervisor")
    row = supervisor.get_by_test_id("case-row")
    await expect(row).to_have_count(1, timeout=15_000)
    await expect(row).to_have_attribute("data-department", "tax")
    await expect(row).to_have_attribute("data-due", due)
    await row.get_by_test_id("case-open").click()
    panel = supervisor.get_by_test_id("case-panel")
    await expect(panel).to_be_visible()
    await expect(supervisor.get_by_test_id("case-details")).to_contain_text("等了很久才接通")
    await expect(supervisor.get_by_test_id("case-replay")).to_be_visible()
    for step, text in (("callback", "已电话回访，群众反映属实"),
                       ("rectify", "已调整排班，高峰期增开窗口"),
                       ("feedback", "已电话告知群众整改结果"), ("recheck", "复核通过")):
        await supervisor.get_by_test_id("case-step").select_option(step)
        await supervisor.get_by_test_id("case-text").fill(text)
        await supervisor.get_by_test_id("case-step-submit").click()
        await expect(supervisor.get_by_test_id("case-history-item").last).to_contain_text(text)
    await expect(panel).to_have_attribute("data-state", "closed")
    await expect(supervisor.get_by_test_id("case-step-form")).to_be_hidden()
    await expect(supervisor.get_by_test_id("case-history-item")).to_have_count(5)
    await expect(row).to_have_attribute("data-state", "closed")
    # The replay link opens the recording in the player.
    await supervisor.get_by_test_id("case-replay").click()
    await expect(supervisor.get_by_test_id("recording-player")).to_be_visible(timeout=10_000)
    for _ in range(50):
        if (await redis.hget(keys.CASE(case_ids[0]), "state")) == "closed":
            break
        await asyncio.sleep(0.1)
    assert (await redis.hgetall(keys.CASE(case_ids[0])))["closed_at"]
