"""关怀模式 and spoken prompts at the kiosk in real Chromium: care mode makes text ≥ 28 px and
targets ≥ 64 px for one applicant and is off again at the start after them; every step plays its
prompt (rendered by espeak-ng, played by an <audio> element whose time advances) and muting stops
it. Pages come from a hall screen of 1080x1920."""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

from tests.support.browser import login
from tests.support.pages import new_page, wait_media
from tests.support.server import LiveServer

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed: ./yunzhen.sh test installs it")
HALL_SCREEN = {"width": 1080, "height": 1920}

# Visible text smaller than 28 px and targets smaller than 64x64 px on the current screen and the
# header, as "text@size" / "testid@WxH".
SIZES = """
() => {
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
  };
  const screen = document.querySelector(`[data-screen="${document.body.dataset.current}"]`);
  const small = [];
  const tiny = [];
  for (const root of [screen, document.querySelector('.topbar')]) {
    for (const el of root.querySelectorAll('*')) {
      if (!visible(el)) continue;
      const text = [...el.childNodes].filter((n) => n.nodeType === 3)
        .map((n) => n.textContent.trim()).join('');
      const size = parseFloat(getComputedStyle(el).fontSize);
      if (text && size < 28) small.push(`${text.slice(0, 20)}@${size}`);
      if (el.matches('button, input, textarea, select, a[href]')) {
        const r = el.getBoundingClientRect();
        const name = el.dataset.testid || el.tagName;
        if (r.width < 64 || r.height < 64) tiny.push(`${name}@${r.width}x${r.height}`);
      }
    }
  }
  return {small, tiny};
}
"""


