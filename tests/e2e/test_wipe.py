"""The kiosk's privacy wipe in real Chromium (web/static/js/wipe.js), with the idle time shortened
through the server's kiosk_idle_seconds: a visible countdown that a touch cancels, then nothing of
the person is left (storage, the cookies the page set, form fields, DOM text, camera and
microphone tracks), the registered kiosk's device cookie stays, and a call is never wiped."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from server.config import Config
from signaling.departments import Department
from signaling.devices import DEVICE_COOKIE
from signaling.store import Store
from tests.support.axe import assert_accessible
from tests.support.kiosks import enrol
from tests.support.pages import connected, new_page
from tests.support.server import LiveServer

IDLE_S = 4
WARNING_S = 2

# Test instrumentation: every track getUserMedia hands the page, to check they all ended.
TRACK_MEDIA = """
window.__tracks = [];
const originalGUM = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  const stream = await originalGUM(constraints);
  window.__tracks.push(...stream.getTracks());
  return stream;
};
"""

LEFT_BEHIND = """
() => ({
  session: sessionStorage.length, local: localStorage.length, cookie: document.cookie,
  text: document.body.innerText,
  fields: [...document.querySelectorAll('input, textarea')]
    .filter((f) => f.type !== 'range') // the volume slider: always a value, nothing of a person
    .filter((f) => (f.type === 'checkbox' ? f.checked : f.value !== ''))
    .map((f) => f.dataset.testid),
  videos: [...document.querySelectorAll('video')].filter((v) => v.srcObject).length,
  tracks: (window.__tracks || []).map((tr) => tr.readyState),
})
"""


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, kiosk_idle_seconds=IDLE_S, kiosk_idle_warning_seconds=WARNING_S)


def test_the_idle_settings_are_checked() -> None:
    base = Config()
    assert (base.kiosk_idle_seconds, base.kiosk_idle_warning_seconds) == (60, 10)
    for idle, warning in ((1, 0), (60, 60), (60, 0), (4000, 10)):
        with pytest.raises(ValueError):
            replace(base, kiosk_idle_seconds=idle, kiosk_idle_warning_seconds=warning)


async def test_a_person_who_walks_away_from_the_call_back_form_leaves_nothing(
        server: LiveServer, store: Store, browser: Any) -> None:
    from playwright.async_api import expect

    estate = await store.department("estate")
    assert estate is not None
    await store.put_department(Department.from_dict(
        {**estate.to_dict(), "closed_days": [], "hours": {"mon-sun": []}}))
    device = await enrol(server)
    kiosk = await new_page(browser)
    await kiosk.goto(device["url"])
    await expect(kiosk.get_by_test_id("kiosk-device")).to_be_visible()
    await kiosk.get_by_test_id("dept-estate").click()
    await kiosk.get_by_test_id("callback-name").fill("李四光")
    await kiosk.get_by_test_id("callback-phone").fill("13912345678")
    await kiosk.evaluate("""() => {
      localStorage.setItem('draft', '13912345678');
      document.cookie = 'yz_lang=zh; path=/';
    }""")

    # The countdown shows in the last seconds; a touch cancels it.
    warning = kiosk.get_by_test_id("idle-warning")
    await expect(warning).to_be_visible(timeout=(IDLE_S + 2) * 1000)
    await expect(kiosk.get_by_test_id("idle-warning-text")).to_contain_text("秒后将清除本次信息")
    await kiosk.mouse.click(5, 300)
    await expect(warning).to_be_hidden()
    assert await kiosk.get_by_test_id("callback-phone").input_value() == "13912345678"

    # Untouched, the screen is wiped and the attract screen shows.
    await expect(warning).to_be_visible(timeout=(IDLE_S + 2) * 1000)
    await expect(kiosk.get_by_test_id("attract")).to_be_visible(timeout=(WARNING_S + 2) * 1000)
    left = await kiosk.evaluate(LEFT_BEHIND)
    assert (left["session"], left["local"], left["cookie"], left["fields"]) == (0, 0, "", [])
    await assert_accessible(kiosk, "kiosk attract screen")
    assert "13912345678" not in left["text"] and "李四光" not in left["text"]
    assert not await store.callbacks(("estate",))
    # The device cookie belongs to the screen: it stays.
    assert DEVICE_COOKIE in {c["name"] for c in await kiosk.context.cookies()}

    # Touching the attract screen starts afresh; no timer runs on the attract screen itself.
    await kiosk.get_by_test_id("attract").click()
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    await kiosk.context.close()


async def test_a_waiting_ticket_is_cancelled_and_its_number_wiped(
        server: LiveServer, store: Store, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk = await new_page(browser)
    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(kiosk.get_by_test_id("ticket-number")).to_have_text("税A001")
    auth = await kiosk.evaluate("JSON.parse(sessionStorage.getItem('yz_ticket'))")
    ticket_id = auth["ticket_id"]

    await expect(kiosk.get_by_test_id("attract")).to_be_visible(timeout=(IDLE_S + 3) * 1000)
    left = await kiosk.evaluate(LEFT_BEHIND)
    assert left["session"] == 0 and "税A001" not in left["text"]
    for _ in range(50):
        ticket = await store.ticket(ticket_id)
        if ticket is not None and ticket.status.value == "cancelled":
            break
        await asyncio.sleep(0.1)
    assert ticket is not None and ticket.status.value == "cancelled"
    await kiosk.context.close()


async def test_a_call_is_never_wiped_and_after_it_every_track_ends(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, staff = await connected(server, browser, init_scripts=(TRACK_MEDIA,))
    # Longer than the idle time without a touch: the call goes on.
    await asyncio.sleep(IDLE_S + 1)
    await expect(kiosk.get_by_test_id("idle-warning")).to_be_hidden()
    await expect(kiosk.get_by_test_id("hangup")).to_be_visible()
    await kiosk.get_by_test_id("chat-input").fill("我的电话 13700001111")
    await kiosk.get_by_test_id("chat-send").click()
    await expect(kiosk.get_by_test_id("chat-message")).to_have_count(1)

    await staff.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("rating-submit")).to_be_visible()
    # The applicant walks away from the rating screen.
    await expect(kiosk.get_by_test_id("attract")).to_be_visible(timeout=(IDLE_S + 3) * 1000)
    left = await kiosk.evaluate(LEFT_BEHIND)
    assert left["tracks"] and set(left["tracks"]) == {"ended"}, left["tracks"]
    assert left["videos"] == 0 and left["session"] == 0
    assert "13700001111" not in left["text"] and "税A001" not in left["text"]
    await kiosk.context.close()
    await staff.context.close()
