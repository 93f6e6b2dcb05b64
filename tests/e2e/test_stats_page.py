"""The supervisor's statistics section in real Chromium: a consultation made and rated through
the real kiosk and desk, and a ticket the applicant cancels, show up in the table; every chart
is drawn on a canvas by Chart.js; the CSV link carries the filters."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from typing import Any

import pytest

from signaling.config import SignalingConfig
from tests.support.browser import login
from tests.support.pages import connected, new_page
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


async def test_the_stats_section_shows_real_consultations_in_charts_and_table(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    kiosk, _staff = await connected(server, browser)
    await kiosk.get_by_test_id("hangup").click()
    await kiosk.get_by_test_id("rating-5").click()
    await kiosk.get_by_test_id("rating-submit").click()
    await expect(kiosk.get_by_test_id("thanks-back")).to_be_visible()
    # A second applicant asks 市场监管 (nobody of it is signed in) and cancels: abandoned.
    other = await new_page(browser)
    await other.goto(server.url + "/")
    await other.get_by_test_id("dept-market").click()
    await other.get_by_test_id("consent-accept").check()
    await other.get_by_test_id("start-consult").click()
    await expect(other.get_by_test_id("queue-position")).to_be_visible()
    await other.get_by_test_id("cancel-consult").click()
    await expect(other.get_by_test_id("dept-market")).to_be_visible()

    supervisor = await new_page(browser)
    await login(supervisor, f"{server.url}/supervisor", "supervisor")
    section = supervisor.get_by_test_id("stats")
    await expect(section).to_be_visible(timeout=10_000)
    # The default range is the hall's last 30 days, in the hall's zone (the browser's is 16 h off).
    today = dt.datetime.now(zoneinfo.ZoneInfo(SignalingConfig.timezone)).date()
    await expect(supervisor.get_by_test_id("stats-to")).to_have_value(today.isoformat())
    await expect(supervisor.get_by_test_id("stats-from")).to_have_value(
        (today - dt.timedelta(days=29)).isoformat())
    total = supervisor.get_by_test_id("stats-total")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the consumer counts every 2 s
        counted = [await total.locator(f'[data-field="{field}"]').text_content()
                   for field in ("consultations", "abandoned")]
        if counted == ["2", "1"]:
            break
        await supervisor.get_by_test_id("stats-apply").click()
        await supervisor.wait_for_timeout(500)
    await expect(total.locator('[data-field="consultations"]')).to_have_text("2")
    await expect(total.locator('[data-field="answered"]')).to_have_text("1")
    await expect(total.locator('[data-field="abandoned"]')).to_have_text("1")
    await expect(total.locator('[data-field="rated"]')).to_have_text("1")
    await expect(total.locator('[data-field="satisfaction"]')).to_have_text("100.0%")
    await expect(supervisor.get_by_test_id("stats-row")).to_have_count(30)

    charts = supervisor.get_by_test_id("stats-chart")
    await expect(charts).to_have_count(5)
    for n in range(5):
        chart = charts.nth(n)
        await expect(chart).to_have_attribute("data-ready", "1")
        size = await chart.locator("canvas").evaluate(
            "(c) => [c.width, c.height, !!window.Chart.getChart(c)]")
        assert size[0] > 0 and size[1] > 0 and size[2], size

    # Only 税务: its one consultation; the CSV link follows the filters.
    # The filter offers the departments applicants choose, not the interpreter pools.
    choices = await supervisor.get_by_test_id("stats-department").locator("option").evaluate_all(
        "options => options.map(o => o.value)")
    assert "tax" in choices and not [c for c in choices if c.startswith("interp-")], choices
    await supervisor.get_by_test_id("stats-department").select_option("tax")
    await supervisor.get_by_test_id("stats-apply").click()
    await expect(total.locator('[data-field="consultations"]')).to_have_text("1")
    href = await supervisor.get_by_test_id("stats-csv").get_attribute("href")
    assert href is not None and href.startswith("/api/stats.csv?") and "department=tax" in href
    assert not await supervisor.get_by_test_id("stats-error").is_visible()


async def test_without_chart_js_the_table_still_shows(server: LiveServer, browser: Any) -> None:
    """Chart.js not installed (npm ci not run): the section says so and shows the table; the
    rest of the supervisor page (which imports stats.js) still works."""
    from playwright.async_api import expect

    supervisor = await new_page(browser)
    await supervisor.route("**/static/vendor/chart.js/**", lambda route: route.abort())
    await login(supervisor, f"{server.url}/supervisor", "supervisor")
    await expect(supervisor.get_by_test_id("stats-error")).to_be_visible(timeout=10_000)
    await expect(supervisor.get_by_test_id("stats-total")).to_be_visible()
    queues = supervisor.get_by_test_id("wallboard-queues-body").locator("tr")
    await expect(queues).not_to_have_count(0)
