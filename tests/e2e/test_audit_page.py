"""The audit page in real Chromium: an admin signs in and is refused the audit (三权分立); the
auditor sees the admin's sign-in, filters the log, downloads the CSV and checks the chain, which
names the entry someone deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from recordings.audit import AUDIT
from tests.support.audit import audit_rows
from tests.support.browser import login
from tests.support.pages import new_page
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def test_an_admin_is_refused_and_the_auditor_reads_filters_exports_and_verifies(
        server: LiveServer, browser: Any, redis_client: aioredis.Redis, tmp_path: Path) -> None:
    from playwright.async_api import expect

    admin = await new_page(browser)
    await login(admin, f"{server.url}/audit", "admin")
    # Signed in (the header names them), but the page shows a refusal, not the log.
    await expect(admin.get_by_test_id("audit-forbidden")).to_contain_text("只有安全审计员")
    await expect(admin.get_by_test_id("user-name")).to_be_visible()
    await expect(admin.get_by_test_id("audit-body")).to_be_hidden()
    assert await admin.get_by_test_id("audit-row").count() == 0

    page = await new_page(browser)
    await login(page, f"{server.url}/audit", "auditor")
    admin_login = page.locator("[data-testid=audit-row][data-action=login][data-who=admin]")
    await expect(admin_login).to_have_count(1)
    await expect(admin_login).to_contain_text("登录")
    await expect(admin_login).to_contain_text("127.0.0.1")
    # The auditor's own sign-in and read are there too.
    reads = page.locator("[data-testid=audit-row][data-action=audit_read][data-who=auditor]")
    await expect(reads).not_to_have_count(0)

    # Filter by who: only the admin's entries.
    await page.get_by_test_id("audit-filter-who").fill("admin")
    await page.get_by_test_id("audit-filter-apply").click()
    await expect(page.locator("[data-testid=audit-row]:not([data-who=admin])")).to_have_count(0)
    await expect(page.get_by_test_id("audit-row")).to_have_count(1)
    assert "who=admin" in (await page.get_by_test_id("audit-export").get_attribute("href") or "")

    # The CSV with the same filter.
    async with page.expect_download() as info:
        await page.get_by_test_id("audit-export").click()
    download = await info.value
    target = tmp_path / "audit.csv"
    await download.save_as(target)
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid,seq,time,epoch,who,action,target")
    assert [line.split(",")[4] for line in data.decode("utf-8-sig").splitlines()[1:]] == ["admin"]

    # The chain check: intact, then the admin's sign-in deleted and named.
    await page.get_by_test_id("audit-verify").click()
    result = page.get_by_test_id("audit-verify-result")
    await expect(result).to_contain_text("日志链完整")
    await expect(result).to_have_attribute("data-ok", "true")
    rows = await audit_rows(redis_client)
    deleted = next(n for n, (_, f) in enumerate(rows) if f["who"] == "admin")
    await redis_client.xdel(AUDIT, rows[deleted][0])
    await page.get_by_test_id("audit-verify").click()
    await expect(result).to_have_attribute("data-ok", "false")
    await expect(result).to_contain_text("记录被删除")
    await expect(result).to_contain_text(f"记录 {rows[deleted + 1][0]}")
    await expect(result).to_contain_text(f"序号 {rows[deleted + 1][1]['seq']}")
