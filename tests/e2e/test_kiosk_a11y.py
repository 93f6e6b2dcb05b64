"""The kiosk for everyone, in real Chromium on a portrait hall screen (1080x1920): every target at
least 48x48 CSS px and all text at least 20 px on each screen; at 200 % zoom (540x960 CSS px) no
sideways scroll and no clipped control; and a keyboard-only journey (Tab, Enter, Space) from the
start screen to a ticket and back, with a visible focus ring at every step."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.pages import connected, new_page
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

HALL_SCREEN = {"width": 1080, "height": 1920}
# The hall screen at 200 % browser zoom: the same device pixels, half the CSS pixels.
ZOOMED = {"width": 540, "height": 960}
MIN_TARGET = 48
MIN_TEXT = 20

# page.evaluate(MEASURE): the visible controls smaller than the minimum target, and the visible
# text (an element with a text node of its own) smaller than the minimum font size.
MEASURE = """
([minTarget, minText]) => {
  const visible = (el) => el.checkVisibility({visibilityProperty: true, opacityProperty: true});
  const name = (el) => el.dataset.testid ? `[data-testid=${el.dataset.testid}]`
    : `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`;
  const small = [];
  const controls = 'button, input:not([type=hidden]), select, textarea, a[href], '
    + '[role=button], [role=radio], [tabindex]:not([tabindex="-1"])';
  for (const el of document.querySelectorAll(controls)) {
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width < minTarget || r.height < minTarget) {
      small.push(`${name(el)} ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  const tiny = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!visible(el)) continue;
    const own = [...el.childNodes].some(
      (n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    const size = parseFloat(getComputedStyle(el).fontSize);
    const text = el.textContent.trim().slice(0, 20);
    if (own && size < minText) tiny.push(`${name(el)} ${size}px "${text}"`);
  }
  return {small, tiny};
}
"""

# page.evaluate(OVERFLOW): sideways scroll of the page, and visible controls cut off (outside the
# viewport, or with more content than room).
OVERFLOW = """
() => {
  const doc = document.scrollingElement;
  const clipped = [];
  const seen = 'button, input, select, textarea, a[href], h1, h2, p';
  for (const el of document.querySelectorAll(seen)) {
    // The screen-reader-only live region is clipped to 1 px on purpose.
    if (!el.checkVisibility() || el.closest('.visually-hidden')) continue;
    const r = el.getBoundingClientRect();
    const cut = r.left < -1 || r.right > innerWidth + 1 || el.scrollWidth > el.clientWidth + 1;
    const where = `${Math.round(r.left)}..${Math.round(r.right)}`;
    const scroll = `${el.scrollWidth}/${el.clientWidth}`;
    if (cut && r.width > 0) clipped.push(`${el.dataset.testid || el.tagName} ${where} ${scroll}`);
  }
  return {scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, clipped};
}
"""

# page.evaluate(FOCUS): the focused element's test id and whether a focus ring is drawn.
FOCUS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {testid: null, ring: false};
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
    || style.boxShadow !== 'none';
  const focusVisible = el.matches(':focus-visible');
  return {testid: el.dataset.testid || el.tagName, ring, focusVisible};
}
"""


async def sizes(page: Any, state: str, failures: list[str]) -> None:
    found = await page.evaluate(MEASURE, [MIN_TARGET, MIN_TEXT])
    if found["small"]:
        failures.append(f"{state}: targets under {MIN_TARGET}px: {found['small']}")
    if found["tiny"]:
        failures.append(f"{state}: text under {MIN_TEXT}px: {found['tiny']}")


async def test_every_kiosk_target_is_48px_and_all_text_20px_on_a_hall_screen(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    failures: list[str] = []
    kiosk = await new_page(browser)
    await kiosk.set_viewport_size(HALL_SCREEN)
    await kiosk.goto(server.url + "/")
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    await sizes(kiosk, "start", failures)
    await kiosk.get_by_test_id("dept-search").fill("税")
    await sizes(kiosk, "search", failures)
    await kiosk.get_by_test_id("dept-search-clear").click()
    await kiosk.get_by_test_id("guide-mode").click()
    await expect(kiosk.get_by_test_id("login-username")).to_be_visible()
    await sizes(kiosk, "guide login", failures)
    await kiosk.get_by_test_id("login-back").click()
    await kiosk.get_by_test_id("dept-market").click()
    await expect(kiosk.get_by_test_id("consent-accept")).to_be_visible()
    await sizes(kiosk, "recording notice", failures)
    await kiosk.get_by_test_id("consent-decline").click()
    await sizes(kiosk, "declined", failures)
    await kiosk.get_by_test_id("decline-back").click()
    await kiosk.get_by_test_id("dept-market").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(kiosk.get_by_test_id("queue-eta")).not_to_be_empty()
    await sizes(kiosk, "waiting", failures)
    await kiosk.get_by_test_id("cancel-consult").click()
    await kiosk.context.close()

    kiosk, staff = await connected(server, browser)
    await kiosk.set_viewport_size(HALL_SCREEN)
    await sizes(kiosk, "in call", failures)
    await staff.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("rating-5")).to_be_visible(timeout=10_000)
    await sizes(kiosk, "rating", failures)
    await kiosk.get_by_test_id("rating-5").click()
    await kiosk.get_by_test_id("rating-submit").click()
    await expect(kiosk.get_by_test_id("thanks-back")).to_be_visible(timeout=10_000)
    await sizes(kiosk, "thanks", failures)
    assert not failures, "\n".join(failures)


async def test_the_kiosk_start_and_queue_screens_reflow_at_200_percent_zoom(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk = await new_page(browser)
    await kiosk.set_viewport_size(ZOOMED)
    await kiosk.goto(server.url + "/")
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    problems = []
    for state in ("start", "notice", "waiting"):
        if state == "notice":
            await kiosk.get_by_test_id("dept-tax").click()
            await expect(kiosk.get_by_test_id("consent-accept")).to_be_visible()
        if state == "waiting":
            await kiosk.get_by_test_id("consent-accept").check()
            await kiosk.get_by_test_id("start-consult").click()
            await expect(kiosk.get_by_test_id("ticket-number")).to_have_text("税A001")
        found = await kiosk.evaluate(OVERFLOW)
        if found["scrollWidth"] > found["clientWidth"] or found["clipped"]:
            problems.append(f"{state}: {found}")
    assert not problems, "\n".join(problems)


async def tab_to(page: Any, testid: str, limit: int = 60) -> None:
    """Press Tab until ``testid`` has the focus, checking that each focused control shows it."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focus = await page.evaluate(FOCUS)
        if focus["testid"] is None:
            continue
        assert focus["focusVisible"] and focus["ring"], f"no visible focus on {focus}"
        if focus["testid"] == testid:
            return
    pytest.fail(f"{testid} not reached with Tab")


async def test_a_keyboard_only_applicant_takes_a_ticket_and_cancels_it(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk = await new_page(browser)
    await kiosk.set_viewport_size(HALL_SCREEN)
    await kiosk.goto(server.url + "/")
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    # Search by keyboard, then clear it again.
    await tab_to(kiosk, "dept-search")
    await kiosk.keyboard.type("税")
    await tab_to(kiosk, "dept-search-clear")
    await kiosk.keyboard.press("Enter")
    await expect(kiosk.get_by_test_id("dept-search")).to_have_value("")
    await tab_to(kiosk, "dept-tax")
    await kiosk.keyboard.press("Enter")
    await expect(kiosk.get_by_test_id("consent-accept")).to_be_visible()
    # The new screen takes the focus (its heading), so Tab goes on from there.
    await tab_to(kiosk, "consent-accept", limit=5)
    await kiosk.keyboard.press("Space")
    await expect(kiosk.get_by_test_id("consent-accept")).to_be_checked()
    await tab_to(kiosk, "start-consult", limit=6)
    await kiosk.keyboard.press("Enter")
    await expect(kiosk.get_by_test_id("ticket-number")).to_have_text("税A001")
    # The queue position is spoken by a screen reader as it changes.
    await expect(kiosk.get_by_test_id("queue-position")).to_have_attribute("aria-live", "polite")
    await expect(kiosk.get_by_test_id("a11y-status")).not_to_be_empty()
    await tab_to(kiosk, "cancel-consult", limit=6)
    await kiosk.keyboard.press("Enter")
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    # Back on the start screen the keyboard still reaches the departments.
    await tab_to(kiosk, "dept-tax")
