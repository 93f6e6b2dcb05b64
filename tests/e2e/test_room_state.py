"""What the call screen shows about the room, in real Chromium: a silent supervisor (a Chromium
page joining as an observer through RoomSession) opens no camera or microphone, answers
receive-only and gets no tile; the staff desk shows that a supervisor listens, the kiosk does
not."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import pytest

from server.keys import DIRECTORY, ROOMS
from tests.support.browser import INBOUND_STATS, TRACK_PEER_CONNECTIONS, wait_frames
from tests.support.pages import connected
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

# Counts getUserMedia calls, before any page script runs.
COUNT_USER_MEDIA = """
window.__userMedia = 0;
const originalGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => {
  window.__userMedia += 1;
  return originalGetUserMedia(constraints);
};
"""

# Joins a room from the (logged-out) staff page with the page's own RoomSession, as the
# supervisor page does: the module is imported from the URL the page loaded it from.
JOIN_AS_OBSERVER = """
async ({roomId, token}) => {
  const src = document.querySelector('script[type=module]').src;
  const m = await import(src.replace(/[^/]*\\.js.*$/, 'room.js'));
  const c = await import(src.replace(/[^/]*\\.js.*$/, 'common.js'));
  const session = new m.RoomSession({
    roomId, token, localVideo: c.$('local-video'), remoteVideo: c.$('remote-video'),
    extraRemotes: c.$('remote-extra'), preferRole: 'applicant',
  });
  c.showScreen('call');
  await session.start();
}
"""


# Closes the page's room sessions, as leaving the call screen does.
CLOSE_SESSIONS = """
async () => {
  const src = document.querySelector('script[type=module]').src;
  const m = await import(src.replace(/[^/]*\\.js.*$/, 'room.js'));
  for (const session of [...m.RoomSession.active]) session.close();
}
"""


def room_id_of(server: LiveServer) -> str:
    rooms = server.app[ROOMS].rooms()
    assert len(rooms) == 1
    return str(rooms[0].room_id)


async def supervisor_token(server: LiveServer, room_id: str, participant_id: str = "v-sup"
                           ) -> str:
    room = server.app[ROOMS].get(room_id)
    assert room is not None
    return str(await server.app[DIRECTORY].create_token(
        room_id, role="supervisor", participant_id=participant_id, name="督查员",
        department="tax", ticket_id=room.meta.ticket_id))


async def test_a_supervisor_observes_silently_and_only_staff_are_told(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await connected(server, browser)
    room_id = room_id_of(server)
    await expect(staff.get_by_test_id("observer-note")).to_be_hidden()

    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    observer = await context.new_page()
    await observer.add_init_script(TRACK_PEER_CONNECTIONS)
    await observer.add_init_script(COUNT_USER_MEDIA)
    await observer.goto(f"{server.url}/staff")
    await observer.evaluate(JOIN_AS_OBSERVER, {"roomId": room_id,
                                               "token": await supervisor_token(server, room_id)})
    # The observer receives the others' video ...
    await wait_frames(observer, 10)
    # ... without ever opening a camera or microphone, and sends nothing.
    assert await observer.evaluate("window.__userMedia") == 0
    directions = await observer.evaluate(
        "window.__pcs.at(-1).getTransceivers().map((t) => t.currentDirection)")
    assert directions and set(directions) <= {"recvonly", "inactive"}, directions
    assert await observer.evaluate(
        "window.__pcs.at(-1).getSenders().filter((s) => s.track).length") == 0
    await expect(observer.locator(".local-wrap")).to_be_hidden()
    await expect(observer.get_by_test_id("toggle-mic")).to_be_hidden()
    await expect(observer.get_by_test_id("chat-form")).to_be_hidden()
    await expect(observer.get_by_test_id("remote-video")).to_be_visible()

    # The staff desk is told; the applicant is not.
    await expect(staff.get_by_test_id("observer-note")).to_be_visible()
    await expect(staff.get_by_test_id("observer-note")).to_have_text("督查旁听中")
    await expect(kiosk.get_by_test_id("observer-note")).to_be_hidden()
    # Nobody shows a tile for the observer: the kiosk and the desk see one remote each.
    for page in (kiosk, staff):
        assert await page.locator("[data-testid=remote-extra] [data-participant]").count() == 0
    # The kiosk and the desk go on decoding each other.
    for page in (kiosk, staff):
        before = await page.evaluate(INBOUND_STATS)
        await wait_frames(page, before["framesDecoded"] + 10)

    # The supervisor leaves (a page closing its session, not a dropped network): the note goes.
    await observer.evaluate(CLOSE_SESSIONS)
    await expect(staff.get_by_test_id("observer-note")).to_be_hidden(timeout=10_000)
    await context.close()


async def test_speaking_and_recording_are_shown_on_the_call_screen(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await connected(server, browser)
    # Everybody sees that the room records.
    for page in (kiosk, staff):
        await expect(page.get_by_test_id("recording-badge")).to_be_visible()
        await expect(page.get_by_test_id("recording-badge")).to_have_text("● 录制中")

    # Chromium's fake microphone beeps: the server hears it in the audio level header extension
    # and each side highlights the other's picture while it sounds.
    for page in (kiosk, staff):
        await page.wait_for_selector(".remote-wrap[data-speaking=true]", timeout=15_000)
    # A muted microphone sends silence: the highlight goes and stays away.
    await kiosk.get_by_test_id("toggle-mic").click()
    await staff.wait_for_selector(".remote-wrap[data-speaking=false]", timeout=10_000)
    await asyncio.sleep(2)
    assert await staff.locator(".remote-wrap").get_attribute("data-speaking") == "false"

    # The recording stops during the call (a write fails as on a full disk): both pages say so.
    room = server.app[ROOMS].get(room_id_of(server))
    assert room is not None
    room.recorder._fail("disk_full", OSError(errno.ENOSPC, "No space left on device"))
    for page in (kiosk, staff):
        await expect(page.get_by_test_id("recording-badge")).to_have_text("录制中断",
                                                                           timeout=5_000)
        await expect(page.get_by_test_id("recording-badge")).to_have_attribute(
            "data-state", "interrupted")
