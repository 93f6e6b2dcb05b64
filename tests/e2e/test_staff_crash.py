"""The staff desk's browser crashes mid-call, in real Chromium: the desk runs in a browser of its
own, whose processes are killed (SIGKILL, all of them at once, as a crash ends them; the kernel
closes their connections). The applicant's kiosk shows the desk as 重新连接中… and the ticket
stays connected. Then either the same staff member signs in again on a fresh browser within the
grace, and the desk goes back into the call by itself (the first staff:state carries the room);
or nobody comes back, and past the grace the consultation ends for the applicant (room:ended,
reconnect_timeout), the ticket ends, and the recording is finished, indexed and sealed."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import pytest

from server.config import Config
from server.keys import ARCHIVE, ROOMS, STORE
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, login, wait_frames
from tests.support.pages import connected, new_page
from tests.support.recordings import finished_timeline
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

GRACE = 6.0
MARK = "YUNZHEN_TEST_BROWSER"


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, media=replace(config.media, reconnect_grace=GRACE,
                                         empty_room_timeout=2.0))


async def launch_marked(browser: Any) -> tuple[Any, str]:
    """Another Chromium beside the test's, every process of it marked in its environment."""
    mark = secrets.token_hex(8)
    other = await browser.browser_type.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        env={**os.environ, MARK: mark})
    return other, mark


def crash(mark: str) -> int:
    """SIGKILL every process of the marked browser; how many there were."""
    needle = f"{MARK}={mark}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


async def crash_the_desk(server: LiveServer, browser: Any) -> tuple[Any, str, Any]:
    """A call between a kiosk (the test's browser) and a desk (a browser of its own), then the
    desk's browser killed; returns the kiosk page, the ticket id and the desk's browser."""
    from playwright.async_api import expect

    desk_browser, mark = await launch_marked(browser)
    kiosk, _staff = await connected(server, browser, staff_browser=desk_browser)
    await wait_frames(kiosk, 20)
    [room] = server.app[ROOMS].rooms()
    ticket_id = room.meta.ticket_id
    assert crash(mark) >= 2  # the browser and its renderers at least

    await expect(kiosk.get_by_test_id("remote-reconnecting")).to_be_visible(timeout=10_000)
    await expect(kiosk.get_by_test_id("remote-reconnecting")).to_have_text("重新连接中…")
    await expect(kiosk.get_by_test_id("call-reconnecting")).to_be_hidden()
    ticket = await server.app[STORE].ticket(ticket_id)
    assert ticket is not None and (ticket.status, ticket.staff) == ("connected", "tax01")
    assert not room.closed
    return kiosk, ticket_id, desk_browser


async def test_the_staff_member_signs_in_again_and_the_desk_rejoins_the_call(
        server: LiveServer, browser: Any, config: Config) -> None:
    from playwright.async_api import expect

    kiosk, ticket_id, dead = await crash_the_desk(server, browser)
    [room] = server.app[ROOMS].rooms()
    before = await kiosk.evaluate("window.__pcs.length")

    # A fresh browser, the same staff member: the desk offers the room again on connect.
    again = await new_page(browser)
    await login(again, f"{server.url}/staff", "tax01")
    await expect(kiosk.get_by_test_id("remote-reconnecting")).to_be_hidden(timeout=15_000)
    await wait_frames(again, 20)
    frames = (await wait_frames(kiosk, 1))["framesDecoded"]
    await wait_frames(kiosk, frames + 20)  # the desk's new video reaches the applicant
    assert await kiosk.evaluate("window.__pcs.length") == before  # the kiosk never left
    ticket = await server.app[STORE].ticket(ticket_id)
    assert ticket is not None and ticket.status == "connected"

    await again.get_by_test_id("hangup").click()
    timeline = await finished_timeline(config.recordings_dir, room.room_id)
    desk = "s-tax01"
    events = [(e["type"], e.get("participant_id")) for e in timeline["events"]]
    assert events.index(("reconnecting", desk)) < events.index(("reconnected", desk))
    assert ("leave", desk) not in events[:events.index(("reconnected", desk))]
    videos = [t for t in timeline["tracks"] if t["participant_id"] == desk
              and t["kind"] == "video"]
    assert len(videos) == 2, timeline["tracks"]  # before the crash and after the rejoin
    for track in videos:
        with av.open(str(config.recordings_dir / room.room_id / track["file"])) as container:
            assert sum(1 for _ in container.decode(container.streams.video[0])) > 5, track
    with_timeout = asyncio.wait_for(dead.close(), 10)
    await asyncio.gather(with_timeout, return_exceptions=True)


async def test_nobody_comes_back_and_the_consultation_ends_with_the_recording_sealed(
        server: LiveServer, browser: Any, config: Config) -> None:
    from playwright.async_api import expect

    kiosk, ticket_id, dead = await crash_the_desk(server, browser)
    [room] = server.app[ROOMS].rooms()

    # Past the grace the applicant's consultation is over: the kiosk asks for a rating.
    await expect(kiosk.get_by_test_id("rating-5")).to_be_visible(timeout=(GRACE + 10) * 1000)
    assert room.closed
    timeline = await finished_timeline(config.recordings_dir, room.room_id)
    events = [(e["type"], e.get("participant_id"), e.get("reason")) for e in timeline["events"]]
    assert ("leave", "s-tax01", "reconnect_timeout") in events
    assert events[-1] == ("close", None, "reconnect_timeout")
    ticket = await server.app[STORE].ticket(ticket_id)
    assert ticket is not None and ticket.status == "ended"

    archive = server.app[ARCHIVE]
    for _ in range(100):
        if await archive.entry(room.room_id):
            break
        await asyncio.sleep(0.1)
    entry = await archive.entry(room.room_id)
    assert entry is not None
    report = await archive.verify(room.room_id)
    assert report.ok, report.problems
    # The applicant's video up to the end decodes.
    [video] = [t for t in timeline["tracks"] if t["participant_id"].startswith("a-")
               and t["kind"] == "video"]
    with av.open(str(config.recordings_dir / room.room_id / video["file"])) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) > 20
    await asyncio.gather(asyncio.wait_for(dead.close(), 10), return_exceptions=True)
