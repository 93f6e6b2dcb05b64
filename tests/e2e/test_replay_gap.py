"""The replay's timeline shows a node-loss gap (recordings/parts.py) with its length, in Chinese
and in English."""

from __future__ import annotations

import json
from typing import Any

from recordings.archive import Archive
from server.keys import ARCHIVE
from tests.support.browser import submit_login
from tests.support.recordings import make_recording
from tests.support.server import LiveServer

T0 = 1_800_000_000.0


async def test_the_replay_lists_the_gap_of_a_lost_node_with_its_length(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    archive: Archive = server.app[ARCHIVE]
    directory = await make_recording(archive, "r-gap", started_at=T0, duration=60.0,
                                     index=False)
    timeline = json.loads((directory / "timeline.json").read_text(encoding="utf-8"))
    timeline["events"] = [{"t": T0 + 20.0, "type": "gap", "until": T0 + 26.5,
                           "reason": "node_lost", "from_node": "a1", "to_node": "b2"}]
    timeline["parts"] = [
        {"part": 1, "node": "a1", "started_at": T0, "ended_at": T0 + 20.0, "tracks": []},
        {"part": 2, "node": "b2", "started_at": T0 + 26.5, "ended_at": T0 + 60, "tracks": []}]
    (directory / "timeline.json").write_text(json.dumps(timeline), encoding="utf-8")
    await archive.index(timeline)
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{server.url}/supervisor")
        await submit_login(page, "supervisor")
        await page.get_by_test_id("recording-play").click()
        gap = page.locator("[data-testid=timeline-event][data-type=gap]")
        await expect(gap).to_contain_text("服务进程中断，通话在另一服务进程恢复，录像中断 6.5 秒")
        await expect(gap.get_by_test_id("timeline-event-seek")).to_have_text("0:20")
        await page.goto(f"{server.url}/supervisor?lang=en")
        await page.get_by_test_id("recording-play").click()
        await expect(page.locator("[data-testid=timeline-event][data-type=gap]")).to_contain_text(
            "A server process was lost; the call resumed on another, 6.5 s missing")
    finally:
        await context.close()
