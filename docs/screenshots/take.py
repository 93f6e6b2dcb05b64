"""Take the README's screenshots: start the real service (private Redis, demo data), walk through a
consultation in Chromium with a fake camera, and save one PNG per page.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/screenshots/take.py'
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

from server.config import Config  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, login, submit_login  # noqa: E402
from tests.support.server import start_server  # noqa: E402

OUT = Path(__file__).resolve().parent


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        live = await start_server(Config(data_dir=Path(data), demo=True))
        try:
            await walk(live.url)
        finally:
            await live.runner.cleanup()


def save_frame(mp4: bytes, at: float, path: Path) -> None:
    """The composite export's picture ``at`` seconds in, as a PNG."""
    with av.open(io.BytesIO(mp4)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= at:
                frame.to_image().save(path)
                return
    raise RuntimeError("the export is shorter than expected")


async def walk(url: str) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        desk = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        kiosk = await (await browser.new_context(viewport={"width": 1080, "height": 1440})
                       ).new_page()
        await kiosk.goto(url + "/")
        await kiosk.wait_for_timeout(500)
        await kiosk.screenshot(path=str(OUT / "kiosk-start.png"))
        await kiosk.get_by_test_id("dept-search").fill("发票")
        await kiosk.wait_for_timeout(300)
        await kiosk.screenshot(path=str(OUT / "kiosk-search.png"))
        await kiosk.get_by_test_id("dept-search").fill("")
        await kiosk.get_by_test_id("dept-tax").click()
        await kiosk.screenshot(path=str(OUT / "kiosk-notice.png"))
        await kiosk.get_by_test_id("consent-accept").check()
        await kiosk.get_by_test_id("start-consult").click()
        await kiosk.get_by_test_id("queue-position").wait_for()
        await kiosk.screenshot(path=str(OUT / "kiosk-waiting.png"))

        await desk.goto(url + "/staff")
        await desk.screenshot(path=str(OUT / "staff-login.png"))
        await login(desk, url + "/staff", "tax01")
        await desk.get_by_test_id("presence-available").click()
        await desk.get_by_test_id("incoming-call").wait_for()
        await desk.screenshot(path=str(OUT / "staff-ringing.png"))
        await desk.get_by_test_id("accept-call").click()
        await desk.wait_for_timeout(4000)
        await desk.screenshot(path=str(OUT / "staff-call.png"))
        await kiosk.screenshot(path=str(OUT / "kiosk-call.png"))

        # 会商: the tax desk invites 市场监管; a market colleague joins from their desk.
        market = await (await browser.new_context(viewport={"width": 1280, "height": 800})
                        ).new_page()
        await login(market, url + "/staff", "market01")
        await market.get_by_test_id("presence-available").click()
        await desk.get_by_test_id("invite-department").select_option("market")
        await desk.get_by_test_id("invite-note").fill("涉及个体户营业执照变更，请协助")
        await desk.get_by_test_id("invite-send").click()
        await market.get_by_test_id("invite-item").wait_for()
        await market.screenshot(path=str(OUT / "staff-invite.png"))
        await market.get_by_test_id("invite-join").click()
        await market.wait_for_timeout(5000)
        await market.screenshot(path=str(OUT / "staff-joint-call.png"))

        sup = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        await login(sup, url + "/supervisor", "supervisor")
        await sup.get_by_test_id("live-room-row").first.wait_for()
        await sup.get_by_test_id("observe-start").first.click()
        await sup.wait_for_timeout(4000)
        await sup.screenshot(path=str(OUT / "supervisor-observe.png"), full_page=True)
        await sup.get_by_test_id("observe-stop").click()

        await kiosk.get_by_test_id("hangup").click()
        await kiosk.get_by_test_id("rating-5").click()
        await kiosk.screenshot(path=str(OUT / "kiosk-rating.png"))
        await kiosk.get_by_test_id("rating-submit").click()
        await kiosk.wait_for_timeout(1000)

        await sup.reload()
        await sup.get_by_test_id("recording-row").first.wait_for()
        await sup.get_by_test_id("wallboard-staff-row").first.wait_for()
        await sup.screenshot(path=str(OUT / "supervisor-list.png"), full_page=True)
        await sup.get_by_test_id("recording-play").first.click()
        await sup.get_by_test_id("player-toggle").click()
        await sup.wait_for_timeout(2500)
        await sup.screenshot(path=str(OUT / "supervisor-replay.png"), full_page=True)
        await sup.get_by_test_id("export-start").click()
        await sup.get_by_test_id("export-download").wait_for(timeout=120_000)
        href = await sup.get_by_test_id("export-download").get_attribute("href")
        mp4 = await (await sup.request.get(url + str(href))).body()
        save_frame(mp4, at=9.0, path=OUT / "export-frame.png")

        admin = await (await browser.new_context(viewport={"width": 1280, "height": 800})
                       ).new_page()
        await login(admin, url + "/admin", "admin")
        await admin.wait_for_timeout(800)
        await admin.screenshot(path=str(OUT / "admin.png"), full_page=True)

        # A new supervisor: the admin creates the account, the person signs in the first time.
        await admin.get_by_test_id("account-new").click()
        await admin.get_by_test_id("account-username").fill("liuyang")
        await admin.get_by_test_id("account-display-name").fill("刘洋")
        await admin.get_by_test_id("account-role").select_option("supervisor")
        await admin.get_by_test_id("account-departments").get_by_label("税务").check()
        await admin.get_by_test_id("account-create").click()
        await admin.get_by_test_id("account-temp-password").wait_for()
        temporary = (await admin.get_by_test_id("account-temp-password").inner_text()).strip()
        await admin.screenshot(path=str(OUT / "admin-accounts.png"), full_page=True)
        newcomer = await (await browser.new_context(viewport={"width": 1280, "height": 800})
                          ).new_page()
        await newcomer.goto(url + "/supervisor")
        await submit_login(newcomer, "liuyang", temporary)
        await newcomer.get_by_test_id("password-current").fill(temporary)
        for field in ("password-new", "password-confirm"):
            await newcomer.get_by_test_id(field).fill("Hall-Review-2026")
        await newcomer.get_by_test_id("password-change-submit").click()
        await newcomer.get_by_test_id("totp-enroll-qr").wait_for()
        await newcomer.screenshot(path=str(OUT / "sign-in-enroll.png"))

        auditor = await (await browser.new_context(viewport={"width": 1280, "height": 800})
                         ).new_page()
        await login(auditor, url + "/audit", "auditor")
        await auditor.get_by_test_id("audit-row").first.wait_for()
        await auditor.screenshot(path=str(OUT / "audit.png"))
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
