"""The base of every namespace: events are validated against `schema.EVENTS` before a handler sees
them, and every answer is one structured object, `{ok: true, ...}` or `{ok: false, error}` (a
refusal of the signaling or the room layer, from the error catalogue)."""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from typing import Any

import socketio

from rooms.errors import RoomError
from signaling.errors import SignalError, from_room_error
from signaling.schema import parse

logger = logging.getLogger(__name__)


def cookie_from_environ(environ: dict[str, Any], name: str) -> str | None:
    header = environ.get("HTTP_COOKIE", "")
    if not header:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(header)
    except Exception:
        return None
    morsel = cookie.get(name)
    return morsel.value if morsel is not None else None


class Namespace(socketio.AsyncNamespace):
    """Routes `a:b-c` events to `on_a_b_c(sid, data)` handlers after validating the payload."""

    def __init__(self, namespace: str, max_payload_bytes: int) -> None:
        super().__init__(namespace)
        self._max_payload_bytes = max_payload_bytes

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid, payloads = args[0], args[1:]
        try:
            if len(payloads) > 1:
                raise SignalError("invalid_payload", "send exactly one payload object")
            data = parse(self.namespace, event, payloads[0] if payloads else None,
                         self._max_payload_bytes)
            handler = getattr(self, "on_" + event.replace(":", "_").replace("-", "_"))
            result = await handler(sid, data)
            return {"ok": True, **(result or {})}
        except (SignalError, RoomError) as exc:
            error = exc if isinstance(exc, SignalError) else from_room_error(exc)
            logger.info("%s %s from %s refused: %s", self.namespace, event, sid, error)
            return error.to_dict()
        except Exception:
            logger.exception("%s %s from %s failed", self.namespace, event, sid)
            return SignalError("internal").to_dict()
