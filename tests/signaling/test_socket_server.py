"""What clients send below the events, decoded strictly (signaling/socket_server.py), one test per
kind of input the fuzzer (tests/fuzz/) found logging a traceback or hanging: Socket.IO packets
that do not decode are dropped and the connection goes on; websocket frames that are not
Engine.IO close the connection; long-polling bodies that do not decode, or hold a packet type
the socket refuses, are dropped and the POST returns; a request for a closed session is a 400.
Also pins the private python-socketio / python-engineio names the hooks rely on."""

from __future__ import annotations

import asyncio
import inspect

import aiohttp
import engineio
import pytest
import socketio
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from signaling.socket_server import SocketServer
from tests.support.server import LiveServer, established

DEEP = "[" * 2000 + "]" * 2000
PROBE = '42/kiosk,77["ticket:resume",{}]'  # answered invalid_payload (no ticket id) with ack 77


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]


async def kiosk_ws(session: aiohttp.ClientSession, url: str
                   ) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
    assert (await ws.receive(timeout=5)).data.startswith("0{")
    await ws.send_str("40/kiosk,")
    assert (await ws.receive(timeout=5)).data.startswith("40/kiosk,")
    return ws


async def answer_to_probe(ws: aiohttp.ClientWebSocketResponse) -> str:
    await ws.send_str(PROBE)
    while True:
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        if message.data.startswith("43/kiosk,77"):
            return str(message.data)


@pytest.mark.parametrize("packet", [
    '42/kiosk,1["ticket:create",' + DEEP + "]",  # RecursionError in the JSON decoder
    "42/kiosk,2[" + DEEP + "]",
    '42/kiosk,3["ticket:create",',  # not JSON
    "42/kiosk,", "42/kiosk,4[]", "42/kiosk,5[1]", '42/kiosk,6{"a":1}',  # no event name
    "44/kiosk,{}",  # CONNECT_ERROR: the server's
    '451-/kiosk,7["x",{"_placeholder":true,"num":0}]',  # a binary attachment
    "49/kiosk,", "4x", "4",  # no such packet type, an empty packet
    '42/kiosk,' + "1" * 150 + '["x"]',  # an ack id too long
])
async def test_a_packet_that_does_not_decode_is_dropped_and_the_socket_goes_on(
        server: LiveServer, caplog: pytest.LogCaptureFixture, packet: str) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await kiosk_ws(session, server.url)
        await ws.send_str(packet)
        if packet.startswith("451-"):
            await ws.send_bytes(b"attachment")
        assert '"code":"invalid_payload"' in await answer_to_probe(ws)
        await ws.close()
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("frame", ["", "x", "ba", "9", "4" + DEEP, "2" + DEEP, "\x00"])
async def test_a_frame_that_is_not_engineio_closes_the_websocket(
        server: LiveServer, caplog: pytest.LogCaptureFixture, frame: str) -> None:
    before = established(server.port)
    async with aiohttp.ClientSession() as session:
        ws = await kiosk_ws(session, server.url)
        await ws.send_str(frame)
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        await ws.close()
    for _ in range(50):
        if established(server.port) <= before:
            break
        await asyncio.sleep(0.1)
    assert established(server.port) <= before
    assert tracebacks(caplog) == []


async def test_after_its_close_packet_the_websocket_is_closed(
        server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    """Engine.IO closes the session on the client's close packet but went on reading the
    websocket (and handing on what it read) until it had been idle for the ping timeout."""
    async with aiohttp.ClientSession() as session:
        ws = await kiosk_ws(session, server.url)
        await ws.send_str("1")
        await ws.send_str(PROBE)
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
    assert tracebacks(caplog) == []


async def polling_session(session: aiohttp.ClientSession, url: str) -> str:
    base = f"{url}/socket.io/?EIO=4&transport=polling"
    async with session.get(base) as answer:
        opened = await answer.text()
    return base + "&sid=" + opened[opened.index('"sid":"') + 7:].split('"', 1)[0]


async def test_long_polling_drops_what_does_not_decode_and_always_answers(
        server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    async with aiohttp.ClientSession() as session:
        base = await polling_session(session, server.url)

        async def post(body: str | bytes) -> int:
            async with asyncio.timeout(5):  # a NOOP or PING once never returned
                async with session.post(base, data=body) as answer:
                    return answer.status

        for body in ("6", "2", "0", "9", "x", "", "4" + DEEP, b"\xff\xfe", "40/kiosk,\x1e6",
                     '42/kiosk,1["x",'):
            assert await post(body) == 200, body
        # The session still works: it joins /kiosk and gets the answer.
        assert await post("40/kiosk,") == 200
        async with session.get(base) as answer:
            assert "40/kiosk," in await answer.text()
        # Closed by the client, then posted to: 400 (was a KeyError, a 500).
        assert await post("1") == 200
        assert await post("40/kiosk,") == 400
    assert tracebacks(caplog) == []


def test_the_private_names_the_hooks_rely_on_are_there() -> None:
    """python-socketio 5.x, python-engineio 4.x (pyproject.toml keeps them below 6 and 5)."""
    assert list(inspect.signature(socketio.AsyncServer._handle_eio_message).parameters) == [
        "self", "eio_sid", "data"]
    server = SocketServer(async_mode="aiohttp")
    assert server.packet_class.__name__ == "CheckedPacket"
    assert isinstance(server.eio, engineio.AsyncServer)
    assert {"websocket", "translate_request", "create_route"} <= set(server.eio._async)
    assert server.eio._async is not eio_aiohttp._async  # a copy, not the module's table
    assert eio_aiohttp._async["websocket"] is eio_aiohttp.WebSocket
    assert inspect.iscoroutinefunction(eio_aiohttp.WebSocket.wait)
    assert eio_packet.packet_names == ["OPEN", "CLOSE", "PING", "PONG", "MESSAGE", "UPGRADE",
                                       "NOOP"]
