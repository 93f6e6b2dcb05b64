"""What the take_*.py screenshot scripts share: the real service on a private Redis with demo
data, one headless Chromium with the tests' flags, and where the pictures go."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402

from server.config import Config  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.server import LiveServer, start_server  # noqa: E402

OUT = Path(__file__).resolve().parent
KIOSK = {"width": 1080, "height": 1350}


async def with_service(walk: Callable[[LiveServer, Any], Awaitable[None]],
                       **settings: Any) -> None:
    """Start the demo service (with `settings` changed) and Chromium, and run `walk` on them."""
    with tempfile.TemporaryDirectory() as data:
        config = replace(Config(data_dir=Path(data), demo=True), **settings)
        live = await start_server(config)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                await walk(live, browser)
                await browser.close()
        finally:
            await live.runner.cleanup()
