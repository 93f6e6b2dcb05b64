"""The abuse limits as an applicant sees them in real Chromium: a refused ticket shows the
limit's Chinese message on the kiosk page, and a socket refused at connect shows why too. All the
pages come from 127.0.0.1, one client address."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from server.config import Config
from signaling.errors import CATALOGUE
from tests.support.pages import new_page
from tests.support.server import LiveServer


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, max_tickets_per_socket=1, max_tickets_per_address=1,
                   max_sockets_per_address=2)


async def take_ticket(page: Any, url: str) -> None:
    from playwright.async_api import expect

    await page.goto(url + "/")
    await expect(page.get_by_test_id("dept-tax")).to_have_text("税务")
    await page.get_by_test_id("dept-tax").click()
    await page.get_by_test_id("consent-accept").check()
    await page.get_by_test_id("start-consult").click()


async def test_the_kiosk_shows_why_a_ticket_or_a_connection_is_refused(
        server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    first = await new_page(browser)
    await take_ticket(first, server.url)
    await expect(first.get_by_test_id("ticket-number")).to_have_text("税A001")

    # A second kiosk page on the same address: its ticket is refused, and it says why.
    second = await new_page(browser)
    await take_ticket(second, server.url)
    banner = second.get_by_test_id("error-message")
    await expect(banner).to_be_visible()
    await expect(banner).to_have_text(
        CATALOGUE["limit.tickets_per_address"].zh.format(max=1))
    await expect(second.get_by_test_id("queue-position")).to_be_hidden()

    # A third page is one socket too many for the address: refused at connect, with the reason.
    third = await new_page(browser)
    await third.goto(server.url + "/")
    await expect(third.get_by_test_id("error-message")).to_have_text(
        CATALOGUE["limit.sockets_per_address"].zh)
