"""A four-party consultation through the real server: the applicant at the kiosk (Chromium), the
tax staff member who accepts (Chromium), a market-regulation colleague who joins from their
desk by invitation (Chromium, 会商) and the hall guide (an aiortc participant with a room token
from the API). Everybody decodes everybody's video and receives their audio; the staff's screen
share shows at the others; late joiners decode within 1 s; a reloaded desk is back in the room;
then a supervisor listens in from the wallboard, sees all four, and nobody sees them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rooms.client import RoomClient
from server.keys import ROOMS, STORE
from tests.support.browser import TRACK_PEER_CONNECTIONS, login, submit_login
from tests.support.http import client_session, logged_in
from tests.support.pages import wait_screen
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

# Before any page script: when a peer connection gets connected, poll its inbound video every
# 20 ms and note, per transceiver mid, how long after the connection its first frame decoded.
FIRST_FRAMES = """
window.__firstFrames = {};
const Tracked = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) {
  const pc = new Tracked(...args);
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState !== 'connected') return;
    const connectedAt = performance.now();
    const timer = setInterval(async () => {
      if (pc.connectionState === 'closed') { clearInterval(timer); return; }
      let waiting = 0;
      for (const tr of pc.getTransceivers()) {
        if (tr.mid === null || tr.receiver.track.kind !== 'video') continue;
        const key = `${window.__pcs.indexOf(pc)}/${tr.mid}`;
        if (key in window.__firstFrames) continue;
        if (tr.currentDirection !== 'recvonly') continue; // the own camera, an idle screen
        waiting += 1;
        const report = await tr.receiver.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.framesDecoded > 0 && !(key in window.__firstFrames)) {
            window.__firstFrames[key] = performance.now() - connectedAt;
          }
        });
      }
      // Stop once every received video has shown (polling costs CPU the call needs), but not in
      // the first 3 s: a video the server adds by renegotiation just after the connection is
      // not recvonly yet at the first polls, and would never be timed.
      const since = performance.now() - connectedAt;
      if ((waiting === 0 && since > 3000) || since > 10000) clearInterval(timer);
    }, 20);
  });
  return pc;
};
window.RTCPeerConnection.prototype = Tracked.prototype;
"""

# What the page's RoomSession receives, per remote participant and source (camera, screen):
# video frames decoded and audio packets, read from each receiver's own stats.
PER_PARTICIPANT = """
async () => {
  const src = document.querySelector('script[type=module]').src;
  const m = await import(src.replace(/[^/]*\\.js.*$/, 'room.js'));
  const out = {};
  for (const session of m.RoomSession.active) {
    if (!session.pc || session.closed) continue;
    for (const tr of session.pc.getTransceivers()) {
      if (tr.mid === null || tr.stopped) continue;
      const info = session.tracksByMid.get(String(tr.mid));
      if (!info) continue;
      const key = `${info.participant_id}/${info.source === 'screen' ? 'screen' : 'camera'}`;
      const entry = out[key] || (out[key] = {frames: 0, audio: 0, mids: []});
      entry.mids.push(String(tr.mid));
      const report = await tr.receiver.getStats();
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') entry.frames += s.framesDecoded || 0;
        if (s.kind === 'audio') entry.audio += s.packetsReceived || 0;
      });
    }
  }
  return out;
}
"""


async def _page(browser: Any, first_frames: bool = False) -> Any:
    context = await browser.new_context(viewport={"width": 1100, "height": 760})
    page = await context.new_page()
    await page.add_init_script(TRACK_PEER_CONNECTIONS)
    if first_frames:
        await page.add_init_script(FIRST_FRAMES)
    return page


async def _media_from(page: Any, others: list[str], frames: int = 1,
                      timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the page decodes at least `frames` video frames of each of `others` (their
    cameras) and has audio packets from each; returns the stats."""
    deadline = time.monotonic() + timeout
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = await page.evaluate(PER_PARTICIPANT)
        if all(stats.get(f"{p}/camera", {}).get("frames", 0) >= frames
               and stats.get(f"{p}/camera", {}).get("audio", 0) > 0 for p in others):
            return stats
        await asyncio.sleep(0.3)
    pytest.fail(f"{page.url}: no media from all of {others}: {stats}")


