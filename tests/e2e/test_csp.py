"""Every page works in real Chromium under the Content-Security-Policy (no inline script or
style): a call between the kiosk and a staff desk with media both ways, the supervisor's
wallboard, the admin and audit pages, each signed in — and not one `securitypolicyviolation`
fires. The same listener does see a violation when a page tries inline script or style."""

from __future__ import annotations

from typing import Any

import pytest

from server.http.security import CONTENT_SECURITY_POLICY
from tests.support.browser import submit_login
from tests.support.pages import connected, new_page
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

# Added before any page script runs: every violation the page's document reports.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
                     source: e.sourceFile, line: e.lineNumber});
}, true);
"""


async def _no_violations(page: Any) -> None:
    violations = await page.evaluate("() => window.__csp")
    assert violations == [], (page.url, violations)


async def test_a_call_between_kiosk_and_desk_runs_under_the_csp(server: LiveServer,
                                                                browser: Any) -> None:
    kiosk, staff = await connected(server, browser, (RECORD_VIOLATIONS,))
    response = await kiosk.request.get(server.url + "/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for page in (kiosk, staff):
        await _no_violations(page)


async def test_supervisor_admin_and_audit_pages_run_under_the_csp(server: LiveServer,
                                                                  browser: Any) -> None:
    from playwright.async_api import expect

    page = await new_page(browser, (RECORD_VIOLATIONS,))
    await page.goto(f"{server.url}/supervisor")
    await expect(page.get_by_test_id("login-username")).to_be_visible()
    await submit_login(page, "supervisor")
    await expect(page.get_by_test_id("wallboard-queue-row").first).to_be_visible(
        timeout=10_000)
    await _no_violations(page)

    page = await new_page(browser, (RECORD_VIOLATIONS,))
    await page.goto(f"{server.url}/admin?lang=en")
    await expect(page.get_by_test_id("login-username")).to_be_visible()
    await submit_login(page, "admin")
    await expect(page.get_by_test_id("admin-dept-tax")).to_be_visible(timeout=10_000)
    await page.get_by_test_id("admin-dept-tax").click()
    await expect(page.get_by_test_id("department-json")).not_to_have_value("")
    await _no_violations(page)

    # The listener is not blind: inline script and a style attribute are refused and reported.
    await page.evaluate("""() => {
      const script = document.createElement('script');
      script.textContent = 'window.__ran = true';
      document.body.append(script);
      document.body.setAttribute('style', 'background: red');
    }""")
    await page.wait_for_function("() => window.__csp.length >= 2")
    directives = {v["directive"] for v in await page.evaluate("() => window.__csp")}
    assert directives == {"script-src-elem", "style-src-attr"}
    assert await page.evaluate("() => window.__ran") is None

    page = await new_page(browser, (RECORD_VIOLATIONS,))
    await page.goto(f"{server.url}/audit")
    await submit_login(page, "auditor")
    await expect(page.get_by_test_id("audit-row").first).to_be_visible(timeout=10_000)
    await page.get_by_test_id("audit-verify").click()
    await expect(page.get_by_test_id("audit-verify-result")).to_have_attribute("data-ok", "true")
    await _no_violations(page)
