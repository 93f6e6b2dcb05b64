"""A Socket.IO client of one namespace of the service, for programs that are not browsers (the
tests, the benchmarks, rooms/client.py's participant): it records every event it receives and
sends events with acknowledgement, as docs/protocol.md describes."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import socketio


async def login_cookie(base_url: str, username: str, password: str) -> str:
    """Log in over the HTTP API; returns the Cookie header value for the session."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        response = await session.post(f"{base_url}/api/login",
                                      json={"username": username, "password": password})
        if response.status != 200:
            raise RuntimeError(f"login {username}: {response.status} {await response.text()}")
        return f"yz_session={response.cookies['yz_session'].value}"


class SignalingClient:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[Any]] = {}
        self.sio.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, data: Any = None) -> None:
        self.queue(event).put_nowait(data)

    def queue(self, event: str) -> asyncio.Queue[Any]:
        return self.events.setdefault(event, asyncio.Queue())

    @classmethod
    async def connect(cls, base_url: str, namespace: str, cookie: str | None = None,
                      timeout: float = 10.0, headers: dict[str, str] | None = None
                      ) -> SignalingClient:
        """`headers`: more handshake headers (a proxy's X-Forwarded-For, in tests)."""
        client = cls(namespace)
        await client.sio.connect(base_url, namespaces=[namespace],
                                 headers={**({"Cookie": cookie} if cookie else {}),
                                          **(headers or {})},
                                 transports=["websocket"], wait_timeout=timeout)
        return client

    async def call(self, event: str, *payload: Any) -> dict[str, Any]:
        """Send one event and return the server's answer, `{ok: true, ...}` or an error."""
        data = payload[0] if len(payload) == 1 else (payload or None)
        answer = await self.sio.call(event, data, namespace=self.namespace, timeout=10)
        if not isinstance(answer, dict):
            raise RuntimeError(f"{event}: the answer is not an object: {answer!r}")
        return answer

    async def request(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """`call`, raising when the server refuses."""
        answer = await self.call(event, payload)
        if not answer.get("ok"):
            raise RuntimeError(f"{event} refused: {answer.get('error')}")
        return answer

    async def next(self, event: str, timeout: float = 10.0, **match: Any) -> Any:
        """The next `event` whose payload has the given field values."""
        queue = self.queue(event)

        async def find() -> Any:
            while True:
                data = await queue.get()
                if all(data.get(k) == v for k, v in match.items()):
                    return data
        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        await self.sio.disconnect()