async def _staff_available(server: LiveServer, browser: Any) -> Any:
    from playwright.async_api import expect

    staff = await new_page(browser)
    await login(staff, f"{server.url}/staff", "tax01")
    await staff.get_by_test_id("presence-available").click()
    await expect(staff.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")
    return staff


async def _sizes(page: Any) -> dict[str, list[str]]:
    return await page.evaluate(SIZES)  # type: ignore[no-any-return]


async def _played(page: Any) -> list[str]:
    played = await page.get_by_test_id("speech-audio").get_attribute("data-played")
    return (played or "").split()


async def test_care_mode_is_large_for_one_applicant_and_off_after_them(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    staff = await _staff_available(server, browser)
    kiosk = await new_page(browser)
    await kiosk.set_viewport_size(HALL_SCREEN)
    await kiosk.goto(server.url + "/")
    care = kiosk.get_by_test_id("care-mode")
    await expect(kiosk.get_by_test_id("dept-tax")).to_have_text("税务")
    await expect(care).to_have_attribute("aria-pressed", "false")
    # Without care mode the kiosk's body text is smaller than 28 px.
    assert (await _sizes(kiosk))["small"]

    await care.click()
    await expect(care).to_have_attribute("aria-pressed", "true")
    assert await kiosk.evaluate("document.documentElement.classList.contains('care')")
    # Fewer words: the short subtitle, the footer gone.
    await expect(kiosk.locator(".kiosk-subtitle")).to_have_text("请点选部门")
    await expect(kiosk.locator(".kiosk-footer")).to_be_hidden()
    assert await _sizes(kiosk) == {"small": [], "tiny": []}

    await kiosk.get_by_test_id("dept-tax").click()
    await expect(kiosk.get_by_test_id("start-consult")).to_have_text("开始")
    assert await _sizes(kiosk) == {"small": [], "tiny": []}
    box = await kiosk.get_by_test_id("consent-accept").bounding_box()
    assert box is not None and box["width"] >= 64 and box["height"] >= 64
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(kiosk.get_by_test_id("ticket-number")).to_have_text("税A001")
    assert await _sizes(kiosk) == {"small": [], "tiny": []}

    await expect(staff.get_by_test_id("accept-call")).to_be_visible(timeout=10_000)
    await staff.get_by_test_id("accept-call").click()
    await wait_media(kiosk, frames=1)
    assert await _sizes(kiosk) == {"small": [], "tiny": []}
    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("rating-5")).to_be_visible(timeout=10_000)
    assert await _sizes(kiosk) == {"small": [], "tiny": []}
    await kiosk.get_by_test_id("rating-5").click()
    await kiosk.get_by_test_id("rating-submit").click()
    # Slower timeouts: the thank-you screen waits 10 s instead of 5.
    await expect(kiosk.get_by_test_id("thanks-countdown")).to_contain_text("10")
    assert await _sizes(kiosk) == {"small": [], "tiny": []}

    # Back at the start the next applicant gets the usual kiosk.
    await kiosk.get_by_test_id("thanks-back").click()
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    await expect(care).to_have_attribute("aria-pressed", "false")
    assert not await kiosk.evaluate("document.documentElement.classList.contains('care')")
    await expect(kiosk.locator(".kiosk-subtitle")).not_to_have_text("请点选部门")
    assert (await _sizes(kiosk))["small"]
    await kiosk.context.close()
    await staff.context.close()


async def test_every_step_plays_its_prompt_and_mute_stops_it(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    staff = await _staff_available(server, browser)
    kiosk = await new_page(browser)
    await kiosk.set_viewport_size(HALL_SCREEN)
    audio = kiosk.get_by_test_id("speech-audio")
    caption = kiosk.get_by_test_id("speech-caption")
    toggle = kiosk.get_by_test_id("speak-toggle")
    await kiosk.goto(server.url + "/")

    async def heard(*keys: str) -> None:
        # Each prompt played: play() resolved and currentTime advanced (speech.js records it).
        await expect(audio).to_have_attribute("data-played", " ".join(keys), timeout=15_000)

    await heard("speak_start")
    await expect(caption).to_have_text("欢迎使用云诊视频咨询。请点一下您要咨询的部门。")
    await kiosk.get_by_test_id("dept-tax").click()
    await heard("speak_start", "speak_notice")
    await expect(caption).to_have_text(
        "您选择了税务。咨询全程录音录像。同意请勾选，再点开始视频咨询。")
    await kiosk.get_by_test_id("consent-decline").click()
    await heard("speak_start", "speak_notice", "speak_declined")
    await kiosk.get_by_test_id("decline-back").click()
    steps = ["speak_start", "speak_notice", "speak_declined", "speak_start"]
    await heard(*steps)

    await kiosk.get_by_test_id("dept-tax").click()
    steps.append("speak_notice")
    await heard(*steps)
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    steps.append("speak_ringing")
    # The staff member is available: the ticket rings at once, and the page calls its number.
    await heard(*steps)
    await expect(caption).to_have_text("请税A001号准备，工作人员马上接通。")
    assert re.fullmatch(r"/speech/[0-9a-f]{32}\.wav", str(await audio.get_attribute("src")))
    await expect(staff.get_by_test_id("accept-call")).to_be_visible(timeout=10_000)
    await staff.get_by_test_id("accept-call").click()
    steps.append("speak_call")
    await heard(*steps)
    await kiosk.get_by_test_id("hangup").click()
    steps.append("speak_rating")
    await heard(*steps)
    await kiosk.get_by_test_id("rating-4").click()
    await kiosk.get_by_test_id("rating-submit").click()
    steps.append("speak_thanks")
    await heard(*steps)

    # Muted: the caption still changes, nothing more plays and the audio is paused.
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(toggle).to_have_text("声音：关")
    assert await audio.evaluate("(el) => el.paused")
    await kiosk.get_by_test_id("thanks-back").click()
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    # The thank-you screen ended the applicant: the next one hears the prompts again.
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    steps.append("speak_start")
    await heard(*steps)
    await toggle.click()
    await kiosk.get_by_test_id("dept-tax").click()
    await expect(caption).to_contain_text("您选择了税务")
    await kiosk.wait_for_timeout(1500)
    assert await _played(kiosk) == steps
    assert await audio.evaluate("(el) => el.paused")
    await kiosk.context.close()
    await staff.context.close()
