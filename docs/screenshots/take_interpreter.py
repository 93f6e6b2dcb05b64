"""Take the interpreter screenshots: the real service (private Redis, demo data), the kiosk's
notice screen with 手语 chosen, then a 税务 call the sign interpreter (sign01) joined, pinned in
the kiosk's main picture, and the interpreter's own desk in the call.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/screenshots/take_interpreter.py'
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright, expect  # noqa: E402

from server.config import Config  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, login  # noqa: E402
from tests.support.pages import new_page, wait_media  # noqa: E402
from tests.support.server import LiveServer, start_server  # noqa: E402

OUT = Path(__file__).resolve().parent
KIOSK = {"width": 1080, "height": 1350}


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        live = await start_server(Config(data_dir=Path(data), demo=True))
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_ARGS)
                await walk(live, browser)
                await browser.close()
        finally:
            await live.runner.cleanup()


async def walk(live: LiveServer, browser: object) -> None:
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
    asyncio.run(main())
