"""The HTTP and Socket.IO edge of the real app: foreign origins and non-JSON bodies are refused,
the security headers (CSP, HSTS over HTTPS) are on every answer, and the client address comes
from X-Forwarded-For only through a trusted proxy."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import socketio

from server.config import Config
from server.http.security import CONTENT_SECURITY_POLICY
from server.keys import ARCHIVE
from server.seed import DEMO_PASSWORD
from signaling.client import login_cookie
from signaling.errors import SignalError
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer, start_server

EVIL = "https://evil.example"
CREDENTIALS = {"username": "tax01", "password": DEMO_PASSWORD}


async def _refused_with(response: aiohttp.ClientResponse, name: str) -> bool:
    """Whether the answer is the catalogue's refusal ``name`` (its code, status and texts)."""
    error = SignalError(name)
    return response.status == error.status and await response.json() == error.to_dict()


async def test_a_json_post_from_a_foreign_origin_is_refused(server: LiveServer) -> None:
    async with client_session() as session:
        for origin in (EVIL, "null", "http://127.0.0.1:1", server.url + "/"):
            response = await session.post(f"{server.url}/api/login", json=CREDENTIALS,
                                          headers={"Origin": origin})
            assert await _refused_with(response, "forbidden.origin"), origin
            assert "yz_session" not in response.cookies
        # A browser that sends no Origin still says where the request came from.
        for site in ("cross-site", "same-site"):
            response = await session.post(f"{server.url}/api/login", json=CREDENTIALS,
                                          headers={"Sec-Fetch-Site": site})
            assert await _refused_with(response, "forbidden.origin"), site
        # Other methods too; reading is not a change and stays open.
        await logged_in(session, server.url, "admin")
        response = await session.put(f"{server.url}/api/admin/departments/tax", json={},
                                     headers={"Origin": EVIL})
        assert response.status == 403
        response = await session.get(f"{server.url}/api/admin/departments/tax",
                                     headers={"Origin": EVIL})
        assert response.status == 200


async def test_the_own_origin_and_non_browser_clients_are_allowed(server: LiveServer) -> None:
    for headers in ({"Origin": server.url}, {"Origin": server.url.replace("127.0.0.1",
                                                                          "localhost")},
                    {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
        async with client_session() as session:
            response = await session.post(f"{server.url}/api/login", json=CREDENTIALS,
                                          headers=headers)
            assert response.status == 200, headers


async def test_a_login_that_is_not_declared_json_is_refused(server: LiveServer) -> None:
    body = b'{"username": "tax01", "password": "demo12345"}'
    async with client_session() as session:
        # What a plain HTML form on another site can send without a preflight.
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", None):
            headers = {"Content-Type": content_type} if content_type else {}
            response = await session.post(f"{server.url}/api/login", data=body, headers=headers)
            assert await _refused_with(response, "invalid_payload.content_type"), content_type
            assert "yz_session" not in response.cookies
        response = await session.post(f"{server.url}/api/login", data=body,
                                      headers={"Content-Type": "application/json; charset=utf-8"})
        assert response.status == 200


async def test_a_desk_socket_from_a_foreign_origin_is_refused(server: LiveServer) -> None:
    cookie = await login_cookie(server.url, "tax01", DEMO_PASSWORD)

    async def connect(origin: str | None) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        headers = {"Cookie": cookie, **({"Origin": origin} if origin else {})}
        await client.connect(server.url, namespaces=["/staff"], headers=headers,
                             transports=["websocket"], wait_timeout=10)
        return client

    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(EVIL)
    # The same session from the service's own page, and from a client that sends no Origin.
    for origin in (server.url, None):
        client = await connect(origin)
        assert client.connected
        await client.disconnect()


async def test_a_raw_socketio_handshake_from_a_foreign_origin_is_refused(
        server: LiveServer) -> None:
    cookie = await login_cookie(server.url, "tax01", DEMO_PASSWORD)
    url = f"{server.url}/socket.io/?EIO=4&transport="
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url + "websocket", origin=EVIL, headers={"Cookie": cookie})
        assert refused.value.status == 400
        async with session.ws_connect(url + "websocket", origin=server.url,
                                      headers={"Cookie": cookie}) as ws:
            opened = await ws.receive_str(timeout=5)
            assert opened.startswith("0{")  # engine.io OPEN
        # The long-polling transport (the browser client's fallback) is checked the same way.
        async with session.get(url + "polling", headers={"Origin": EVIL, "Cookie": cookie}) \
                as response:
            assert response.status == 400
        async with session.get(url + "polling",
                               headers={"Origin": server.url, "Cookie": cookie}) as response:
            assert response.status == 200
            assert (await response.text()).startswith("0{")


async def _headers(url: str, extra: dict[str, str] | None = None) -> list[Any]:
    async with aiohttp.ClientSession() as session:
        out = []
        for path in ("/staff", "/api/departments", "/static/css/app.css", "/no-such-page",
                     "/api/nope"):
            async with session.get(url + path, headers=extra or {}) as response:
                out.append(response.headers)
        return out


async def test_every_answer_carries_the_csp_and_no_hsts_over_plain_http(
        server: LiveServer) -> None:
    for headers in await _headers(server.url, {"X-Forwarded-Proto": "https"}):
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self';" in CONTENT_SECURITY_POLICY
        assert headers["X-Frame-Options"] == "DENY"
        # The proxy header comes from a peer that is not a trusted proxy: not believed.
        assert "Strict-Transport-Security" not in headers


async def test_hsts_with_an_https_public_origin(config: Config) -> None:
    live = await start_server(replace(config, public_origins=("https://hall.example",)))
    try:
        for headers in await _headers(live.url):
            assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        # Only the configured origin is the service's own now.
        async with client_session() as session:
            response = await session.post(f"{live.url}/api/login", json=CREDENTIALS,
                                          headers={"Origin": live.url})
            assert response.status == 403
            response = await session.post(f"{live.url}/api/login", json=CREDENTIALS,
                                          headers={"Origin": "https://hall.example"})
            assert response.status == 200
    finally:
        await live.runner.cleanup()


async def _audited_remote(live: LiveServer, headers: dict[str, str]) -> str:
    async with client_session() as session:
        await logged_in(session, live.url, "supervisor")
        response = await session.get(f"{live.url}/api/recordings", headers=headers)
        assert response.status == 200
    entries = await live.app[ARCHIVE].audit.entries(time.time() - 60, time.time() + 60)
    latest = next(e for e in entries if e["action"] == "list")
    return latest["remote"]  # type: ignore[no-any-return]


async def test_behind_a_trusted_proxy_the_forwarded_client_and_scheme_are_believed(
        config: Config) -> None:
    forwarded = {"X-Forwarded-For": "6.6.6.6, 203.0.113.5", "X-Forwarded-Proto": "https"}
    live = await start_server(replace(config, trusted_proxies=("127.0.0.0/8",)))
    try:
        assert await _audited_remote(live, forwarded) == "203.0.113.5"
        assert await _audited_remote(live, {}) == "127.0.0.1"
        for headers in await _headers(live.url, forwarded):
            assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        for headers in await _headers(live.url):
            assert "Strict-Transport-Security" not in headers
    finally:
        await live.runner.cleanup()


async def test_without_a_trusted_proxy_forwarded_headers_are_ignored(server: LiveServer) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
    assert await _audited_remote(server, forwarded) == "127.0.0.1"
