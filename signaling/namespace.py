"""The base of every namespace: events are validated against `schema.EVENTS` before a handler sees
them, and every answer is one structured object, `{ok: true, ...}` or `{ok: false, error}` (a
refusal of the signaling or the room layer, from the error catalogue). While Redis is away
(signaling/redis_watch.py) the queue's namespaces answer `unavailable` without trying, and a
handler that meets a Redis error answers the same."""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError

from rooms.errors import RoomError
from signaling.errors import SignalError, from_room_error
from signaling.redis_watch import UNAVAILABLE, RedisWatch
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


def refuse_unavailable() -> ConnectionRefusedError:
    """The refusal of a socket that cannot be served while Redis is away: the client tries
    again (web/static/js/common.js)."""
    error = SignalError("unavailable").to_dict()["error"]
    return ConnectionRefusedError(error["code"], error)


class Namespace(socketio.AsyncNamespace):
    """Routes `a:b-c` events to `on_a_b_c(sid, data)` handlers after validating the payload."""

    # Every event of this namespace needs Redis: refused at once while it is away. (The room
    # channel's media signaling does not, and goes on.)
    needs_redis = True

    def __init__(self, namespace: str, max_payload_bytes: int, watch: RedisWatch) -> None:
        super().__init__(namespace)
        self._max_payload_bytes = max_payload_bytes
        self._watch = watch

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect":
            if self.needs_redis and not self._watch.available:
                raise refuse_unavailable()
            try:
                return await super().trigger_event(event, *args)
            except UNAVAILABLE:
                self._watch.lost()
                raise refuse_unavailable() from None
        if event == "disconnect":
            try:
                return await super().trigger_event(event, *args)
            except UNAVAILABLE:
                # Counted again from the sockets still open once Redis is back (Clock.recover).
                self._watch.lost()
                logger.debug("%s socket %s left while Redis is away", self.namespace, args[0])
                return None
        sid, payloads = args[0], args[1:]
        if self.needs_redis and not self._watch.available:
            return SignalError("unavailable").to_dict()
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
        except UNAVAILABLE:
            self._watch.lost()
            return SignalError("unavailable").to_dict()
        except Exception:
            logger.exception("%s %s from %s failed", self.namespace, event, sid)
            return SignalError("internal").to_dict()
