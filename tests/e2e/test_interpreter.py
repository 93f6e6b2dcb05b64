"""A sign-language interpreter in a call, through the real server and three Chromium pages: the
applicant asks for 手语 at the kiosk, tax accepts, the sign interpreter's desk is rung, joins,
and appears pinned in the kiosk's main picture, with tax beside it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from server.keys import ROOMS
from tests.support.browser import login
from tests.support.pages import new_page, wait_media
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def test_a_sign_request_rings_an_interpreter_who_is_pinned_on_the_kiosk(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, tax, sign = [await new_page(browser) for _ in range(3)]
    for page, username in ((tax, "tax01"), (sign, "sign01")):
        await login(page, f"{server.url}/staff", username)
        await page.get_by_test_id("presence-available").click()
        await expect(page.get_by_test_id("presence-available")).to_have_attribute(
            "aria-pressed", "true")

    # The applicant picks 税务 and asks for sign language; the pools are no departments.
    await kiosk.goto(server.url + "/")
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    await expect(kiosk.get_by_test_id("dept-interp-sign")).to_have_count(0)
    await kiosk.get_by_test_id("dept-tax").click()
    choice = kiosk.locator('[data-testid=interpreter-request][data-skill=sign]')
    await expect(choice).to_have_text("手语翻译")
    await expect(kiosk.locator("[data-testid=interpreter-request]")).to_have_count(4)
    await choice.click()
    await expect(choice).to_have_attribute("aria-pressed", "true")
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()

    await expect(tax.get_by_test_id("incoming-call")).to_be_visible(timeout=15_000)
    await tax.get_by_test_id("accept-call").click()
    await wait_media(kiosk, frames=1)

    # The interpreter's desk is rung with the call's number and joins.
    invite = sign.get_by_test_id("invite-item")
    await expect(invite).to_have_count(1, timeout=10_000)
    await expect(invite).to_contain_text("税A001")
    await sign.get_by_test_id("invite-join").click()
    await wait_media(sign, frames=1)
    await expect(sign.get_by_test_id("hangup")).to_have_text("离开会话")
    await expect(sign.get_by_test_id("invite-panel")).to_be_hidden()
    [room] = server.app[ROOMS].rooms()
    assert {p["participant_id"]: p["role"] for p in room.participants_info()}["i-sign01"] \
        == "interpreter"

    # Pinned: the interpreter in the kiosk's main picture, the tax desk in a tile beside it.
    pinned = kiosk.locator("[data-testid=remote-video][data-role=interpreter]")
    await expect(pinned).to_have_count(1, timeout=15_000)
    await expect(kiosk.locator("[data-testid=remote-extra] [data-participant=s-tax01]")
                 ).to_have_count(1)
    deadline = time.monotonic() + 10  # the first decoded frame sets videoWidth
    while not await pinned.evaluate("v => v.videoWidth > 0 && v.srcObject !== null"):
        assert time.monotonic() < deadline, "the pinned interpreter video shows no picture"
        await kiosk.wait_for_timeout(200)
    await expect(kiosk.get_by_test_id("interpreter-unavailable")).to_be_hidden()

    # Staff can add another interpreter from the invite form: the pools are among the choices.
    options = await tax.get_by_test_id("invite-department").locator("option").all_inner_texts()
    assert "朝鲜语翻译" in options and "手语翻译" in options
