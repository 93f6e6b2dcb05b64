"""The call's network quality (web/static/js/quality.js) in real Chromium: the indicator follows
the connection, and a poor one stops the kiosk's video (the desk sees the camera off) until it
is good again. The quality function's input is forced through its test hook rather than by
shaping the network."""

from __future__ import annotations

from typing import Any

from tests.support.pages import connected
from tests.support.server import LiveServer

# Feed the kiosk's CallQuality a sample in place of getStats.
FORCE = """
async (sample) => {
  const src = document.querySelector('script[type=module]').src;
  const m = await import(src.replace(/[^/]*\\.js.*$/, 'room.js'));
  const [session] = [...m.RoomSession.active];
  session.quality.force(sample);
  await new Promise((resolve) => setTimeout(resolve, 50));
  session.quality.force(sample);
  await new Promise((resolve) => setTimeout(resolve, 50));
  session.quality.force(sample);
  return {
    camera: session.cameraOn,
    sending: session.localStream.getVideoTracks().map((tr) => tr.enabled),
  };
}
"""

POOR = {"rtt": 0.9, "loss": 0.2, "bitrate": 80_000}
FAIR = {"rtt": 0.3, "loss": 0.0, "bitrate": 0}
GOOD = {"rtt": 0.02, "loss": 0.0, "bitrate": 2_000_000}


async def test_a_poor_connection_falls_back_to_voice_and_comes_back(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await connected(server, browser)
    indicator = kiosk.get_by_test_id("call-quality")
    # The real statistics of a loopback call: good.
    await expect(indicator).to_have_attribute("data-level", "good", timeout=10_000)
    await expect(staff.get_by_test_id("call-quality")).to_be_visible(timeout=10_000)

    assert (await kiosk.evaluate(FORCE, FAIR))["camera"] is True
    await expect(indicator).to_have_attribute("data-level", "fair")
    await expect(indicator).to_have_text("网络一般")

    state = await kiosk.evaluate(FORCE, POOR)
    assert state == {"camera": False, "sending": [False]}
    await expect(indicator).to_have_attribute("data-paused", "true")
    await expect(indicator).to_have_text("网络较差，已暂停视频，仅保留语音")
    await expect(staff.get_by_test_id("remote-camera-off")).to_be_visible()

    state = await kiosk.evaluate(FORCE, GOOD)
    assert state == {"camera": True, "sending": [True]}
    await expect(indicator).to_have_attribute("data-paused", "false")
    await expect(staff.get_by_test_id("remote-camera-off")).to_be_hidden()
    await kiosk.context.close()
    await staff.context.close()
