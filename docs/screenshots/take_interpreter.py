"""Take the interpreter screenshots: the real service (private Redis, demo data), the kiosk's
notice screen with 手语 chosen, then a 税务 call the sign interpreter (sign01) joined, pinned in
the kiosk's main picture, and the interpreter's own desk in the call.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/screenshots/take_interpreter.py'
"""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import expect
from service import KIOSK, OUT, with_service  # docs/screenshots/service.py

from tests.support.browser import login
from tests.support.pages import new_page, wait_media
from tests.support.server import LiveServer


async def walk(live: LiveServer, browser: Any) -> None:
    kiosk, tax, sign = [await new_page(browser) for _ in range(3)]
    await kiosk.set_viewport_size(KIOSK)
    for page, username in ((tax, "tax01"), (sign, "sign01")):
        await login(page, f"{live.url}/staff", username)
        await page.get_by_test_id("presence-available").click()
        await expect(page.get_by_test_id("presence-available")).to_have_attribute(
            "aria-pressed", "true")
    await kiosk.goto(live.url + "/")
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.locator("[data-testid=interpreter-request][data-skill=sign]").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.screenshot(path=OUT / "kiosk-interpreter-request.png")
    await kiosk.get_by_test_id("start-consult").click()
    await expect(tax.get_by_test_id("incoming-call")).to_be_visible(timeout=15_000)
    await tax.get_by_test_id("accept-call").click()
    await expect(sign.get_by_test_id("invite-item")).to_have_count(1, timeout=10_000)
    await sign.get_by_test_id("invite-join").click()
    await wait_media(sign, frames=1)
    await expect(kiosk.locator("[data-testid=remote-video][data-role=interpreter]")
                 ).to_have_count(1, timeout=15_000)
    await wait_media(kiosk, frames=30)
    await kiosk.wait_for_timeout(1000)
    await kiosk.screenshot(path=OUT / "kiosk-interpreter.png")
    await sign.screenshot(path=OUT / "staff-interpreter.png")


if __name__ == "__main__":
    asyncio.run(with_service(walk))
