"""Signing in as a person would, in a real browser: a new supervisor must change the temporary
password and set up the second factor (codes computed with pyotp, as an authenticator app would),
then signs in with password and code; five wrong passwords lock an account and the page says so."""

from __future__ import annotations

import time
from typing import Any

import pyotp

from server.keys import ACCOUNTS
from tests.support.browser import submit_login
from tests.support.pages import new_page
from tests.support.server import LiveServer

NEW_PASSWORD = "Hall-Review-2026"


async def test_a_new_supervisor_changes_the_password_enrols_totp_and_signs_in_with_a_code(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    _, temporary = await server.app[ACCOUNTS].create(
        "liuyang", display_name="刘洋", role="supervisor", departments=("tax",))
    page = await new_page(browser)
    await page.goto(f"{server.url}/supervisor")
    await submit_login(page, "liuyang", temporary)

    # First the password: a weak one is refused with the rule, a good one accepted.
    await expect(page.get_by_test_id("password-change-form")).to_be_visible()
    await page.get_by_test_id("password-current").fill(temporary)
    await page.get_by_test_id("password-new").fill("short")
    await page.get_by_test_id("password-confirm").fill("short")
    await page.get_by_test_id("password-change-submit").click()
    await expect(page.get_by_test_id("password-error")).to_contain_text("至少 10 位")
    await page.get_by_test_id("password-new").fill(NEW_PASSWORD)
    await page.get_by_test_id("password-confirm").fill(NEW_PASSWORD)
    await page.get_by_test_id("password-change-submit").click()

    # Then the second factor: the QR code and the key as text; a wrong code is refused.
    await expect(page.get_by_test_id("totp-enroll-form")).to_be_visible()
    assert (await page.get_by_test_id("totp-enroll-qr").get_attribute("src") or "").startswith(
        "data:image/svg+xml;base64,")
    secret = (await page.get_by_test_id("totp-enroll-secret").inner_text()).strip()
    totp = pyotp.TOTP(secret)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    await page.get_by_test_id("totp-enroll-code").fill(wrong)
    await page.get_by_test_id("totp-enroll-submit").click()
    await expect(page.get_by_test_id("totp-enroll-error")).to_be_visible()
    await page.get_by_test_id("totp-enroll-code").fill(totp.now())
    await page.get_by_test_id("totp-enroll-submit").click()
    codes = page.get_by_test_id("recovery-codes").locator("li")
    await expect(codes).to_have_count(10)
    await page.get_by_test_id("recovery-continue").click()
    await expect(page.get_by_test_id("wallboard")).to_be_visible()
    await expect(page.get_by_test_id("user-name")).to_have_text("刘洋")

    # Signed out and in again: the password alone is not enough, the code is asked for.
    await page.get_by_test_id("logout").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await submit_login(page, "liuyang", NEW_PASSWORD)
    await expect(page.get_by_test_id("login-totp")).to_be_visible()
    await expect(page.get_by_test_id("login-error")).to_contain_text("验证码")
    # The code of the step the enrolment used is spent: the next step's code (the server allows
    # one step of clock drift) signs in.
    await page.get_by_test_id("login-password").fill(NEW_PASSWORD)
    await page.get_by_test_id("login-totp").fill(totp.at(time.time() + 30))
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("wallboard")).to_be_visible()
    user = await server.app[ACCOUNTS].user("liuyang")
    assert user is not None and user.totp_enrolled and not user.must_change


async def test_five_wrong_passwords_lock_the_account_and_the_page_says_for_how_long(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    page = await new_page(browser)
    await page.goto(f"{server.url}/staff")
    for attempt in range(4):
        await submit_login(page, "tax01", f"wrong-{attempt}")
        # The page empties the password field once the answer is in.
        await expect(page.get_by_test_id("login-password")).to_have_value("")
        await expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")
    await submit_login(page, "tax01", "wrong-5")
    await expect(page.get_by_test_id("login-error")).to_contain_text(
        "账号已被锁定，请 15 分钟后再试")
    # Locked: the right password does not open it either.
    await submit_login(page, "tax01", "demo12345")
    await expect(page.get_by_test_id("login-error")).to_contain_text("已被锁定")
    await expect(page.get_by_test_id("presence-available")).to_be_hidden()
    # An admin unlocks it; then the right password works.
    await server.app[ACCOUNTS].unlock("tax01")
    await submit_login(page, "tax01", "demo12345")
    await expect(page.get_by_test_id("presence-available")).to_be_visible()
