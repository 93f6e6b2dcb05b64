"""The call's layout for the screen it is on, in real Chromium (web/static/css/room.css): a
portrait hall screen (1080x1920) and a phone (390x844) give the remote video ≥ 90 % of the width
with the chat below, a landscape desk (1920x1080) keeps the side panel; nothing overflows, and the
hangup button stays on screen. Screenshots go to $YUNZHEN_TEST_OUTPUT (or the test's tmp_path)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.pages import connected
from tests.support.server import LiveServer

GEOMETRY = """
() => {
  const box = (id) => document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect();
  const video = box('remote-video');
  const chat = box('chat-panel');
  const hangup = box('hangup');
  return {
    width: innerWidth, height: innerHeight,
    scrollWidth: document.documentElement.scrollWidth,
    video: {left: video.left, right: video.right, top: video.top, bottom: video.bottom,
            width: video.width, height: video.height},
    chat: {left: chat.left, top: chat.top},
    hangupBottom: hangup.bottom, hangupRight: hangup.right,
  };
}
"""


def output_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("YUNZHEN_TEST_OUTPUT") or tmp_path) / "layouts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize(("width", "height", "portrait"), [
    (1080, 1920, True), (1920, 1080, False), (390, 844, True)])
async def test_the_call_fits_the_screen(server: LiveServer, browser: Any, tmp_path: Path,
                                        width: int, height: int, portrait: bool) -> None:
    kiosk, staff = await connected(server, browser)
    await kiosk.set_viewport_size({"width": width, "height": height})
    await kiosk.wait_for_timeout(300)
    g = await kiosk.evaluate(GEOMETRY)
    await kiosk.screenshot(path=str(output_dir(tmp_path) / f"kiosk-call-{width}x{height}.png"))
    assert g["scrollWidth"] <= width, g
    assert g["hangupBottom"] <= height and g["hangupRight"] <= width, g
    assert g["video"]["height"] >= 0.25 * height, g
    if portrait:
        assert g["video"]["width"] >= 0.9 * width, g
        assert g["chat"]["top"] >= g["video"]["bottom"], g  # the chat below the picture
    else:
        assert g["chat"]["left"] >= g["video"]["right"], g  # the side panel stays
    await kiosk.context.close()
    await staff.context.close()
