"""The first consultation, end to end, in real Chromium with a fake camera and microphone:
kiosk → queue → staff rung → accept → both see and hear each other through the server →
hangup → rating → the recording decodes with PyAV and plays on the supervisor page."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import av
import pytest

from server.keys import STORE
from signaling.accounts import AccountPolicy, Accounts
from signaling.client import SignalingClient
from tests.support.browser import login
from tests.support.pages import inbound_frames, new_page, ring, wait_media
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def test_first_recorded_consultation_end_to_end(server: LiveServer, browser: Any,
                                                     config: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await ring(server, browser)
    accepted_at = time.time()
    await staff.get_by_test_id("accept-call").click()

    # Both see and hear each other, each over ONE peer connection to the server.
    await expect(kiosk.get_by_test_id("remote-video")).to_be_visible(timeout=15_000)
    kiosk_first = await wait_media(kiosk, frames=1)
    staff_first = await wait_media(staff, frames=1)
    await asyncio.sleep(3)
    kiosk_later = await wait_media(kiosk, frames=kiosk_first["framesDecoded"] + 30)
    staff_later = await wait_media(staff, frames=staff_first["framesDecoded"] + 30)
    assert kiosk_later["pcs"] == staff_later["pcs"] == 1
    assert kiosk_later["audioPackets"] > kiosk_first["audioPackets"]
    assert staff_later["audioPackets"] > staff_first["audioPackets"]

    # The applicant hangs up, rates 非常满意, is thanked and the screen is wiped.
    hangup_at = time.time()
    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("rating-5")).to_be_visible(timeout=10_000)
    await expect(kiosk.get_by_test_id("rating-5")).to_contain_text("非常满意")
    await expect(kiosk.get_by_test_id("rating-1")).to_contain_text("非常不满意")
    await kiosk.get_by_test_id("rating-5").click()
    await kiosk.get_by_test_id("rating-submit").click()
    await expect(kiosk.get_by_test_id("thanks-back")).to_be_visible()
    # The countdown ends in the privacy wipe's attract screen; a touch opens the start screen.
    await expect(kiosk.get_by_test_id("attract")).to_be_visible(timeout=15_000)
    await kiosk.get_by_test_id("attract").click()
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    # The staff desk is back to available.
    await expect(staff.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true", timeout=10_000)

    # The recording: every published track remuxed into its own file, and a timeline.
    recordings = list(Path(config.recordings_dir).iterdir())
    assert len(recordings) == 1
    timeline = json.loads((recordings[0] / "timeline.json").read_text())
    assert timeline["department"] == "tax"
    assert timeline["ticket_number"] == "税A001"
    # timeline.json is sealed at close and never rewritten: the rating is a file of its own.
    assert json.loads((recordings[0] / "rating.json").read_text())["rating"] == 5
    assert (recordings[0] / "manifest.json").exists()
    assert {(p["role"], p.get("department")) for p in timeline["participants"]} >= {
        ("applicant", None), ("staff", "tax")}
    assert abs(timeline["ended_at"] - hangup_at) < 2.0
    assert timeline["started_at"] >= accepted_at - 1.0
    kinds = sorted((t["participant_id"][0], t["kind"]) for t in timeline["tracks"])
    assert kinds == [("a", "audio"), ("a", "video"), ("s", "audio"), ("s", "video")]
    for track in timeline["tracks"]:
        expected = timeline["ended_at"] - track["started_at"]
        with av.open(str(recordings[0] / track["file"])) as container:
            stream = container.streams[0]
            assert stream.type == track["kind"]
            decoded: list[Any] = list(container.decode(stream))  # video or audio frames
        assert decoded, track
        duration = float(decoded[-1].time - decoded[0].time)
        assert abs(duration - expected) < 1.0, (track, duration, expected)
        if track["kind"] == "video":
            assert len(decoded) > 30

    # The supervisor finds the recording and plays it in the page.
    supervisor = await new_page(browser)
    await login(supervisor, f"{server.url}/supervisor", "supervisor")
    await expect(supervisor.get_by_test_id("recording-row")).to_have_count(1, timeout=10_000)
    await expect(supervisor.get_by_test_id("recording-row")).to_contain_text("税A001")
    await supervisor.get_by_test_id("recording-play").click()
    videos = supervisor.locator("[data-testid=recording-player] video")
    await expect(videos).to_have_count(2)
    await supervisor.get_by_test_id("player-toggle").click()
    await supervisor.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=recording-player] video')]
                 .every((v) => v.readyState >= 2 && v.currentTime > 1.0)""",
        timeout=20_000,
    )
    # Filters narrow the list.
    await supervisor.get_by_test_id("filter-incomplete").check()
    await supervisor.get_by_test_id("filter-apply").click()
    await expect(supervisor.get_by_test_id("recording-row")).to_have_count(0)
    await supervisor.get_by_test_id("filter-reset").click()
    await expect(supervisor.get_by_test_id("recording-row")).to_have_count(1)
    await supervisor.get_by_test_id("filter-rating").select_option("5")
    await supervisor.get_by_test_id("filter-apply").click()
    await expect(supervisor.get_by_test_id("recording-row")).to_have_count(1)
    await supervisor.get_by_test_id("filter-min-duration").fill("5")
    await supervisor.get_by_test_id("filter-max-duration").fill("1")
    await supervisor.get_by_test_id("filter-apply").click()
    await expect(supervisor.get_by_test_id("filter-error")).to_be_visible()
    # The auditor's page shows the supervisor's listing and viewing (supervisors no longer read
    # the audit themselves).
    auditor = await new_page(browser)
    await login(auditor, f"{server.url}/audit", "auditor")
    views = auditor.locator("[data-testid=audit-row][data-action=view][data-who=supervisor]")
    await expect(views).to_have_count(1)
    assert await auditor.locator("[data-testid=audit-row][data-action=list]").count() >= 1


