"""Staff desk sockets for tests: one signed in with an account's cookie, and the wait for the
server to close one (a session that ended)."""

from __future__ import annotations

import asyncio

import pytest

from server.seed import DEMO_PASSWORD
from signaling.client import SignalingClient, login_cookie
from tests.support.server import LiveServer


async def desk_socket(server: LiveServer, username: str = "tax01",
                      password: str = DEMO_PASSWORD) -> tuple[SignalingClient, str]:
    """A /staff socket signed in as ``username``, past its first state; and its cookie."""
    cookie = await login_cookie(server.url, username, password)
    client = await SignalingClient.connect(server.url, "/staff", cookie)
    await client.next("staff:state")
    return client, cookie


async def closed_by_server(client: SignalingClient, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if not client.sio.connected:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the server did not close the socket")
