"""A call kiosk ↔ staff in real Chromium with the server in H.264 mode (``media.video_codec =
"h264"``): both pages decode each other's video, getStats names H264 as the codec of what they
receive and send, the recording's video tracks are Matroska files that decode with PyAV, and the
supervisor page plays them (Debian's Chromium plays H.264 in Matroska)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import av
import pytest

from server.config import Config, MediaConfig
from tests.support.browser import login
from tests.support.pages import new_page, ring, wait_media
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

# page.evaluate(VIDEO_CODECS): the codec mimeType of every video inbound-rtp and outbound-rtp.
VIDEO_CODECS = """
async () => {
  const out = {inbound: [], outbound: []};
  for (const pc of window.__pcs) {
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.kind !== 'video' || !s.codecId) return;
      const codec = report.get(s.codecId);
      if (s.type === 'inbound-rtp' && s.framesDecoded > 0) out.inbound.push(codec.mimeType);
      if (s.type === 'outbound-rtp' && s.framesEncoded > 0) out.outbound.push(codec.mimeType);
    });
  }
  return out;
}
"""


@pytest.fixture
def config(redis_url: str, tmp_path: Path) -> Config:
    return Config(host="127.0.0.1", port=8080, redis_url=redis_url, data_dir=tmp_path / "data",
                  demo=True,
                  media=MediaConfig(announce_addresses=("127.0.0.1",), empty_room_timeout=5.0,
                                    video_codec="h264"))


async def test_chromium_call_in_h264_mode_decodes_and_records_h264(
        server: LiveServer, browser: Any, config: Config) -> None:
    from playwright.async_api import expect

    kiosk, staff = await ring(server, browser)
    await staff.get_by_test_id("accept-call").click()
    await expect(kiosk.get_by_test_id("remote-video")).to_be_visible(timeout=15_000)
    for page in (kiosk, staff):
        await wait_media(page, frames=30)
        codecs = await page.evaluate(VIDEO_CODECS)
        assert codecs["inbound"] and set(codecs["inbound"]) == {"video/H264"}, codecs
        assert codecs["outbound"] and set(codecs["outbound"]) == {"video/H264"}, codecs
    await asyncio.sleep(2)  # a recording long enough to see the player move past 1 s

    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("rating-5")).to_be_visible(timeout=10_000)

    recordings = list(Path(config.recordings_dir).iterdir())
    assert len(recordings) == 1
    timeline = json.loads((recordings[0] / "timeline.json").read_text())
    videos = [t for t in timeline["tracks"] if t["kind"] == "video"]
    assert len(videos) == 2
    for track in videos:
        assert track["codec"] == "h264" and track["file"].endswith(".mkv"), track
        with av.open(str(recordings[0] / track["file"])) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.width > 0 and stream.codec_context.height > 0
            decoded = sum(1 for _ in container.decode(stream))
        assert decoded > 30, track
    for track in timeline["tracks"]:
        if track["kind"] == "audio":
            assert track["file"].endswith(".webm")

    # The supervisor plays the .mkv files in the page's <video> elements.
    supervisor = await new_page(browser)
    await login(supervisor, f"{server.url}/supervisor", "supervisor")
    await expect(supervisor.get_by_test_id("recording-row")).to_have_count(1, timeout=10_000)
    await supervisor.get_by_test_id("recording-play").click()
    await expect(supervisor.locator("[data-testid=recording-player] video")).to_have_count(2)
    await supervisor.get_by_test_id("player-toggle").click()
    await supervisor.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=recording-player] video')]
                 .every((v) => !v.error && v.readyState >= 2 && v.videoWidth > 0
                               && v.currentTime > 1.0)""",
        timeout=20_000,
    )