async def test_kiosk_reload_mid_call_both_decode_each_others_video_again(
        server: LiveServer, browser: Any) -> None:
    """The kiosk page reloads during a call and rejoins the room with the same participant id and
    a new peer connection: within 10 s both pages decode each other's video again."""

    kiosk, staff = await ring(server, browser)
    await staff.get_by_test_id("accept-call").click()
    await wait_media(staff, frames=1)
    # Reload early: Chromium still probes the bandwidth with RTX padding, so the server hears the
    # staff's video on its RTX SSRC too when the reloaded kiosk needs a keyframe of it. A PLI
    # naming that SSRC is ignored, and the kiosk got the staff's audio but never their video.
    await kiosk.reload()
    staff_before = await inbound_frames(staff)
    # The reloaded kiosk has a new page, so its counts start from zero.
    kiosk_after = await wait_media(kiosk, frames=30, timeout=10.0)
    assert kiosk_after["pcs"] == 1
    staff_after = await wait_media(staff, frames=staff_before["framesDecoded"] + 30,
                                    timeout=10.0)
    assert staff_after["audioPackets"] > staff_before["audioPackets"]


async def test_first_staff_member_declines_and_a_colleague_answers(
        server: LiveServer, browser: Any, store: Any) -> None:
    """Two staff of 税务 available; the one rung first declines, the other is rung and answers,
    and the applicant is connected to them."""
    from playwright.async_api import expect

    from signaling.accounts import hash_password

    await Accounts(store.redis, AccountPolicy()).put(
        "tax02", display_name="税务坐席02", role="staff", departments=("tax",),
        password_hash=hash_password("demo12345"))
    first = await new_page(browser)
    second = await new_page(browser)
    for page, username in ((first, "tax01"), (second, "tax02")):
        await login(page, f"{server.url}/staff", username)
        await page.get_by_test_id("presence-available").click()
        await expect(page.get_by_test_id("presence-available")).to_have_attribute(
            "aria-pressed", "true")
        await asyncio.sleep(0.05)   # tax01 has been idle longest, so is rung first
    kiosk = await new_page(browser)
    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()

    await expect(first.get_by_test_id("incoming-call")).to_be_visible(timeout=10_000)
    await expect(second.get_by_test_id("incoming-call")).to_be_hidden()
    await first.get_by_test_id("decline-call").click()
    await expect(first.get_by_test_id("incoming-call")).to_be_hidden()
    await expect(second.get_by_test_id("incoming-call")).to_be_visible(timeout=10_000)
    await second.get_by_test_id("accept-call").click()
    await wait_media(kiosk, frames=10)
    await wait_media(second, frames=10)
    await expect(kiosk.get_by_test_id("call-peer")).to_contain_text("税务坐席02")
    # The one who declined stays available for the next applicant.
    await expect(first.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")


async def test_the_desk_lists_call_back_requests_and_marks_them_done(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    desk = await new_page(browser)
    await login(desk, f"{server.url}/staff", "estate01")
    await expect(desk.get_by_test_id("callbacks-empty")).to_be_visible()
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    try:
        answer = await kiosk.request("callback:request", {
            "department": "estate", "name": "李四", "phone": "13900000000", "note": "过户材料",
            "consent": True})
    finally:
        await kiosk.close()
    item = desk.get_by_test_id("callback-item")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-callback-id", answer["callback_id"])
    await expect(item).to_contain_text("李四")
    await expect(item).to_contain_text("13900000000")
    await expect(item).to_contain_text("过户材料")
    await expect(desk.get_by_test_id("callback-count")).to_have_text("1")
    await expect(desk.get_by_test_id("callbacks-empty")).to_be_hidden()
    await item.get_by_test_id("callback-done").click()
    await expect(item).to_have_count(0)
    await expect(desk.get_by_test_id("callback-count")).to_be_hidden()
    await expect(desk.get_by_test_id("callbacks-empty")).to_be_visible()
    assert await server.app[STORE].callbacks(("estate",)) == []
    await desk.context.close()
