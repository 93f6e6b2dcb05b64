"""Real Chromium for tests, benchmarks and screenshots: where it is, the flags known to work here
(fake camera and microphone, loopback candidates), and page instrumentation for media checks."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from server.seed import DEMO_PASSWORD

CHROMIUM = os.environ.get("YUNZHEN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
    # getDisplayMedia (the staff desk's screen share) picks the screen without asking.
    "--auto-select-desktop-capture-source=Entire screen",
]
# The zone the test browser runs in (TZ), 16 hours from the demo hall's Asia/Shanghai: a date or
# time a page took from the browser's own zone instead of the hall's is wrong at most hours.
BROWSER_ZONE = "America/Los_Angeles"

# Test-only instrumentation, added with page.add_init_script: remember every RTCPeerConnection a
# page makes, so getStats() can be read without the page exposing anything.
TRACK_PEER_CONNECTIONS = """
window.__pcs = [];
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) {
  const pc = new Original(...args);
  window.__pcs.push(pc);
  return pc;
};
window.RTCPeerConnection.prototype = Original.prototype;
"""

# page.evaluate(INBOUND_STATS): peer connections, video frames decoded and audio packets received.
INBOUND_STATS = """
async () => {
  const out = {pcs: window.__pcs.length, framesDecoded: 0, audioPackets: 0};
  for (const pc of window.__pcs) {
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') out.framesDecoded += s.framesDecoded || 0;
      if (s.kind === 'audio') out.audioPackets += s.packetsReceived || 0;
    });
  }
  return out;
}
"""


async def wait_frames(page: Any, frames: int, timeout: float = 20.0) -> dict[str, int]:
    """Wait until ``page``'s peer connections have decoded ``frames`` video frames in all;
    their INBOUND_STATS then."""
    deadline = time.monotonic() + timeout
    stats = await page.evaluate(INBOUND_STATS)
    while stats["framesDecoded"] < frames:
        if time.monotonic() > deadline:
            raise AssertionError(f"no video frames: {stats}")
        await asyncio.sleep(0.2)
        stats = await page.evaluate(INBOUND_STATS)
    return stats  # type: ignore[no-any-return]


async def submit_login(page: Any, username: str, password: str = DEMO_PASSWORD) -> None:
    """Fill the page's login form (data-testid login-*) and submit it."""
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()


async def login(page: Any, url: str, username: str) -> None:
    """Open ``url`` (a page that asks for a login) and log in as a demo account."""
    await page.goto(url)
    await submit_login(page, username)
