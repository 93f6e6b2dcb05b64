"""Take the 关怀模式 screenshots: the real service (private Redis, demo data, espeak-ng), the kiosk
start screen with care mode on, and its waiting screen with the spoken prompt's caption, on a
hall screen's width; saved as kiosk-care-start.png and kiosk-care-waiting.png.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/screenshots/take_care.py'
"""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import expect
from service import KIOSK, OUT, with_service  # docs/screenshots/service.py

from tests.support.server import LiveServer


async def walk(live: LiveServer, browser: Any) -> None:
    page = await (await browser.new_context(viewport=KIOSK)).new_page()
    await page.goto(live.url + "/")
    await expect(page.get_by_test_id("dept-tax")).to_be_visible()
    await page.get_by_test_id("care-mode").click()
    await expect(page.get_by_test_id("speech-caption")).to_be_visible()
    await page.wait_for_timeout(500)  # the button's colour transition
    await page.screenshot(path=str(OUT / "kiosk-care-start.png"))
    await page.get_by_test_id("dept-tax").click()
    await page.get_by_test_id("consent-accept").check()
    await page.get_by_test_id("start-consult").click()
    await expect(page.get_by_test_id("speech-caption")).to_contain_text("税A001")
    await page.screenshot(path=str(OUT / "kiosk-care-waiting.png"))


if __name__ == "__main__":
    asyncio.run(with_service(walk))
