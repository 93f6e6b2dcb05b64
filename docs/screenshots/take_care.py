"""Take the 关怀模式 screenshots: the real service (private Redis, demo data, espeak-ng), the kiosk
start screen with care mode on, and its waiting screen with the spoken prompt's caption, on a
hall screen's width; saved as kiosk-care-start.png and kiosk-care-waiting.png.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/screenshots/take_care.py'
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
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.server import start_server  # noqa: E402

OUT = Path(__file__).resolve().parent
KIOSK = {"width": 1080, "height": 1350}


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        live = await start_server(Config(data_dir=Path(data), demo=True))
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_ARGS)
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
                await browser.close()
        finally:
            await live.runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
