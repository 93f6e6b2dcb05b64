"""The base of every namespace: a socket's events are held to its event rate and validated
against `schema.EVENTS` before a handler sees them, and every answer is one structured object,
`{ok: true, ...}` or `{ok: false, error}` (a refusal of the signaling or the room layer, from the
error catalogue). Client events named like the connection's own never get here
(signaling/socket_server.py): `connect` and `disconnect` are the server's. While Redis is away
(signaling/redis_watch.py) the queue's namespaces answer `unavailable` without trying, and a
handler that meets a Redis error answers the same."""

from __future__ import annotations

import logging
import time
from http.cookies import SimpleCookie
from typing import Any

import socketio
from redis.exceptions import OutOfMemoryError
from socketio.exceptions import ConnectionRefusedError

from rooms.errors import RoomError
from signaling.config import SignalingConfig
from signaling.errors import SignalError, from_room_error
from signaling.limits import TokenBucket, retry_after
from signaling.redis_watch import UNAVAILABLE, RedisWatch, unavailable
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


def refusal(error: SignalError) -> ConnectionRefusedError:
    """A refused connection that carries the structured error: the CONNECT_ERROR packet is
    `{message, data: {code, message, message_en, ...}}` (a JavaScript client's `connect_error`
    has them as `err.message` and `err.data`)."""
    return ConnectionRefusedError(error.message, error.to_dict()["error"])


class Namespace(socketio.AsyncNamespace):
    """Routes `a:b-c` events to `on_a_b_c(sid, data)` handlers after validating the payload."""

    # Every event of this namespace needs Redis: refused at once while it is away. (The room
    # channel's media signaling does not, and goes on.)
    needs_redis = True

    def __init__(self, namespace: str, config: SignalingConfig, watch: RedisWatch) -> None:
        super().__init__(namespace)
        self._watch = watch
        self._max_payload_bytes = config.max_payload_bytes
        self._rate, self._burst = config.events_per_second, config.event_burst
        # This process's sockets of the namespace: sid -> its event-rate bucket; and the
        # sockets over their rate now (logged once per flood, not once per event).
        self._buckets: dict[str, TokenBucket] = {}
        self._flooding: set[str] = set()

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect":
            return await self._connect(*args)
        if event == "disconnect":
            self._buckets.pop(args[0], None)
            self._flooding.discard(args[0])
            try:
                return await super().trigger_event(event, *args)
            except UNAVAILABLE:
                # Counted again from the sockets still open once Redis is back (Clock.recover).
                self._watch.lost()
                logger.debug("%s socket %s left while Redis is away", self.namespace, args[0])
                return None
        sid, payloads = args[0], args[1:]
        try:
            self._take_token(sid, event)
            if self.needs_redis and not self._watch.available:
                return unavailable().to_dict()  # not logged: the watch said it once
            if len(payloads) > 1:
                raise SignalError("invalid_payload", "send exactly one payload object")
            data = parse(self.namespace, event, payloads[0] if payloads else None,
                         self._max_payload_bytes)
            handler = getattr(self, "on_" + event.replace(":", "_").replace("-", "_"))
            result = await handler(sid, data)
            return {"ok": True, **(result or {})}
        except (SignalError, RoomError) as exc:
            error = exc if isinstance(exc, SignalError) else from_room_error(exc)
            if error.name != "limit.rate":
                logger.info("%s %s from %s refused: %s", self.namespace, event, sid, error)
            return error.to_dict()
        except OutOfMemoryError:
            # Redis is at its maxmemory (noeviction): nothing was written; the memory alert
            # tells the supervisors.
            logger.warning("%s %s from %s: Redis is out of memory", self.namespace, event, sid)
            return SignalError("unavailable.redis_memory").to_dict()
        except UNAVAILABLE:
            self._watch.lost()
            return unavailable().to_dict()
        except Exception:
            logger.exception("%s %s from %s failed", self.namespace, event, sid)
            return SignalError("internal").to_dict()

    async def _connect(self, sid: str, *args: Any) -> Any:
        """The server's own connect call: the socket's bucket, then the namespace's on_connect
        (a refusal there leaves nothing behind: no disconnect follows a refused connect)."""
        if self.needs_redis and not self._watch.available:
            raise refusal(unavailable())
        if self._rate > 0:
            self._buckets[sid] = TokenBucket(self._rate, self._burst)
        try:
            result = await super().trigger_event("connect", sid, *args)
        except OutOfMemoryError:
            self._buckets.pop(sid, None)
            logger.warning("%s: socket %s refused, Redis is out of memory", self.namespace, sid)
            raise refusal(SignalError("unavailable.redis_memory")) from None
        except UNAVAILABLE:
            self._buckets.pop(sid, None)
            self._watch.lost()
            raise refusal(unavailable()) from None
        except BaseException:
            self._buckets.pop(sid, None)
            raise
        if result is False:
            self._buckets.pop(sid, None)
        return result

    def _take_token(self, sid: str, event: str) -> None:
        bucket = self._buckets.get(sid)
        if bucket is None:
            return
        wait = bucket.take(time.monotonic())
        if wait <= 0:
            self._flooding.discard(sid)
            return
        if sid not in self._flooding:
            self._flooding.add(sid)
            logger.warning("%s: socket %s sends events faster than %g/s (burst %d): refusing "
                           "them (%s first)", self.namespace, sid, self._rate, self._burst, event)
        raise SignalError("limit.rate", extra={"retry_after": retry_after(wait)})
