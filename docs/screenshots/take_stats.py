"""Take the statistics screenshot: the real service on a Redis holding three months of synthetic
history (bench/stats.py's generator, folded through the consumer's path), the supervisor's
statistics section by week, saved as docs/screenshots/supervisor-stats.png.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python docs/screenshots/take_stats.py'
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

from bench.stats import ZONE, generate  # noqa: E402
from server.config import Config  # noqa: E402
from server.redis_server import EmbeddedRedis  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, login  # noqa: E402
from tests.support.server import start_server  # noqa: E402

OUT = Path(__file__).resolve().parent / "supervisor-stats.png"


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        redis_server = EmbeddedRedis(Path(data) / "redis")
        (Path(data) / "redis").mkdir()
        await redis_server.start()
        try:
            client = aioredis.from_url(redis_server.url, decode_responses=True)
            last = dt.datetime.now(ZONE).date() - dt.timedelta(days=1)
            first = last - dt.timedelta(days=90)
            await generate(client, first, last, per_day=600)
            await client.aclose()
            live = await start_server(Config(data_dir=Path(data) / "data", demo=True,
                                             redis_url=redis_server.url))
            try:
                await shoot(live.url, first, last)
            finally:
                await live.runner.cleanup()
        finally:
            await redis_server.stop()


async def shoot(url: str, first: dt.date, last: dt.date) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})
                      ).new_page()
        await login(page, url + "/supervisor", "supervisor")
        section = page.get_by_test_id("stats")
        await section.wait_for()
        await page.get_by_test_id("stats-from").fill(first.isoformat())
        await page.get_by_test_id("stats-to").fill(last.isoformat())
        await page.get_by_test_id("stats-group").select_option("week")
        await page.get_by_test_id("stats-apply").click()
        await page.wait_for_timeout(1500)
        await section.screenshot(path=str(OUT))
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
