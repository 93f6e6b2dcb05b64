"""The matter catalogue in a real browser: an admin lists a department's matters on /admin,
creates one with two materials (the page checks the form first, in Chinese), edits and deletes
matters; the kiosk's department search finds the department by the new matter's name at once,
and no longer after the matter is deleted."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from recordings.audit import AUDIT
from signaling.matters import Matter
from tests.support.browser import login
from tests.support.pages import new_page
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

NAME = "跨区域涉税事项报告"


async def test_an_admin_creates_a_matter_with_two_materials_and_the_kiosk_finds_it(
        server: LiveServer, browser: Any, redis_client: aioredis.Redis) -> None:
    from playwright.async_api import expect

    admin = await new_page(browser)
    confirmations: list[str] = []

    async def confirm(dialog: Any) -> None:  # deleting asks first
        confirmations.append(dialog.message)
        await dialog.accept()

    admin.on("dialog", confirm)
    await login(admin, f"{server.url}/admin", "admin")
    section = admin.get_by_test_id("matters")
    rows = section.get_by_test_id("matter-row")
    # The first department (estate, by id) is listed; the demo catalogue has its matters.
    await expect(admin.get_by_test_id("matter-department")).to_have_value("estate")
    await expect(rows.first).to_contain_text("二手房转移登记")
    # Interpreter pools have no matters: they are not among the choices.
    choices = await admin.get_by_test_id("matter-department").locator("option").evaluate_all(
        "options => options.map(o => o.value)")
    assert "tax" in choices and not [c for c in choices if c.startswith("interp-")], choices
    await admin.get_by_test_id("matter-department").select_option("tax")
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_contain_text("增值税发票申领")

    await admin.get_by_test_id("matter-new").click()
    await expect(admin.get_by_test_id("matter-id")).to_have_value("tax-")
    await admin.get_by_test_id("matter-save").click()
    await expect(admin.get_by_test_id("matter-error")).to_have_text(
        "事项编号应以小写字母开头，由小写字母、数字和单个 - 连接而成，不以 - 结尾（最多 64 个）。")
    await admin.get_by_test_id("matter-id").fill("tax-cross-region")
    await admin.get_by_test_id("matter-save").click()
    await expect(admin.get_by_test_id("matter-error")).to_have_text("请填写事项名称。")
    await admin.get_by_test_id("matter-name").fill(NAME)
    await admin.get_by_test_id("matter-fee").fill("不收费")
    await admin.get_by_test_id("matter-time-limit").fill("即时办结")
    await admin.get_by_test_id("matter-legal-basis").fill(
        "《国家税务总局关于创新跨区域涉税事项报验管理制度的通知》")
    await admin.get_by_test_id("matter-online").check()

    materials = admin.get_by_test_id("matter-material-row")
    for _ in range(3):
        await admin.get_by_test_id("matter-material-add").click()
    await expect(materials).to_have_count(3)
    await admin.get_by_test_id("matter-save").click()
    await expect(admin.get_by_test_id("matter-error")).to_have_text(
        "请填写第 1 项材料的名称，或删除这一行。")
    await materials.nth(0).get_by_test_id("matter-material-name").fill("跨区域涉税事项报告表")
    await materials.nth(0).get_by_test_id("matter-material-count").fill("2")
    await materials.nth(0).get_by_test_id("matter-material-notes").fill("加盖公章")
    await materials.nth(1).get_by_test_id("matter-material-name").fill("外出经营合同")
    await materials.nth(1).get_by_test_id("matter-material-form").select_option("copy")
    await materials.nth(2).get_by_test_id("matter-material-remove").click()
    await expect(materials).to_have_count(2)
    await admin.get_by_test_id("matter-save").click()

    await expect(admin.get_by_test_id("matter-saved")).to_be_visible()
    await expect(admin.get_by_test_id("matter-form")).to_be_hidden()
    await expect(rows).to_have_count(4)
    row = rows.filter(has_text=NAME)
    await expect(row).to_have_attribute("data-matter-id", "tax-cross-region")
    await expect(row.get_by_test_id("matter-materials-cell")).to_have_text(
        "跨区域涉税事项报告表、外出经营合同")
    await expect(row.get_by_test_id("matter-online-cell")).to_have_text("可网办")

    # What was saved, as the API gives it to anyone.
    response = await admin.request.get(f"{server.url}/api/matters/tax-cross-region")
    matter = Matter.from_dict((await response.json())["matter"])
    assert [(m.name, m.form, m.count, m.notes) for m in matter.materials] == [
        ("跨区域涉税事项报告表", "original", 2, "加盖公章"), ("外出经营合同", "copy", 1, "")]
    assert (matter.department, matter.fee, matter.time_limit, matter.online) == \
        ("tax", "不收费", "即时办结", True)

    # The kiosk's search finds the department by the new matter's name.
    kiosk = await new_page(browser)
    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("dept-search").fill("涉税事项")
    await expect(kiosk.get_by_test_id("department-list").locator("button")).to_have_count(1)
    await expect(kiosk.get_by_test_id("dept-tax")).to_contain_text(NAME)

    # Editing: a material is dropped and the change is saved in place.
    await row.get_by_test_id("matter-edit").click()
    await expect(admin.get_by_test_id("matter-id")).to_have_js_property("readOnly", True)
    await expect(materials).to_have_count(2)
    await materials.nth(1).get_by_test_id("matter-material-remove").click()
    await admin.get_by_test_id("matter-fee").fill("每份 5 元")
    await admin.get_by_test_id("matter-save").click()
    await expect(row.get_by_test_id("matter-materials-cell")).to_have_text("跨区域涉税事项报告表")
    await expect(row).to_contain_text("每份 5 元")

    # A material listed twice is refused before anything is sent.
    await row.get_by_test_id("matter-edit").click()
    await admin.get_by_test_id("matter-material-add").click()
    await materials.nth(1).get_by_test_id("matter-material-name").fill("跨区域涉税事项报告表")
    await admin.get_by_test_id("matter-save").click()
    await expect(admin.get_by_test_id("matter-error")).to_have_text(
        "材料“跨区域涉税事项报告表”重复了。")
    await admin.get_by_test_id("matter-cancel").click()

    # Deleted: gone from the list and from the kiosk's search.
    await row.get_by_test_id("matter-delete").click()
    await expect(rows).to_have_count(3)
    assert confirmations and NAME in confirmations[0]
    await kiosk.reload()
    await kiosk.get_by_test_id("dept-search").fill("涉税事项")
    await expect(kiosk.get_by_test_id("dept-search-empty")).to_be_visible()
    actions = [e["action"] for e in await stream_entries(redis_client, AUDIT)]
    assert actions.count("matter_save") == 2 and actions.count("matter_delete") == 1
