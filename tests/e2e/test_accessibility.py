"""axe-core (WCAG 2.1 A/AA) on every page and state in real Chromium: the kiosk from the start
screen to the thank-you page, the call-back form and guide mode; the staff desk from sign-in to
wrap-up; the supervisor's wallboard, listening in, recordings, player, cases and statistics; the
admin's sections, the audit page, the read-only notice page and the sign-in steps. Any serious or
critical violation fails. And the staff desk answered by keyboard alone."""

from __future__ import annotations

from typing import Any

import pytest

from server.keys import ACCOUNTS
from server.seed import DEMO_PASSWORD
from signaling.departments import Department
from signaling.store import Store
from tests.support.axe import assert_accessible, describe
from tests.support.browser import login, submit_login
from tests.support.pages import connected, new_page
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


class AxeStates:
    """Runs axe on each state as the journey reaches it and fails once, at the end, naming every
    state with a serious or critical violation (so one run shows all of them)."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.states: list[str] = []

    async def check(self, page: Any, state: str) -> None:
        self.states.append(state)
        try:
            await assert_accessible(page, state)
        except AssertionError as failure:
            self.failures.append(str(failure))

    def finish(self) -> None:
        assert not self.failures, "\n\n".join(self.failures)


@pytest.fixture
def axe() -> AxeStates:
    return AxeStates()


async def test_the_kiosk_desk_and_supervisor_pass_axe_through_a_whole_consultation(
        server: LiveServer, browser: Any, axe: AxeStates) -> None:
    from playwright.async_api import expect

    # The kiosk before anyone is served: start, search results, no result, the guide's login,
    # the recording notice and the refusal.
    kiosk = await new_page(browser)
    await kiosk.goto(server.url + "/")
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()
    await axe.check(kiosk, "kiosk start")
    await kiosk.get_by_test_id("dept-search").fill("税")
    await expect(kiosk.get_by_test_id("dept-search-clear")).to_be_visible()
    await axe.check(kiosk, "kiosk search results")
    await kiosk.get_by_test_id("dept-search").fill("zzzz")
    await expect(kiosk.get_by_test_id("dept-search-empty")).to_be_visible()
    await axe.check(kiosk, "kiosk search, nothing found")
    await kiosk.get_by_test_id("dept-search-clear").click()
    await kiosk.get_by_test_id("guide-mode").click()
    await expect(kiosk.get_by_test_id("login-username")).to_be_visible()
    await axe.check(kiosk, "kiosk guide login")
    await kiosk.get_by_test_id("login-back").click()
    await kiosk.get_by_test_id("dept-tax").click()
    await expect(kiosk.get_by_test_id("consent-accept")).to_be_visible()
    await axe.check(kiosk, "kiosk recording notice")
    await kiosk.locator('[data-testid="interpreter-request"][data-skill="sign"]').click()
    await axe.check(kiosk, "kiosk recording notice, sign language asked for")
    await kiosk.locator('[data-testid="interpreter-request"][data-skill="sign"]').click()
    await kiosk.get_by_test_id("consent-decline").click()
    await expect(kiosk.get_by_test_id("decline-message")).to_be_visible()
    await axe.check(kiosk, "kiosk declined")
    await kiosk.get_by_test_id("decline-back").click()
    # Waiting with nobody at a desk.
    await kiosk.get_by_test_id("dept-market").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(kiosk.get_by_test_id("queue-eta")).not_to_be_empty()
    await axe.check(kiosk, "kiosk waiting, no staff")
    await kiosk.get_by_test_id("cancel-consult").click()
    await expect(kiosk.get_by_test_id("dept-market")).to_be_visible()
    # 关怀模式: the start screen and the notice in large type.
    await kiosk.get_by_test_id("care-mode").click()
    await expect(kiosk.get_by_test_id("care-mode")).to_have_attribute("aria-pressed", "true")
    await axe.check(kiosk, "kiosk start, care mode")
    await kiosk.get_by_test_id("dept-tax").click()
    await expect(kiosk.get_by_test_id("consent-accept")).to_be_visible()
    await axe.check(kiosk, "kiosk recording notice, care mode")
    await kiosk.context.close()

    # The staff desk's sign-in, idle desk; then a call: ringing, in the call with the notice panel.
    desk = await new_page(browser)
    await desk.goto(f"{server.url}/staff")
    await expect(desk.get_by_test_id("login-username")).to_be_visible()
    await axe.check(desk, "staff login")
    await submit_login(desk, "market01")
    await expect(desk.get_by_test_id("presence-available")).to_be_visible()
    await axe.check(desk, "staff desk idle")
    await desk.get_by_test_id("presence-away").click()
    await expect(desk.get_by_test_id("presence-away")).to_have_attribute("aria-pressed", "true")
    await axe.check(desk, "staff desk away")
    await desk.context.close()

    kiosk, staff = await connected(server, browser)
    await axe.check(kiosk, "kiosk in call")
    await expect(staff.get_by_test_id("checklist-panel")).to_be_visible(timeout=10_000)
    await staff.get_by_test_id("checklist-matter").select_option("tax-invoice")
    await staff.get_by_test_id("checklist-add").click()
    await expect(kiosk.get_by_test_id("checklist-view")).to_be_visible(timeout=5_000)
    await axe.check(staff, "staff in call with the notice panel")
    await axe.check(kiosk, "kiosk in call with the live notice")
    # A supervisor listens in from the wallboard.
    listener = await new_page(browser)
    await login(listener, f"{server.url}/supervisor", "supervisor")
    await listener.get_by_test_id("live-room-row").get_by_test_id("observe-start").click()
    await expect(listener.get_by_test_id("observe-panel")).to_be_visible()
    await axe.check(listener, "supervisor listening in")
    await listener.get_by_test_id("observe-stop").click()
    await listener.context.close()
    await staff.get_by_test_id("checklist-sign").click()
    await expect(staff.get_by_test_id("checklist-status")).to_be_visible()
    await staff.get_by_test_id("hangup").click()
    await expect(staff.get_by_test_id("wrap-up")).to_be_visible(timeout=10_000)
    await axe.check(staff, "staff wrap-up")
    await expect(kiosk.get_by_test_id("rating-1")).to_be_visible(timeout=10_000)
    await expect(kiosk.get_by_test_id("checklist-qr")).to_be_visible(timeout=10_000)
    await axe.check(kiosk, "kiosk rating with the sealed notice")
    url = str(await kiosk.get_by_test_id("checklist-qr").get_attribute("data-url"))
    await kiosk.get_by_test_id("rating-1").click()
    await kiosk.get_by_test_id("rating-submit").click()
    await expect(kiosk.get_by_test_id("thanks-back")).to_be_visible(timeout=10_000)
    await axe.check(kiosk, "kiosk thanks")

    # The read-only notice page on a phone.
    phone = await new_page(browser)
    await phone.set_viewport_size({"width": 390, "height": 844})
    await phone.goto(url)
    await expect(phone.get_by_test_id("checklist-signature-ok")).to_be_visible()
    await axe.check(phone, "notice page (phone)")
    await phone.context.close()

    # The supervisor: wallboard, recordings, the player, the 差评 case, the statistics.
    supervisor = await new_page(browser)
    await supervisor.goto(f"{server.url}/supervisor")
    await expect(supervisor.get_by_test_id("login-username")).to_be_visible()
    await axe.check(supervisor, "supervisor login")
    await submit_login(supervisor, "supervisor")
    await expect(supervisor.get_by_test_id("wallboard")).to_be_visible()
    await expect(supervisor.get_by_test_id("recording-row")).to_have_count(1, timeout=10_000)
    await expect(supervisor.get_by_test_id("case-row")).to_have_count(1, timeout=15_000)
    await axe.check(supervisor, "supervisor wallboard, recordings, cases, statistics")
    await supervisor.get_by_test_id("recording-play").click()
    await expect(supervisor.locator("[data-testid=recording-player] video")).to_have_count(2)
    await axe.check(supervisor, "supervisor player")
    await supervisor.get_by_test_id("case-row").get_by_test_id("case-open").click()
    await expect(supervisor.get_by_test_id("case-panel")).to_be_visible()
    await axe.check(supervisor, "supervisor case panel")
    axe.finish()


async def test_the_call_back_form_and_its_confirmation_pass_axe(
        server: LiveServer, store: Store, browser: Any, axe: AxeStates) -> None:
    from playwright.async_api import expect

    estate = await store.department("estate")
    assert estate is not None
    await store.put_department(Department.from_dict(
        {**estate.to_dict(), "closed_days": [], "hours": {"mon-sun": []}}))
    kiosk = await new_page(browser)
    await kiosk.goto(server.url + "/")
    await expect(kiosk.get_by_test_id("dept-closed-estate")).to_be_visible()
    await axe.check(kiosk, "kiosk start with a closed department")
    await kiosk.get_by_test_id("dept-estate").click()
    await expect(kiosk.get_by_test_id("callback-form")).to_be_visible()
    await axe.check(kiosk, "kiosk call-back form")
    await kiosk.get_by_test_id("callback-submit").click()
    await expect(kiosk.get_by_test_id("callback-error")).to_be_visible()
    await axe.check(kiosk, "kiosk call-back form with its error")
    await kiosk.get_by_test_id("callback-name").fill("张三")
    await kiosk.get_by_test_id("callback-phone").fill("13812345678")
    await kiosk.get_by_test_id("callback-consent").check()
    await kiosk.get_by_test_id("callback-submit").click()
    await expect(kiosk.get_by_test_id("callback-done")).to_be_visible()
    await axe.check(kiosk, "kiosk call-back confirmation")
    await kiosk.get_by_test_id("callback-done-back").click()

    # A hall guide on the kiosk: the guide bar, and the priority lane on the notice.
    await kiosk.get_by_test_id("guide-mode").click()
    await submit_login(kiosk, "guide01")
    await expect(kiosk.get_by_test_id("guide-bar")).to_be_visible()
    await axe.check(kiosk, "kiosk in guide mode")
    await kiosk.get_by_test_id("dept-tax").click()
    await expect(kiosk.get_by_test_id("priority-row")).to_be_visible()
    await axe.check(kiosk, "kiosk notice with the priority lane")

    # The desk that calls back sees the request.
    desk = await new_page(browser)
    await login(desk, f"{server.url}/staff", "estate01")
    await expect(desk.get_by_test_id("callback-item")).to_have_count(1)
    await axe.check(desk, "staff desk with a call-back request")
    axe.finish()


async def test_admin_audit_and_the_sign_in_steps_pass_axe(
        server: LiveServer, browser: Any, axe: AxeStates) -> None:
    from playwright.async_api import expect

    admin = await new_page(browser)
    await admin.goto(f"{server.url}/admin")
    await expect(admin.get_by_test_id("login-username")).to_be_visible()
    await axe.check(admin, "admin login")
    await submit_login(admin, "admin", "wrong-password")
    await expect(admin.get_by_test_id("login-error")).to_be_visible()
    await axe.check(admin, "admin login with its error")
    await submit_login(admin, "admin")
    await expect(admin.get_by_test_id("account-list")).to_be_visible()
    await expect(admin.get_by_test_id("admin-department-list").locator("button").first) \
        .to_be_visible()
    await axe.check(admin, "admin sections")
    await admin.get_by_test_id("admin-department-list").locator("button").first.click()
    await expect(admin.get_by_test_id("department-json")).to_be_visible()
    for form in ("account", "device", "matter"):
        await admin.get_by_test_id(f"{form}-new").click()
        await expect(admin.get_by_test_id(f"{form}-form")).to_be_visible()
    await axe.check(admin, "admin with the department editor and the new account/device/matter"
                    " forms open")
    await admin.context.close()

    auditor = await new_page(browser)
    await login(auditor, f"{server.url}/audit", "auditor")
    await expect(auditor.get_by_test_id("audit-row").first).to_be_visible()
    await axe.check(auditor, "audit page")
    await auditor.get_by_test_id("audit-verify").click()
    await expect(auditor.get_by_test_id("audit-verify-result")).to_be_visible()
    await axe.check(auditor, "audit page, chain verified")
    await auditor.context.close()

    # A new account: the password change, then the TOTP enrolment.
    _, temporary = await server.app[ACCOUNTS].create(
        "liuyang", display_name="刘洋", role="supervisor", departments=("tax",))
    page = await new_page(browser)
    await page.goto(f"{server.url}/supervisor")
    await submit_login(page, "liuyang", temporary)
    await expect(page.get_by_test_id("password-change-form")).to_be_visible()
    await axe.check(page, "password change")
    await page.get_by_test_id("password-current").fill(temporary)
    await page.get_by_test_id("password-new").fill("短一点")
    await page.get_by_test_id("password-confirm").fill("短一点")
    await page.get_by_test_id("password-change-submit").click()
    await expect(page.get_by_test_id("password-error")).to_be_visible()
    await axe.check(page, "password change refused")
    await page.get_by_test_id("password-new").fill("a-long-new-pass-2026")
    await page.get_by_test_id("password-confirm").fill("a-long-new-pass-2026")
    await page.get_by_test_id("password-change-submit").click()
    await expect(page.get_by_test_id("totp-enroll-form")).to_be_visible()
    await axe.check(page, "TOTP enrolment")
    await page.context.close()
    axe.finish()


def test_describe_names_rule_impact_help_and_targets() -> None:
    text = describe([{"id": "color-contrast", "impact": "serious", "help": "Contrast",
                      "helpUrl": "https://dequeuniversity.com/rules/axe/4.10/color-contrast",
                      "nodes": [{"target": ["[data-testid=guide-mode]"],
                                 "summary": "Fix any of the following:\n  low contrast"}]}])
    assert "color-contrast (serious): Contrast" in text
    assert "[data-testid=guide-mode]" in text and "low contrast" in text


async def test_a_desk_signs_in_goes_available_and_answers_by_keyboard_alone(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    desk = await new_page(browser)
    await desk.goto(f"{server.url}/staff")
    await desk.get_by_test_id("login-username").focus()
    await desk.keyboard.type("tax01")
    await desk.keyboard.press("Tab")
    await desk.keyboard.type(DEMO_PASSWORD)
    await desk.keyboard.press("Enter")
    await expect(desk.get_by_test_id("presence-available")).to_be_visible()
    for _ in range(20):
        if await desk.evaluate("document.activeElement.dataset.testid") == "presence-available":
            break
        await desk.keyboard.press("Tab")
    assert await desk.evaluate("document.activeElement.matches(':focus-visible')")
    await desk.keyboard.press("Enter")
    await expect(desk.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")

    # A ticket rings the desk: the alert dialog takes the focus, Enter answers.
    kiosk = await new_page(browser)
    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(desk.get_by_test_id("incoming-call")).to_be_visible(timeout=10_000)
    await expect(desk.get_by_test_id("accept-call")).to_be_focused()
    await desk.keyboard.press("Enter")
    await expect(desk.get_by_test_id("hangup")).to_be_visible(timeout=10_000)
    await expect(kiosk.get_by_test_id("call-status")).to_have_attribute("role", "status")
