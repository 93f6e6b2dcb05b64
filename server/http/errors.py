"""The one place where refusals become HTTP answers: a catalogue error (signaling/errors.py), a
room's refusal, Redis refusing a write at its maxmemory (503 `unavailable`), or aiohttp's own
4xx under /api/ all answer `{ok: false, error: {code, message, message_en}}` with the
catalogue's status. While Redis is away (signaling/redis_watch.py), or when a handler meets a
Redis error, the API answers 503 `unavailable` and a page a short "recovering" page that reloads
itself. The same middleware refuses foreign origins and adds the security headers
(server/http/security.py). `RequestLog` is aiohttp's server logger: a request aiohttp itself
refuses as malformed HTTP is logged in one line, without a traceback."""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from redis.exceptions import OutOfMemoryError

from rooms.errors import RoomError
from server.http.security import add_headers, check_origin
from server.keys import REDIS_WATCH
from signaling.errors import SignalError, from_room_error
from signaling.redis_watch import RETRY_AFTER_S, UNAVAILABLE, unavailable

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What answers without Redis (the health check says it is away; static files; the Socket.IO
# transport, whose namespaces refuse for themselves): everything else waits for it.
WITHOUT_REDIS = ("/healthz", "/static/", "/socket.io/")
# Seconds before the page shown while Redis is away loads itself again.
RELOAD_S = 5


def _unavailable(request: web.Request) -> web.Response:
    error = unavailable()
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if request.path.startswith("/api/"):
        return web.json_response(error.to_dict(), status=error.status, headers=headers)
    response = aiohttp_jinja2.render_template(
        "unavailable.html", request, {"message": error.message, "message_en": error.message_en,
                                      "reload_after": RELOAD_S}, status=error.status)
    response.headers.update(headers)
    return response


@web.middleware
async def errors_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    watch = request.app[REDIS_WATCH]
    response: web.StreamResponse
    try:
        check_origin(request)
        if not watch.available and not request.path.startswith(WITHOUT_REDIS):
            response = _unavailable(request)
        else:
            try:
                response = await handler(request)
            except OSError as exc:
                # aiohttp's static files look the name up as it is: one longer than the file
                # system allows names no file.
                if exc.errno != errno.ENAMETOOLONG:
                    raise
                raise web.HTTPNotFound() from None
    except UNAVAILABLE:
        watch.lost()
        response = _unavailable(request)
    except SignalError as exc:
        response = web.json_response(exc.to_dict(), status=exc.status)
    except RoomError as exc:
        error = from_room_error(exc)
        response = web.json_response(error.to_dict(), status=error.status)
    except OutOfMemoryError:
        # The memory alert (server/redis_memory.py) tells the supervisors; nothing was written.
        logger.warning("%s %s: Redis is out of memory", request.method, request.path)
        error = SignalError("unavailable.redis_memory")
        response = web.json_response(error.to_dict(), status=error.status)
    except web.HTTPException as exc:
        # aiohttp's own answers (no such route, wrong method, body too large): JSON under /api/,
        # with aiohttp's status and reason; pages and redirects stay as they are, with the
        # security headers.
        if not request.path.startswith("/api/") or exc.status < 400:
            add_headers(request, exc)
            raise
        error = SignalError("not_found.request" if exc.status == 404
                            else "invalid_payload.request", reason=exc.reason)
        response = web.json_response(error.to_dict(), status=exc.status)
    add_headers(request, response)
    return response


class RequestLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger (given to the app as `handler_args={"logger": ...}`).

    aiohttp logs every request it cannot parse (an over-long URL or header line, a bad method,
    header or chunk) with `logger.exception` and answers it 400 itself: that is the client's
    fault, logged here as one line. Any other exception (a handler's bug) keeps its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            reason = (exc.message or type(exc).__name__).splitlines()[0][:200]
            self.info("%s: %s", str(msg) % args, reason)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)
