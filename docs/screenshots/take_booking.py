"""Take the appointment (预约) screenshots: the admin opens bookings for 税务, an applicant books a
slot on the kiosk page (the slot list, the form, the code with its QR), arrives with the code and
waits first in line; the admin's day list and the desk's 今日预约 panel. Saved as
docs/screenshots/booking-*.png.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/screenshots/take_booking.py'
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402

from server.config import Config  # noqa: E402
from signaling.client import SignalingClient  # noqa: E402
from signaling.config import NO_LIMITS, SignalingConfig  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, login  # noqa: E402
from tests.support.server import start_server  # noqa: E402

OUT = Path(__file__).resolve().parent


async def main() -> None:
    today = SignalingConfig().local_time(time.time()).date().isoformat()
    with tempfile.TemporaryDirectory() as data:
        # Today counts as a working day, so the shots work on any day; the two walk-ins and the
        # applicant share one address, so the abuse limits are off.
        config = Config(data_dir=Path(data), demo=True, extra_workdays=(today,))
        live = await start_server(replace(config, **dict(NO_LIMITS)))
        try:
            await shoot(live.url)
        finally:
            await live.runner.cleanup()


async def shoot(url: str) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        admin = await (await browser.new_context(viewport={"width": 1280, "height": 900})
                       ).new_page()
        await login(admin, url + "/admin", "admin")
        await admin.get_by_test_id("booking-rules-department").select_option("tax")
        await admin.get_by_test_id("booking-rules-slot_minutes").fill("15")
        await admin.get_by_test_id("booking-rules-capacity").fill("3")
        # The first slot starts within 15 minutes: it may be arrived for at once.
        await admin.get_by_test_id("booking-rules-early_minutes").fill("15")
        await admin.get_by_test_id("booking-rules-save").click()
        await admin.get_by_test_id("booking-rules-saved").wait_for()

        kiosk = await (await browser.new_context(viewport={"width": 1080, "height": 1440})
                       ).new_page()
        await kiosk.goto(url + "/")
        await kiosk.get_by_test_id("appointment-start").click()
        await kiosk.get_by_test_id("booking-new").click()
        await kiosk.get_by_test_id("booking-dept-tax").click()
        await kiosk.get_by_test_id("appointment-slot").first.wait_for()
        await kiosk.screenshot(path=str(OUT / "booking-slots.png"))
        await kiosk.get_by_test_id("appointment-slot").first.click()
        await kiosk.get_by_test_id("booking-name").fill("张三")
        await kiosk.get_by_test_id("booking-phone").fill("13812345678")
        await kiosk.get_by_test_id("booking-consent").check()
        await kiosk.screenshot(path=str(OUT / "booking-form.png"))
        await kiosk.get_by_test_id("appointment-confirm").click()
        await kiosk.get_by_test_id("booking-qr-image").wait_for()
        code = await kiosk.get_by_test_id("appointment-code").inner_text()
        await kiosk.screenshot(path=str(OUT / "booking-code.png"))
        await kiosk.get_by_test_id("booking-done-back").click()

        walk_in = await SignalingClient.connect(url, "/kiosk")
        try:
            for _ in range(2):
                await walk_in.request("ticket:create", {"department": "tax", "consent": True})
            await kiosk.get_by_test_id("appointment-start").click()
            await kiosk.get_by_test_id("booking-have-code").click()
            await kiosk.get_by_test_id("booking-code-input").fill(code)
            await kiosk.get_by_test_id("booking-arrive-consent").check()
            await kiosk.screenshot(path=str(OUT / "booking-arrive.png"))
            await kiosk.get_by_test_id("booking-arrive-submit").click()
            await kiosk.get_by_test_id("ticket-number").wait_for()
            await kiosk.wait_for_timeout(500)
            await kiosk.screenshot(path=str(OUT / "booking-waiting.png"))

            await admin.get_by_test_id("bookings-show").click()
            await admin.get_by_test_id("booking-row").first.wait_for()
            await admin.get_by_test_id("admin-bookings").screenshot(
                path=str(OUT / "booking-admin.png"))
        finally:
            await walk_in.close()
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