async def _growing(page: Any, others: list[str]) -> None:
    """Media keeps coming from each of `others` (not just a first frame)."""
    before = await page.evaluate(PER_PARTICIPANT)
    await _media_from(page, others, frames=1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = await page.evaluate(PER_PARTICIPANT)
        if all(now[f"{p}/camera"]["frames"] > before.get(f"{p}/camera", {}).get("frames", 0) + 5
               and now[f"{p}/camera"]["audio"] > before.get(f"{p}/camera", {}).get("audio", 0)
               for p in others):
            return
        await asyncio.sleep(0.3)
    pytest.fail(f"{page.url}: media stopped: {before} -> {now}")


async def _the_room(server: LiveServer) -> Any:
    """The one room, once the accept has opened it."""
    deadline = time.monotonic() + 15
    while not server.app[ROOMS].rooms():
        if time.monotonic() > deadline:
            pytest.fail("no room opened")
        await asyncio.sleep(0.1)
    return server.app[ROOMS].rooms()[0]


async def _connected_at(client: RoomClient, timeout: float = 15.0) -> float:
    """When (time.monotonic, the clock of RoomClient's stats) the aiortc peer connection of a
    participant that just joined gets connected."""
    pc = client.peer.pc
    assert pc.connectionState != "connected", "connected before it could be timed"
    deadline = time.monotonic() + timeout
    while pc.connectionState != "connected":
        if time.monotonic() > deadline:
            pytest.fail(f"{client.name}: peer connection {pc.connectionState}")
        await asyncio.sleep(0.005)
    return time.monotonic()


async def test_four_parties_and_a_silent_supervisor(server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk = await _page(browser)
    tax = await _page(browser)
    market = await _page(browser, first_frames=True)

    await login(tax, f"{server.url}/staff", "tax01")
    await tax.get_by_test_id("presence-available").click()
    await login(market, f"{server.url}/staff", "market01")
    await market.get_by_test_id("presence-available").click()
    await expect(market.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")
    await expect(market.get_by_test_id("invites-empty")).to_be_visible()

    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(tax.get_by_test_id("incoming-call")).to_be_visible(timeout=15_000)
    await tax.get_by_test_id("accept-call").click()
    room = await _the_room(server)
    ticket_id = room.meta.ticket_id
    applicant = f"a-{ticket_id}"
    await _media_from(kiosk, ["s-tax01"])
    await _media_from(tax, [applicant])

    # 会商: the tax desk invites market regulation with a note; the market desk joins.
    await expect(tax.get_by_test_id("invite-panel")).to_be_visible()
    await tax.get_by_test_id("invite-department").select_option("market")
    await tax.get_by_test_id("invite-note").fill("涉及营业执照变更")
    await tax.get_by_test_id("invite-send").click()
    await expect(tax.get_by_test_id("invite-status")).to_contain_text("市场监管")
    invite = market.get_by_test_id("invite-item")
    await expect(invite).to_have_count(1, timeout=10_000)
    await expect(invite).to_contain_text("涉及营业执照变更")
    await expect(invite).to_contain_text("税A001")
    await market.get_by_test_id("invite-join").click()
    await _media_from(market, [applicant, "s-tax01"])
    # A late joiner decodes everybody's video within 1 s of its connection.
    first = await market.evaluate("window.__firstFrames")
    assert len(first) >= 2 and max(first.values()) <= 1000, first
    # The invitee leaves (not ends) the call; the ACD does not ring them meanwhile.
    await expect(market.get_by_test_id("hangup")).to_have_text("离开会话")
    state = await server.app[STORE].staff_state("market01")
    assert (state["presence"], state["reason"]) == ("away", "consult")

    # The hall guide who made the ticket joins with a token from the API, as an aiortc peer.
    await server.app[STORE].set_ticket_guide(ticket_id, "guide01", time.time())
    async with client_session() as http:
        await logged_in(http, server.url, "guide01")
        response = await http.post(f"{server.url}/api/rooms/{room.room_id}/join", json={})
        assert response.status == 200, await response.text()
        grant = (await response.json())["room"]
    guide = await RoomClient.connect(server.url, grant["room_id"], grant["token"],
                                     name="导服01", width=160, height=120)
    try:
        assert guide.role == "guide"
        connected_at = await _connected_at(guide)
        everyone = {applicant, "s-tax01", "s-market01", "g-guide01"}
        stats = await guide.wait_for_video(5, 30)
        assert set(stats) == everyone - {"g-guide01"}, stats
        for pid in stats:
            remote = guide.peer.remote(pid)
            assert remote is not None and remote.audio_packets > 0, (pid, stats[pid])
            # The guide joined last: everybody's video within 1 s of its connection.
            assert remote.first_video_frame_at is not None
            assert remote.first_video_frame_at - connected_at <= 1.0, (pid, stats[pid])
        for page, me in ((kiosk, applicant), (tax, "s-tax01"), (market, "s-market01")):
            await _growing(page, sorted(everyone - {me}))

        # The tax staff member shares the screen: it shows at the kiosk and the market desk.
        await tax.get_by_test_id("share-screen").click()
        for page in (kiosk, market):
            await wait_screen(page, frames=5, timeout=30)
        await guide.wait_for_video(5, 30, participant_id="s-tax01/screen")
        await expect(tax.get_by_test_id("remote-screen")).to_be_hidden()

        # The market desk reloads: it is given its room back and receives everybody again.
        await market.reload()
        await expect(market.get_by_test_id("hangup")).to_be_visible(timeout=15_000)
        await _media_from(market, [applicant, "s-tax01", "g-guide01"])
        await wait_screen(market, frames=5, timeout=30)

        # A supervisor listens in from the wallboard.
        supervisor = await _page(browser)
        await login(supervisor, f"{server.url}/supervisor", "supervisor")
        row = supervisor.get_by_test_id("live-room-row")
        await expect(row).to_have_count(1, timeout=15_000)
        await expect(row).to_contain_text("税A001")
        await expect(row.locator("td.num")).to_have_text("4", timeout=10_000)
        await row.get_by_test_id("observe-start").click()
        await expect(supervisor.get_by_test_id("observe-panel")).to_be_visible()
        await _media_from(supervisor, sorted(everyone))
        assert await supervisor.evaluate("window.__pcs.at(-1).getSenders()"
                                         ".filter((s) => s.track).length") == 0
        # Nobody shows a tile for the supervisor: three remote people on each page.
        for page in (kiosk, tax, market):
            await expect(page.locator(
                "[data-testid=remote-extra] [data-participant='v-supervisor']")).to_have_count(0)
            await expect(page.locator(
                "[data-testid=remote-extra] [data-participant]")).to_have_count(2)
        await _growing(kiosk, sorted(everyone - {applicant}))
        await supervisor.get_by_test_id("observe-stop").click()
        await expect(supervisor.get_by_test_id("observe-panel")).to_be_hidden()
    finally:
        await guide.close()


async def test_a_hall_guide_joins_the_consultation_they_started(
        server: LiveServer, browser: Any) -> None:
    """The guide logs in on the kiosk (guide mode) to start the ticket, and on their own device
    at /staff, where their consultations in progress are listed with a Join button."""
    from playwright.async_api import expect

    kiosk = await _page(browser)
    tax = await _page(browser)
    guide = await _page(browser)
    await login(tax, f"{server.url}/staff", "tax01")
    await tax.get_by_test_id("presence-available").click()
    await login(guide, f"{server.url}/staff", "guide01")
    await expect(guide.get_by_test_id("guide-empty")).to_be_visible()
    # A guide has no desk: no presence, no staff socket.
    await expect(guide.get_by_test_id("presence-available")).to_be_hidden()

    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("guide-mode").click()
    await submit_login(kiosk, "guide01")
    await expect(kiosk.get_by_test_id("guide-bar")).to_be_visible()
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()

    item = guide.get_by_test_id("guide-item")
    await expect(item).to_have_count(1, timeout=10_000)
    await expect(item).to_contain_text("税A001")
    await expect(item.get_by_test_id("guide-join")).to_have_count(0)
    await expect(tax.get_by_test_id("incoming-call")).to_be_visible(timeout=15_000)
    await tax.get_by_test_id("accept-call").click()
    room = await _the_room(server)
    applicant = f"a-{room.meta.ticket_id}"
    await expect(item.get_by_test_id("guide-status")).to_have_text("通话中", timeout=10_000)
    await item.get_by_test_id("guide-join").click()
    await _media_from(guide, [applicant, "s-tax01"])
    await _media_from(tax, [applicant, "g-guide01"])
    # The guide may add a department from the call, like the staff.
    await expect(guide.get_by_test_id("invite-panel")).to_be_visible()
    await guide.get_by_test_id("invite-department").select_option("fund")
    await guide.get_by_test_id("invite-send").click()
    await expect(guide.get_by_test_id("invite-status")).to_contain_text("公积金")

    # The guide leaves; the call goes on between the applicant and the staff member.
    await guide.get_by_test_id("hangup").click()
    await expect(guide.get_by_test_id("guide-item")).to_have_count(1)
    await expect(guide.get_by_test_id("invite-panel")).to_be_hidden()
    await expect(tax.locator("[data-testid=remote-extra] [data-participant]")).to_have_count(
        0, timeout=10_000)
    assert not room.closed
    await _growing(kiosk, ["s-tax01"])
