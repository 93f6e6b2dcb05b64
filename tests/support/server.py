"""The real service (create_app) on a free loopback port, for tests and their helpers, and the
count of connections open to a port."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from server.app import create_app
from server.config import Config


class LiveServer:
    def __init__(self, app: web.Application, runner: web.AppRunner, port: int) -> None:
        self.app = app
        self.runner = runner
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


async def start_server(config: Config, port: int = 0) -> LiveServer:
    """On ``port`` (0: a free one)."""
    # The port is taken first: the app's default public origins (http://127.0.0.1:<port>, which
    # pages and sockets must come from) name it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
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


def established(port: int) -> int:
    """TCP connections in state ESTABLISHED whose local port is `port` (this network
    namespace's /proc/net/tcp and tcp6)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count
