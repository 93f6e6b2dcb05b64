"""The kiosk's device check while waiting (web/static/js/devicecheck.js) in real Chromium: the
applicant sees themself and can play a test tone; with the camera refused the check says so and
offers a call by voice only, which connects: the desk hears the applicant and shows the camera
off."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.axe import assert_accessible
from tests.support.browser import login
from tests.support.pages import inbound_frames, new_page, wait_media
from tests.support.server import LiveServer

# The camera refused (as a browser's permission prompt answered "block" would): every
# getUserMedia that asks for video fails; the microphone alone still opens.
DENY_CAMERA = """
const allowedGUM = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  if (constraints && constraints.video) {
    throw new DOMException('Permission denied', 'NotAllowedError');
  }
  return allowedGUM(constraints);
};
"""


async def take_ticket(server: LiveServer, kiosk: Any) -> None:
    from playwright.async_api import expect

    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(kiosk.get_by_test_id("device-check")).to_be_visible()


async def test_the_applicant_sees_themself_and_plays_a_test_tone(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk = await new_page(browser)
    await take_ticket(server, kiosk)
    check = kiosk.get_by_test_id("device-check")
    await expect(check).to_have_attribute("data-camera", "true")
    await expect(kiosk.get_by_test_id("device-check-status")).to_have_text("摄像头和麦克风正常。")
    # Polled with evaluate: wait_for_function's string predicate is an eval, which the CSP refuses.
    preview = kiosk.get_by_test_id("device-check-preview")
    for _ in range(100):
        if await preview.evaluate("(video) => video.videoWidth") > 0:
            break
        await kiosk.wait_for_timeout(100)
    assert await preview.evaluate("(video) => video.videoWidth") > 0
    await expect(kiosk.get_by_test_id("device-check-voice")).to_be_hidden()
    await assert_accessible(kiosk, "kiosk device check")
    await kiosk.get_by_test_id("device-check-tone").click()
    await expect(check).to_have_attribute("data-tone", "played")
    await kiosk.get_by_test_id("device-check-continue").click()
    await expect(kiosk.get_by_test_id("device-check-preview")).to_be_hidden()
    await kiosk.context.close()


async def test_camera_refused_the_call_goes_on_by_voice_only(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    staff = await new_page(browser)
    await login(staff, f"{server.url}/staff", "tax01")
    await staff.get_by_test_id("presence-available").click()
    await expect(staff.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")
    kiosk = await new_page(browser, (DENY_CAMERA,))
    await take_ticket(server, kiosk)

    await expect(kiosk.get_by_test_id("device-check")).to_have_attribute("data-camera", "false")
    await expect(kiosk.get_by_test_id("device-check-problem")).to_contain_text("无法使用摄像头")
    await expect(kiosk.get_by_test_id("device-check-continue")).to_be_hidden()
    await assert_accessible(kiosk, "kiosk device check, camera refused")
    await kiosk.get_by_test_id("device-check-voice").click()
    await expect(kiosk.get_by_test_id("device-check")).to_have_attribute("data-voice-only", "true")

    await expect(staff.get_by_test_id("incoming-call")).to_be_visible(timeout=10_000)
    await staff.get_by_test_id("accept-call").click()
    # The applicant sees the desk; the desk hears the applicant and shows the camera off.
    await wait_media(kiosk, frames=1)
    deadline = time.monotonic() + 20
    stats = await inbound_frames(staff)
    while stats["audioPackets"] < 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        stats = await inbound_frames(staff)
    assert stats["audioPackets"] >= 20, stats
    assert stats["framesDecoded"] == 0, stats
    await expect(staff.get_by_test_id("remote-camera-off")).to_be_visible()
    await expect(kiosk.get_by_test_id("toggle-camera")).to_be_disabled()
    await kiosk.context.close()
    await staff.context.close()
