"""What people see when the service loses its Redis, in real Chromium: the service runs as a
process with its private redis-server, which is `kill -9`ed mid-call (its port held for a few
seconds, so the outage lasts). A call in progress keeps its media; the pages show the
"recovering" banner and no error; a page opened meanwhile is a 503 page that reloads itself
into the real one; afterwards the banners go and the waiting applicant still has their
number. The call pages' sockets dropped during the outage join the room again at once (the
process remembers their tokens; Socket.IO's refusals are retried), over new peer connections.
The recording has the call's video through the outage with no hole but the blip's (recordings/
lease.py: nobody can take the room over while Redis is away, so nothing is held back for good)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, cast

import aiohttp
import av
import pytest

from server.cli_redis import private_redis_pid
from tests.server.test_redis_loss import hold_port
from tests.support.harness import ServerProcess, wait_until
from tests.support.pages import connected, inbound_frames, new_page

pytestmark = pytest.mark.browser

HELD_S = 6.0
# What a page does with an API answer that fails: common.js's fetchJSON, then showError.
FETCH_AND_SHOW = """
async () => {
  const common = await import('/static/js/common.js');
  try {
    await common.fetchJSON('/api/departments');
    return 'ok';
  } catch (err) {
    common.showError(err);
    return err.code;
  }
}
"""

# A network blip under a call page: its room socket's connection closes (the page's own sockets
# share it when they are on the same origin); Socket.IO reconnects by itself. The peer
# connection from before is marked, to tell the one the page joins with again.
DROP_SOCKETS = """
async () => {
  const { RoomSession } = await import('/static/js/room.js');
  window.yzSessions = RoomSession.active;
  for (const session of RoomSession.active) {
    session.pc.yzBeforeDrop = true;
    session.socket.io.engine.close();
  }
  return RoomSession.active.size;
}
"""
JOINED_AGAIN = """
() => [...window.yzSessions].every((s) => s.pc && !s.pc.yzBeforeDrop && !s.reconnecting
                                          && s.pc.connectionState === 'connected')
"""


async def frames_grow(page: Any, seconds: float = 2.0) -> None:
    before = (await inbound_frames(page))["framesDecoded"]
    await asyncio.sleep(seconds)
    after = (await inbound_frames(page))["framesDecoded"]
    assert after > before + 10, (before, after)


@pytest.mark.timeout(180)
async def test_pages_show_the_recovery_and_calls_keep_their_media(browser: Any,
                                                                  tmp_path: Path) -> None:
    from playwright.async_api import expect

    server = ServerProcess("", tmp_path / "data")
    await server.start()
    try:
        kiosk, staff = await connected(cast(Any, server), browser)
        waiting = await new_page(browser)
        await waiting.goto(server.url + "/")
        await waiting.get_by_test_id("dept-tax").click()
        await waiting.get_by_test_id("consent-accept").check()
        await waiting.get_by_test_id("start-consult").click()
        await expect(waiting.get_by_test_id("ticket-number")).to_have_text("税A002")
        pages = (kiosk, staff, waiting)
        for page in pages:
            await expect(page.get_by_test_id("connection-status")).to_be_hidden()

        redis_dir = tmp_path / "data" / "redis"
        port = int((redis_dir / "url").read_text().strip().rsplit(":", 1)[1].split("/")[0])
        pid = private_redis_pid(redis_dir)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        held = await hold_port(port)
        try:
            for page in pages:
                await expect(page.locator("body")).to_have_attribute("data-service", "degraded")
                await expect(page.get_by_test_id("connection-status")).to_contain_text(
                    "服务暂时中断，正在恢复")
            # A request of the page meets the outage: the banner says it, no error shows.
            assert await waiting.evaluate(FETCH_AND_SHOW) == "unavailable"
            await asyncio.sleep(1.0)  # showError asks /healthz which `unavailable` it is
            await expect(waiting.get_by_test_id("error-message")).to_be_hidden()
            # A page opened now: the 503 page, which reloads itself.
            late = await new_page(browser)
            response = await late.goto(server.url + "/supervisor")
            assert response is not None and response.status == 503
            await expect(late.get_by_test_id("connection-status")).to_contain_text(
                "服务暂时不可用")
            # The call goes on meanwhile, both ways.
            await frames_grow(kiosk)
            await frames_grow(staff)
            # A network blip now: both call pages lose their sockets, join again on the
            # process that remembers their tokens, and the call goes on over new connections.
            for page in (kiosk, staff):
                assert await page.evaluate(DROP_SOCKETS) == 1
            for page in (kiosk, staff):
                await page.wait_for_function(JOINED_AGAIN, timeout=15_000)
                await expect(page.get_by_test_id("call-reconnecting")).to_be_hidden()
                await expect(page.get_by_test_id("error-message")).to_be_hidden()
            await frames_grow(kiosk)
            await frames_grow(staff)
            await expect(staff.get_by_test_id("hangup")).to_be_visible()
            await asyncio.sleep(max(0.0, HELD_S - 4.0))
        finally:
            held.close()

        async with aiohttp.ClientSession() as session:
            async def ok() -> bool:
                async with session.get(f"{server.url}/healthz") as response:
                    return response.status == 200
            await wait_until(ok, 30, 0.1, "/healthz ok")
        for page in pages:
            await expect(page.locator("body")).to_have_attribute("data-service", "ok")
            await expect(page.get_by_test_id("connection-status")).to_be_hidden()
            await expect(page.get_by_test_id("error-message")).to_be_hidden()
        await expect(waiting.get_by_test_id("ticket-number")).to_have_text("税A002")
        await expect(waiting.get_by_test_id("queue-position")).to_be_visible()
        await expect(late.get_by_test_id("login-username")).to_be_visible(timeout=15_000)
        await frames_grow(kiosk)
        await frames_grow(staff)
        await staff.get_by_test_id("hangup").click()
        [folder] = (tmp_path / "data" / "recordings").iterdir()

        async def finished() -> dict[str, Any] | None:
            timeline: dict[str, Any] = json.loads(
                (folder / "timeline.json").read_text(encoding="utf-8"))
            return timeline if timeline.get("ended_at") is not None else None

        timeline = await wait_until(finished, 20, 0.2, "the recording finished")
        assert timeline["complete"] is True
        # Each camera in two files: before the blip, and over the connection joined again.
        cameras: dict[str, list[tuple[float, float]]] = {}
        for track in timeline["tracks"]:
            if track["kind"] != "video":
                continue
            with av.open(str(folder / track["file"])) as container:
                times = [float(p.pts * p.time_base) for p in container.demux(video=0)
                         if p.size and p.pts is not None and p.time_base is not None]
            assert max(b - a for a, b in itertools.pairwise(times)) < 1.0, track
            cameras.setdefault(track["participant_id"], []).append(
                (track["started_at"] + times[0], track["started_at"] + times[-1]))
        assert len(cameras) == 2 and all(len(spans) == 2 for spans in cameras.values()), cameras
        for (_, first_end), (second_start, second_end) in map(sorted, cameras.values()):
            # Filmed all along, outage included, and nothing held back for good: the only
            # gap is the blip's.
            assert first_end > killed_at and second_start - first_end < 3.0, cameras
            assert second_end > killed_at + HELD_S, cameras
        text = server.log_path.read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in text, server.tail(80)
        assert text.count("Redis unreachable") == 1 and text.count("Redis back after") == 1
    finally:
        await server.stop()
