"""The real service (create_app) on a free loopback port, for tests and their helpers."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from server.app import create_app
from server.config import Config


class LiveServer:
    def __init__(self, app: web.Application, runner: web.AppRunner, port: int) -> None:
        self.app = app
        self.runner = runner
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


async def start_server(config: Config) -> LiveServer:
    app = create_app(replace(config, port=8080))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return LiveServer(app, runner, port)
