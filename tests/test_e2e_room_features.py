"""The call screen's extras in real Chromium, kiosk and staff desk connected through the server:
chat, mute and camera off seen by the other side, and the staff member's screen share."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.test_e2e_browser import _ring, _wait_media

pytestmark = pytest.mark.browser


async def _connected(server: LiveServer, browser: Any) -> tuple[Any, Any]:
    """Kiosk and staff pages in a call, both decoding the other's video."""
    kiosk, staff = await _ring(server, browser)
    await staff.get_by_test_id("accept-call").click()
    await _wait_media(kiosk, frames=1)
    await _wait_media(staff, frames=1)
    return kiosk, staff


async def test_chat_between_kiosk_and_staff(server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await _connected(server, browser)
    await staff.get_by_test_id("chat-input").fill("请出示身份证")
    await staff.get_by_test_id("chat-send").click()
    await expect(kiosk.get_by_test_id("chat-message")).to_have_count(1)
    await expect(kiosk.get_by_test_id("chat-message")).to_contain_text("请出示身份证")
    await expect(kiosk.get_by_test_id("chat-message")).to_contain_text("税务坐席01")
    await expect(staff.get_by_test_id("chat-message")).to_have_count(1)
    await expect(staff.get_by_test_id("chat-input")).to_have_value("")

    await kiosk.get_by_test_id("chat-input").fill("好的 <b>谢谢</b>")
    await kiosk.get_by_test_id("chat-input").press("Enter")
    await expect(staff.get_by_test_id("chat-message")).to_have_count(2)
    # Shown as text, never as markup.
    await expect(staff.get_by_test_id("chat-message").nth(1)).to_contain_text("好的 <b>谢谢</b>")
    assert await staff.locator("[data-testid=chat-log] b").count() == 0

    # A reloaded kiosk gets the conversation back.
    await kiosk.reload()
    await expect(kiosk.get_by_test_id("chat-message")).to_have_count(2, timeout=10_000)


async def test_mute_and_camera_off_at_the_staff_desk_show_at_the_kiosk(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await _connected(server, browser)
    await expect(kiosk.get_by_test_id("remote-muted")).to_be_hidden()
    await expect(kiosk.get_by_test_id("remote-camera-off")).to_be_hidden()
    sent = """(kind) => window.__pcs[0].getSenders()
                .filter((s) => s.track && s.track.kind === kind).map((s) => s.track.enabled)"""

    await staff.get_by_test_id("toggle-mic").click()
    await expect(staff.get_by_test_id("toggle-mic")).to_have_attribute("aria-pressed", "true")
    await expect(kiosk.get_by_test_id("remote-muted")).to_be_visible()
    await expect(kiosk.get_by_test_id("remote-camera-off")).to_be_hidden()
    assert await staff.evaluate(sent, "audio") == [False]
    assert await staff.evaluate(sent, "video") == [True]

    await staff.get_by_test_id("toggle-camera").click()
    await expect(kiosk.get_by_test_id("remote-camera-off")).to_be_visible()
    assert await staff.evaluate(sent, "video") == [False]
    # The staff member does not see their own state as a remote one.
    await expect(staff.get_by_test_id("remote-muted")).to_be_hidden()

    await staff.get_by_test_id("toggle-mic").click()
    await expect(kiosk.get_by_test_id("remote-muted")).to_be_hidden()
    await expect(kiosk.get_by_test_id("remote-camera-off")).to_be_visible()
    assert await staff.evaluate(sent, "audio") == [True]

    # The state is the server's: a reloaded kiosk shows it again.
    await kiosk.reload()
    await _wait_media(kiosk, frames=1)
    await expect(kiosk.get_by_test_id("remote-camera-off")).to_be_visible()
    await expect(kiosk.get_by_test_id("remote-muted")).to_be_hidden()
