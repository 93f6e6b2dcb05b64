"""A small Socket.IO test client: connects to one namespace of the live server, records every
event it receives, and sends events with acknowledgement."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import socketio


async def login_cookie(base_url: str, username: str, password: str = "demo12345") -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        response = await session.post(f"{base_url}/api/login",
                                      json={"username": username, "password": password})
        assert response.status == 200, await response.text()
        return f"yz_session={response.cookies['yz_session'].value}"


class SocketClient:
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
    async def connect(cls, base_url: str, namespace: str, cookie: str | None = None
                      ) -> SocketClient:
        client = cls(namespace)
        headers = {"Cookie": cookie} if cookie else {}
        await client.sio.connect(base_url, namespaces=[namespace], headers=headers,
                                 transports=["websocket"], wait_timeout=5)
        return client

    async def call(self, event: str, *payload: Any) -> dict[str, Any]:
        answer = await self.sio.call(event, payload[0] if len(payload) == 1 else payload or None,
                                     namespace=self.namespace, timeout=10)
        assert isinstance(answer, dict)
        return answer

    async def next(self, event: str, timeout: float = 10.0, **match: Any) -> Any:
        """The next `event` whose payload has the given field values."""
        async def find() -> Any:
            while True:
                data = await self.queue(event).get()
                if all(data.get(k) == v for k, v in match.items()):
                    return data
        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        await self.sio.disconnect()
