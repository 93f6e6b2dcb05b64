"""Browser pages in a call: open one, ring a desk from a kiosk, wait for decoded media."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.support.browser import INBOUND_STATS, TRACK_PEER_CONNECTIONS, login
from tests.support.server import LiveServer


async def new_page(browser: Any, init_scripts: tuple[str, ...] = ()) -> Any:
    """A page in its own context, remembering its peer connections; ``init_scripts`` run too,
    before any of the page's own scripts."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    def console(message: Any) -> None:
        """The page's warnings and errors go to the test's output (pytest shows it on a
        failure)."""
        if message.type in ("warning", "error"):
            print(f"[{page.url} console {message.type}] {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: print(f"[{page.url} page error] {error}"))
    for script in (TRACK_PEER_CONNECTIONS, *init_scripts):
        await page.add_init_script(script)
    return page


async def inbound_frames(page: Any) -> dict[str, int]:
    return await page.evaluate(INBOUND_STATS)  # type: ignore[no-any-return]


async def wait_media(page: Any, frames: int, timeout: float = 20.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    stats = await inbound_frames(page)
    while time.monotonic() < deadline:
        stats = await inbound_frames(page)
        if stats["framesDecoded"] >= frames and stats["audioPackets"] > 0:
            return stats
        await asyncio.sleep(0.2)
    pytest.fail(f"media did not arrive: {stats}")


async def take_tax_ticket(server: LiveServer, kiosk: Any) -> None:
    """The applicant picks 税务, accepts the recording notice and starts: ticket 税A001."""
    from playwright.async_api import expect

    await kiosk.goto(server.url + "/")
    await expect(kiosk.get_by_test_id("dept-tax")).to_have_text("税务")
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(kiosk.get_by_test_id("queue-position")).to_be_visible()
    await expect(kiosk.get_by_test_id("ticket-number")).to_have_text("税A001")


async def ring(server: LiveServer, browser: Any, init_scripts: tuple[str, ...] = (),
               staff_browser: Any = None) -> tuple[Any, Any]:
    """A staff member of 税务 available, an applicant who asks 税务: the staff page is ringing.
    Returns the kiosk and staff pages (the staff page in `staff_browser` if given)."""
    from playwright.async_api import expect

    kiosk = await new_page(browser, init_scripts)
    staff = await new_page(staff_browser or browser, init_scripts)

    # The staff member logs in and is available before anyone asks.
    await login(staff, f"{server.url}/staff", "tax01")
    await staff.get_by_test_id("presence-available").click()
    await expect(staff.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")

    await take_tax_ticket(server, kiosk)

    # The staff member is rung.
    await expect(staff.get_by_test_id("incoming-call")).to_be_visible(timeout=10_000)
    await expect(staff.get_by_test_id("incoming-call")).to_contain_text("税A001")
    return kiosk, staff


async def connected(server: LiveServer, browser: Any, init_scripts: tuple[str, ...] = (),
                    staff_browser: Any = None) -> tuple[Any, Any]:
    """Kiosk and staff pages in a call, both decoding the other's video."""
    kiosk, staff = await ring(server, browser, init_scripts, staff_browser)
    await staff.get_by_test_id("accept-call").click()
    await wait_media(kiosk, frames=1)
    await wait_media(staff, frames=1)
    return kiosk, staff


async def joint_call(server: LiveServer, browser: Any) -> tuple[Any, Any, Any]:
    """A 会商: the kiosk in a call with tax01, who invites 市场监管; market01 (signed in and
    available before the call) takes the invitation. Returns the kiosk, tax and market pages,
    the market desk in the room."""
    from playwright.async_api import expect

    from tests.support.browser import login

    market = await new_page(browser)
    await login(market, f"{server.url}/staff", "market01")
    await market.get_by_test_id("presence-available").click()
    await expect(market.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")
    kiosk, tax = await connected(server, browser)
    await tax.get_by_test_id("invite-department").select_option("market")
    await tax.get_by_test_id("invite-send").click()
    await expect(market.get_by_test_id("invite-item")).to_have_count(1, timeout=10_000)
    await market.get_by_test_id("invite-join").click()
    await expect(market.get_by_test_id("hangup")).to_have_text("离开会话", timeout=15_000)
    return kiosk, tax, market


# page.evaluate(SCREEN_STATS): whether the remote-screen element shows a track, its picture width
# and the frames decoded on that track (the inbound-rtp stats of its own receiver).
SCREEN_STATS = """
async () => {
  const el = document.querySelector('[data-testid=remote-screen]');
  if (!el || el.hidden || !el.srcObject) return {shown: false, frames: 0, width: 0};
  const track = el.srcObject.getVideoTracks()[0];
  let frames = 0;
  for (const pc of window.__pcs) {
    for (const transceiver of pc.getTransceivers()) {
      if (!track || transceiver.receiver.track !== track) continue;
      const report = await transceiver.receiver.getStats();
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
      });
    }
  }
  return {shown: true, frames, width: el.videoWidth, track: track ? track.id : null};
}
"""


async def wait_screen(page: Any, frames: int, timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the page shows a remote screen with at least ``frames`` decoded frames."""
    deadline = time.monotonic() + timeout
    stats = await page.evaluate(SCREEN_STATS)
    while time.monotonic() < deadline:
        stats = await page.evaluate(SCREEN_STATS)
        if stats["shown"] and stats["frames"] >= frames and stats["width"] > 0:
            return stats
        await asyncio.sleep(0.2)
    pytest.fail(f"no screen frames: {stats}")
