"""HTTP helpers for tests against a live server: a cookie-keeping client session and logins."""

from __future__ import annotations

import aiohttp

from server.seed import DEMO_PASSWORD


def client_session() -> aiohttp.ClientSession:
    # Cookies for an IP address (127.0.0.1) are kept only by an "unsafe" jar.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(session: aiohttp.ClientSession, base: str, username: str,
                password: str = DEMO_PASSWORD) -> aiohttp.ClientResponse:
    return await session.post(f"{base}/api/login",
                              json={"username": username, "password": password})


async def logged_in(session: aiohttp.ClientSession, base: str, username: str) -> None:
    """Log ``session`` in as a demo account; the login must succeed."""
    response = await login(session, base, username)
    assert response.status == 200, await response.text()
