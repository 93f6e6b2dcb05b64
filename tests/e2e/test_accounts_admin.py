"""Account administration in a real browser: an admin creates a staff account on /admin and reads
its one-time password; the new colleague signs in on /staff with it, must change it and lands on
the desk; the admin disables the account and the colleague's desk is signed out at once; enabled
again with a reset password, the next sign-in must change it again."""

from __future__ import annotations

import re
from typing import Any

from server.keys import ACCOUNTS
from tests.support.browser import login, submit_login
from tests.support.pages import new_page
from tests.support.server import LiveServer

NEW_PASSWORD = "Counter-Nine-2026"


async def test_an_admin_creates_a_staff_account_and_disabling_it_signs_the_desk_out(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    admin = await new_page(browser)
    confirmations: list[str] = []

    async def confirm(dialog: Any) -> None:  # disabling asks first
        confirmations.append(dialog.message)
        await dialog.accept()

    admin.on("dialog", confirm)
    await login(admin, f"{server.url}/admin", "admin")
    await expect(admin.get_by_test_id("account-row").first).to_be_visible()

    await admin.get_by_test_id("account-new").click()
    await admin.get_by_test_id("account-username").fill("wangfang")
    await admin.get_by_test_id("account-display-name").fill("王芳")
    role = admin.get_by_test_id("account-role")
    assert await role.locator("option").all_inner_texts() == [
        "系统管理员", "安全审计员", "督查", "坐席", "导服"]
    await role.select_option("staff")
    # Staff answer a department's queue: none chosen is refused, in Chinese.
    await admin.get_by_test_id("account-create").click()
    await expect(admin.get_by_test_id("account-error")).to_have_text("坐席至少属于一个部门。")
    departments = admin.get_by_test_id("account-departments")
    await departments.get_by_label("税务").check()
    await admin.get_by_test_id("account-create").click()
    await expect(admin.get_by_test_id("account-temp-password")).to_have_text(
        re.compile(r"^\S{10,}$"))
    temporary = (await admin.get_by_test_id("account-temp-password").inner_text()).strip()
    await expect(admin.get_by_test_id("account-temp-panel")).to_contain_text("只显示这一次")
    row = admin.locator('[data-testid="account-row"][data-username="wangfang"]')
    await expect(row).to_contain_text("王芳")
    await expect(row).to_contain_text("坐席")
    await expect(row).to_contain_text("税务")
    await expect(row).to_contain_text("待修改密码")

    # A username that is taken is refused with the server's message.
    await admin.get_by_test_id("account-new").click()
    await admin.get_by_test_id("account-username").fill("wangfang")
    await admin.get_by_test_id("account-display-name").fill("王芳二")
    await departments.get_by_label("税务").check()
    await admin.get_by_test_id("account-create").click()
    await expect(admin.get_by_test_id("account-error")).to_have_text("该用户名已被使用。")
    await admin.get_by_test_id("account-cancel").click()

    # The new colleague, in a browser of their own: the one-time password, then their own.
    staff = await new_page(browser)
    await staff.goto(f"{server.url}/staff")
    await submit_login(staff, "wangfang", temporary)
    await expect(staff.get_by_test_id("password-change-form")).to_be_visible()
    await staff.get_by_test_id("password-current").fill(temporary)
    await staff.get_by_test_id("password-new").fill(NEW_PASSWORD)
    await staff.get_by_test_id("password-confirm").fill(NEW_PASSWORD)
    await staff.get_by_test_id("password-change-submit").click()
    await expect(staff.get_by_test_id("presence-available")).to_be_visible()
    await expect(staff.get_by_test_id("user-name")).to_have_text("王芳")
    await staff.get_by_test_id("presence-available").click()
    await expect(staff.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")

    # The admin disables the account: the desk is signed out at once and says why.
    await admin.reload()
    await expect(row).to_contain_text("已启用")
    await row.get_by_test_id("account-disable").click()
    await expect(row).to_contain_text("已停用")
    await expect(row.get_by_test_id("account-disable")).to_have_text("启用")
    assert confirmations == ["停用账号 wangfang？其所有登录会立即失效。"]
    await expect(staff.get_by_test_id("login-form")).to_be_visible()
    await expect(staff.get_by_test_id("login-error")).to_contain_text("账号已被停用")
    await expect(staff.get_by_test_id("presence-available")).to_be_hidden()
    # And cannot sign in again.
    await submit_login(staff, "wangfang", NEW_PASSWORD)
    await expect(staff.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")
    user = await server.app[ACCOUNTS].user("wangfang")
    assert user is not None and user.disabled and not user.must_change

    # Enabled again with a new one-time password, shown once; the old password is gone.
    await row.get_by_test_id("account-disable").click()
    await expect(row).to_contain_text("已启用")
    await row.get_by_test_id("account-reset-password").click()
    await expect(admin.get_by_test_id("account-temp-panel")).to_contain_text(
        "账号 wangfang 的密码已重置")
    await expect(admin.get_by_test_id("account-temp-password")).not_to_have_text(temporary)
    reset = (await admin.get_by_test_id("account-temp-password").inner_text()).strip()
    await submit_login(staff, "wangfang", reset)
    await expect(staff.get_by_test_id("password-change-form")).to_be_visible()
    assert confirmations[-1] == "重置账号 wangfang 的密码？其所有登录会立即失效。"

    # The admin's own row cannot be disabled from the page.
    await expect(admin.locator('[data-testid="account-row"][data-username="admin"]')
                 .get_by_test_id("account-disable")).to_be_disabled()
