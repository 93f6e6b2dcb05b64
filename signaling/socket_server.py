"""The service's Socket.IO server: python-socketio's AsyncServer, except that
1. a client event named like one of the connection's own (``connect``, ``disconnect``, …) is
   refused with a structured error before any namespace sees it, and
2. what clients send is decoded strictly, so that a malformed frame or packet costs one log line
   instead of a traceback (and, for some frames, a connection left half open): the packet is
   dropped, or the websocket closed.

Reserved names. python-socketio hands a client's EVENT packet to the same ``trigger_event`` as
the server's own connect and disconnect calls, so a forged ``connect`` ran a namespace's
``on_connect`` again (overwriting the socket's session) and a forged ``disconnect`` its
``on_disconnect`` (abandoning a ticket whose socket was still open). A namespace cannot tell the
two apart by the arguments, which the client chooses. The hook (python-socketio 5.x, kept below
6 by pyproject.toml; tests/signaling/test_reserved_events.py fails if it moves): every client
EVENT packet, plain or binary, goes ``_handle_eio_message`` → ``_handle_event`` (checks the
socket is connected) → ``_handle_event_internal(server, sid, eio_sid, data, namespace, id)``,
which calls ``server._trigger_event(data[0], namespace, sid, *data[1:])`` and sends the handler's
return value as the ACK packet when the client asked for one. The server's own calls of connect
and disconnect come from ``_handle_connect``, ``_handle_disconnect`` and ``disconnect`` and never
pass through ``_handle_event_internal``: overriding that one method refuses every forged name
and nothing else.

Decoding. python-socketio 5.18 / python-engineio 4.15 raise from their decoders and log the
traceback as "message async handler error" (a packet that is not JSON, nested deeper than the
recursion limit, of an unknown or server-only type, an event without a name, ...) or let the
error escape the websocket handler to aiohttp (an empty or untyped Engine.IO frame), and a
long-polling POST of a packet type the socket refuses never returns. The hooks, each tested by
tests/signaling/test_socket_server.py:
1. `serializer=CheckedPacket` (public): the packet class refuses what this service's clients never
   send, raising `MalformedPacket`.
2. `SocketServer._handle_eio_message` (a private method of `socketio.AsyncServer`, the one that
   decodes and dispatches each Engine.IO message): catches `MalformedPacket` alone and drops the
   packet; the connection stays.
3. The Engine.IO server's async driver table (`eio._async`, private; engineio/async_drivers/
   aiohttp.py): its `websocket` class reads frames, ours ends the connection (as if the client
   had closed it) on a frame Engine.IO cannot decode; its `translate_request` builds the request
   environ, ours reads a long-polling POST body first and drops one that cannot be decoded or
   holds a packet type the socket would refuse; its `create_route` adds the routes, ours puts a
   check for closed sessions before the handler. Ours also keeps each open websocket in a set,
   so that `close_connections` (at shutdown) can close them after closing every Engine.IO
   session (`eio.sockets`, `AsyncSocket.close(wait=False)`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Collection
from typing import Any

import socketio
from aiohttp import web
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet

from signaling.errors import SignalError
from signaling.fastjson import FastJson

logger = logging.getLogger(__name__)

# The names python-socketio gives the connection's own events (connect, disconnect; `message`
# is what `send` emits), and those the Socket.IO JavaScript client reserves (it cannot receive
# an event of these names, and a server must never take one from a client).
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting",
                             "message", "newListener", "removeListener"})

# What a client may send: the service uses no binary attachments, and CONNECT_ERROR is the
# server's.
CLIENT_PACKETS = (sio_packet.CONNECT, sio_packet.DISCONNECT, sio_packet.EVENT, sio_packet.ACK)


class MalformedPacket(ValueError):
    """A Socket.IO packet from a client that the service does not accept."""


class CheckedPacket(sio_packet.Packet):
    def decode(self, encoded_packet: str | bytes) -> int:
        try:
            attachments = super().decode(encoded_packet)
        except (ValueError, TypeError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the interpreter's recursion limit.
            raise MalformedPacket(f"undecodable packet ({type(exc).__name__})") from None
        if self.packet_type not in CLIENT_PACKETS:
            raise MalformedPacket(f"packet type {self.packet_type!r} is not accepted")
        if self.packet_type == sio_packet.EVENT and not (
                isinstance(self.data, list) and self.data and isinstance(self.data[0], str)):
            raise MalformedPacket("an event is a list that starts with its name")
        return int(attachments or 0)


# What engineio's socket takes from a client (AsyncSocket.receive); any other type it refuses
# with UnknownPacketError, which over long-polling makes it disconnect from inside the POST,
# and that close waits for a GET to take the close packet: the POST never returns.
RECEIVED = (eio_packet.CLOSE, eio_packet.PONG, eio_packet.MESSAGE, eio_packet.UPGRADE)


def _decodes(frame: str | bytes, types: Collection[int] = range(len(eio_packet.packet_names))
             ) -> bool:
    """Whether Engine.IO can decode and log this frame (or long-polling body) without raising:
    its packets decode and are of `types` (engineio logs each packet's type by name)."""
    try:
        if isinstance(frame, bytes):
            packets = eio_payload.Payload(encoded_payload=frame.decode("utf-8")).packets
        else:
            packets = [eio_packet.Packet(encoded_packet=frame)]
    except (ValueError, TypeError, IndexError, RecursionError):
        # ValueError covers binascii.Error (base64) and UnicodeDecodeError; RecursionError:
        # JSON nested deeper than the interpreter's recursion limit.
        return False
    return all(p.packet_type in types for p in packets)


class CheckedWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """Engine.IO's websocket for aiohttp; a frame Engine.IO cannot decode ends the connection,
    and so does its Engine.IO session closing (a client's close packet closes the session but
    engineio goes on reading the websocket until it has been idle for the ping timeout). While
    its connection is open it is in ``live``, for the server to close at shutdown."""

    def __init__(self, handler: Any, server: Any, *, live: set[CheckedWebSocket]) -> None:
        super().__init__(handler, server)
        self._live = live

    async def __call__(self, environ: dict[str, Any]) -> web.StreamResponse:
        self._live.add(self)
        try:
            return await super().__call__(environ)  # type: ignore[no-any-return]
        finally:
            self._live.discard(self)

    async def close(self) -> None:
        if self._sock is not None:  # None: not yet accepted
            await super().close()

    async def wait(self) -> str | bytes | None:
        data = await super().wait()
        session = getattr(self.handler, "__self__", None)  # the AsyncSocket reading from us
        if session is not None and session.closed:
            return None
        if isinstance(data, bytes) or _decodes(data):
            return data  # type: ignore[no-any-return]
        logger.info("socket.io websocket from %s sent a frame that does not decode: closing it",
                    self.environ["aiohttp.request"].remote)
        return None  # what Engine.IO takes for "closed by the client"


class _Body:
    """A request body already read, for Engine.IO to read (`read(n)`) again."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, length: int = -1) -> bytes:
        data = self._data if length < 0 else self._data[:length]
        self._data = self._data[len(data):]
        return data


async def _checked_translate_request(request: Any) -> dict[str, Any]:
    """The environ Engine.IO builds from an aiohttp request; a long-polling POST body that
    Engine.IO would fail to decode is dropped (as an empty body: nothing received)."""
    environ: dict[str, Any] = eio_aiohttp.translate_request(request)
    if request.method == "POST":
        body = await request.read()
        if not _decodes(body, RECEIVED):
            logger.info("socket.io long-polling POST from %s does not decode: dropped",
                        request.remote)
            body = b""
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = _Body(body), str(len(body))
    return environ


def _create_route(app: web.Application, eio: Any, endpoint: str) -> None:
    """Engine.IO's routes, with one check before its handler: a request for a session that is
    closed but not yet forgotten answers 400, as engineio itself answers such a GET (its POST
    lets `_get_socket`'s KeyError escape to aiohttp as a 500)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        sid = request.query.get("sid")
        socket = eio.sockets.get(sid) if sid else None
        if socket is not None and socket.closed:
            logger.info("socket.io request from %s for closed session %s", request.remote, sid)
            return web.Response(status=400, text="Invalid session")
        return await eio.handle_request(request)  # type: ignore[no-any-return]

    for method in ("GET", "POST", "OPTIONS"):
        app.router.add_route(method, endpoint, handle)


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """An AsyncServer whose clients cannot send reserved event names, and whose packets that
    `CheckedPacket` refuses are dropped."""

    def __init__(self, **options: Any) -> None:
        super().__init__(serializer=CheckedPacket, json=FastJson, **options)
        self._websockets: set[CheckedWebSocket] = set()
        # A copy: the driver table is a module global that every Engine.IO server shares.
        self.eio._async = {**self.eio._async,
                           "websocket": functools.partial(CheckedWebSocket,
                                                          live=self._websockets),
                           "translate_request": _checked_translate_request,
                           "create_route": _create_route}

    async def close_connections(self) -> None:
        """End every connection as a dropped network would: each socket's disconnect handlers
        run (with the server's reason, not the client's), then its websocket is closed, which
        the Socket.IO client takes for a lost transport and reconnects (a Socket.IO disconnect
        packet would stop it from reconnecting; Engine.IO's close packet alone leaves a
        browser's websocket open until the ping timeout)."""
        # Not `eio.disconnect()`: it waits for each socket's queue to be taken, and a socket
        # nobody reads any more (its client gone, not yet timed out) never has it taken.
        await asyncio.gather(*(socket.close(wait=False) for socket in
                               list(self.eio.sockets.values())))
        await asyncio.gather(*(websocket.close() for websocket in list(self._websockets)))

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        # Dropped, not disconnected: a disconnect from here deadlocks a long-polling POST (its
        # close waits for a GET to take the close packet) and races the frames already read.
        if eio_sid not in self.environ:
            return  # read after its connection closed (Engine.IO still hands on what it read)
        try:
            if not data:
                # Packet() skips decoding an empty string and would make an event without data.
                raise MalformedPacket("an empty packet")
            await super()._handle_eio_message(eio_sid, data)
        except MalformedPacket as exc:
            logger.info("socket.io connection %s sent %s: dropped", eio_sid, exc)

    async def _handle_event_internal(self, server: socketio.AsyncServer, sid: str,
                                     eio_sid: str, data: list[Any], namespace: str,
                                     id: int | None) -> None:
        name = data[0] if data else None
        if isinstance(name, str) and name in RESERVED_EVENTS:
            logger.warning("%s: socket %s sent the reserved event name %r: refused", namespace,
                           sid, name)
            if id is not None:
                answer = SignalError("invalid_payload.reserved_event", name).to_dict()
                await server._send_packet(eio_sid, self.packet_class(
                    sio_packet.ACK, namespace=namespace, id=id, data=[answer]))
            return
        await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
