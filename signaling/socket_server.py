"""The service's Socket.IO server: python-socketio's AsyncServer, except that a client event
named like one of the connection's own (``connect``, ``disconnect``, …) is refused with a
structured error before any namespace sees it.

Why: python-socketio hands a client's EVENT packet to the same ``trigger_event`` as the server's
own connect and disconnect calls, so a forged ``connect`` ran a namespace's ``on_connect`` again
(overwriting the socket's session) and a forged ``disconnect`` its ``on_disconnect`` (abandoning
a ticket whose socket was still open). A namespace cannot tell the two apart by the arguments,
which the client chooses.

The hook (python-socketio 5.x, kept below 6 by pyproject.toml;
tests/signaling/test_reserved_events.py fails if it moves): every client EVENT packet, plain or
binary, goes ``_handle_eio_message`` → ``_handle_event`` (checks the socket is connected) →
``_handle_event_internal(server, sid, eio_sid, data, namespace, id)``, which calls
``server._trigger_event(data[0], namespace, sid, *data[1:])`` and sends the handler's return
value as the ACK packet when the client asked for one. The server's own calls of connect and
disconnect come from ``_handle_connect``, ``_handle_disconnect`` and ``disconnect`` and never
pass through ``_handle_event_internal``: overriding that one method refuses every forged name
and nothing else."""

from __future__ import annotations

import logging
from typing import Any

import socketio
from socketio import packet

from signaling.errors import SignalError

logger = logging.getLogger(__name__)

# The names python-socketio gives the connection's own events (connect, disconnect; `message`
# is what `send` emits), and those the Socket.IO JavaScript client reserves (it cannot receive
# an event of these names, and a server must never take one from a client).
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting",
                             "message", "newListener", "removeListener"})


class SocketServer(socketio.AsyncServer):
    """An AsyncServer whose clients cannot send reserved event names."""

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
                    packet.ACK, namespace=namespace, id=id, data=[answer]))
            return
        await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
