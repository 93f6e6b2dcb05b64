"""Reconnection after a network drop, in real Chromium: the kiosk loses its network mid-call and
comes back by itself with a new peer connection; the staff desk meanwhile shows 重新连接中… on the
applicant's picture, then decodes their video again; the recording holds both segments.

The drop is simulated, honestly but not physically: the kiosk's browser context goes offline
(Playwright's setOffline, CDP network emulation: new HTTP and WebSocket connections fail, so
Socket.IO cannot reconnect while it lasts) and the page's own Socket.IO engine and
RTCPeerConnection are closed, as a dead network would end them. Network emulation does not stop
WebRTC's UDP on loopback, hence the closed peer connection. After 4 s the context goes online
again and nobody does anything."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.browser import INBOUND_STATS, login, wait_frames
from tests.support.pages import connected, new_page, take_tax_ticket, wait_media
from tests.support.server import LiveServer, start_server

pytestmark = pytest.mark.browser

# Cuts the page's connections to the server as a dropped network would.
DROP = """
async () => {
  const src = document.querySelector('script[type=module]').src;
  const m = await import(src.replace(/[^/]*\\.js.*$/, 'room.js'));
  const [session] = [...m.RoomSession.active];
  session.socket.io.engine.close();
  session.pc.close();
}
"""


async def test_the_kiosk_comes_back_by_itself_after_a_network_drop(
        server: LiveServer, browser: Any, config: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await connected(server, browser)
    # A first segment of some length before the drop.
    await wait_frames(staff, 30)
    await expect(staff.get_by_test_id("remote-reconnecting")).to_be_hidden()
    await expect(kiosk.get_by_test_id("call-reconnecting")).to_be_hidden()

    await kiosk.context.set_offline(True)
    await kiosk.evaluate(DROP)
    dropped_at = time.time()
    # The kiosk says it is reconnecting; the desk shows it on the applicant's picture.
    await expect(kiosk.get_by_test_id("call-reconnecting")).to_be_visible()
    await expect(kiosk.get_by_test_id("call-reconnecting")).to_have_text("正在重新连接…")
    await expect(staff.get_by_test_id("remote-reconnecting")).to_be_visible(timeout=10_000)
    await expect(staff.get_by_test_id("remote-reconnecting")).to_have_text("重新连接中…")
    await asyncio.sleep(4)
    before = await staff.evaluate(INBOUND_STATS)
    await kiosk.context.set_offline(False)

    # Back without anyone doing anything: a second peer connection on the kiosk, the badges gone,
    # video decoded both ways again.
    await expect(staff.get_by_test_id("remote-reconnecting")).to_be_hidden(timeout=20_000)
    await expect(kiosk.get_by_test_id("call-reconnecting")).to_be_hidden(timeout=20_000)
    after = await wait_frames(staff, before["framesDecoded"] + 30)
    assert after["pcs"] == 1
    kiosk_stats = await wait_media(kiosk, frames=1)
    assert kiosk_stats["pcs"] == 2
    kiosk_pc = await kiosk.evaluate("window.__pcs.at(-1).connectionState")
    assert kiosk_pc == "connected"
    new_frames = await kiosk.evaluate("""async () => {
      let frames = 0;
      (await window.__pcs.at(-1).getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
      });
      return frames;
    }""")
    assert new_frames > 0

    await staff.get_by_test_id("hangup").click()
    recordings = list(Path(config.recordings_dir).iterdir())
    assert len(recordings) == 1
    path = recordings[0] / "timeline.json"
    for _ in range(100):
        timeline = json.loads(path.read_text())
        if timeline.get("ended_at") is not None:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the recording did not finish")
    applicant = next(p["participant_id"] for p in timeline["participants"]
                     if p["role"] == "applicant")
    events = [(e["type"], e.get("participant_id")) for e in timeline["events"]]
    assert ("reconnecting", applicant) in events and ("reconnected", applicant) in events
    lost = next(e["t"] for e in timeline["events"] if e["type"] == "reconnecting")
    assert abs(lost - dropped_at) < 5
    videos = sorted((t for t in timeline["tracks"]
                     if t["participant_id"] == applicant and t["kind"] == "video"),
                    key=lambda t: t["started_at"])
    assert len(videos) == 2, timeline["tracks"]
    for track in videos:
        with av.open(str(recordings[0] / track["file"])) as container:
            frames = sum(1 for _ in container.decode(container.streams.video[0]))
        assert frames > 20, track
    # The staff's own tracks went on through it all: one file each.
    staff_tracks = [t for t in timeline["tracks"] if t["participant_id"] != applicant]
    assert sorted(t["kind"] for t in staff_tracks) == ["audio", "video"]


async def test_a_failed_peer_connection_is_replaced_on_the_same_socket(
        server: LiveServer, browser: Any) -> None:
    """The media path dies while the socket stays up (here: the server's end of the kiosk's peer
    connection is closed under it, as a dead path ends it): the kiosk sees its peer connection
    go down and joins again on the same socket, with a new one."""
    from playwright.async_api import expect

    from server.keys import ROOMS

    kiosk, staff = await connected(server, browser)
    await wait_frames(staff, 10)
    [room] = server.app[ROOMS].rooms()
    applicant = next(p for p in room.participants_info() if p["role"] == "applicant")
    old = room.participant(applicant["participant_id"])
    assert old is not None
    await old.pc.close()
    await expect(staff.get_by_test_id("remote-reconnecting")).to_be_visible(timeout=10_000)
    before = await staff.evaluate(INBOUND_STATS)
    await expect(staff.get_by_test_id("remote-reconnecting")).to_be_hidden(timeout=20_000)
    await wait_frames(staff, before["framesDecoded"] + 30)
    assert (await kiosk.evaluate(INBOUND_STATS))["pcs"] == 2
    new = room.participant(applicant["participant_id"])
    assert new is not None and new is not old


async def test_room_sockets_the_server_closes_come_back_by_themselves(
        server: LiveServer, browser: Any) -> None:
    """A process that lets a room go (it was taken for dead while stopped, and the room moved)
    closes the room's sockets without a word (signaling/room_channel.py `moved`). Socket.IO does
    not reconnect a socket the server closed: each page asks where the room is, and when the
    answer is the address it has (here: the room is still on this one process), connects its
    socket again and joins; video flows both ways again."""
    from playwright.async_api import expect

    from server.keys import ROOM_CHANNEL, ROOMS

    kiosk, staff = await connected(server, browser)
    await wait_frames(staff, 10)
    [room] = server.app[ROOMS].rooms()
    desk_before = await staff.evaluate(INBOUND_STATS)
    kiosk_before = await kiosk.evaluate(INBOUND_STATS)
    await server.app[ROOM_CHANNEL].moved(room.room_id)
    for page in (kiosk, staff):
        await expect(page.get_by_test_id("call-reconnecting")).to_be_visible()
    for page in (kiosk, staff):
        await expect(page.get_by_test_id("call-reconnecting")).to_be_hidden(timeout=20_000)
    # Each joined again with a new peer connection, and decodes the other's video on it.
    await wait_frames(staff, desk_before["framesDecoded"] + 30)
    await wait_frames(kiosk, kiosk_before["framesDecoded"] + 30)
    assert (await staff.evaluate(INBOUND_STATS))["pcs"] == 2
    assert (await kiosk.evaluate(INBOUND_STATS))["pcs"] == 2
    assert not room.closed


async def test_pages_open_when_the_server_restarts_come_back_by_themselves(
        server: LiveServer, browser: Any, config: Any) -> None:
    """A graceful stop (Ctrl+C, a worker stopped) with a desk and a waiting applicant's kiosk
    open: the stop ends their connections at once instead of waiting for the pages' pings to
    time out (45 s), and the pages, which take it for a lost network, come back by themselves
    once the server is up again: the ticket is still waiting, the desk's 空闲 rings it, and the
    call connects."""
    from playwright.async_api import expect

    kiosk = await new_page(browser)
    staff = await new_page(browser)
    await login(staff, f"{server.url}/staff", "tax01")
    await take_tax_ticket(server, kiosk)
    await expect(staff.get_by_test_id("queue-list")).to_contain_text("1 人等待")

    await asyncio.wait_for(server.runner.cleanup(), 15)
    again = await start_server(config, port=server.port)
    try:
        await staff.get_by_test_id("presence-available").click()
        await expect(staff.get_by_test_id("incoming-call")).to_be_visible(timeout=20_000)
        await staff.get_by_test_id("accept-call").click()
        await wait_media(kiosk, frames=1)
        await wait_media(staff, frames=1)
    finally:
        await again.runner.cleanup()
