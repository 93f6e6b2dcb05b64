"""The real service (create_app) on a free loopback port, for tests and their helpers."""

from __future__ import annotations

import socket
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
    # The port is taken first: the app's default public origins (http://127.0.0.1:<port>, which
    # pages and sockets must come from) name it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    try:
        app = create_app(replace(config, port=port))
    except BaseException:
        sock.close()
        raise
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    return LiveServer(app, runner, port)
