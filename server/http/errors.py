"""The one place where refusals become HTTP answers: a catalogue error (signaling/errors.py), a
room's refusal, or aiohttp's own 4xx under /api/ all answer
`{ok: false, error: {code, message, message_en}}` with the catalogue's status. The same
middleware refuses foreign origins and adds the security headers (server/http/security.py).
`RequestLog` is aiohttp's server logger: a request aiohttp itself refuses as malformed HTTP is
logged in one line, without a traceback."""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from rooms.errors import RoomError
from server.http.security import add_headers, check_origin
from signaling.errors import SignalError, from_room_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        check_origin(request)
        try:
            response = await handler(request)
        except OSError as exc:
            # aiohttp's static files look the name up as it is: one longer than the file system
            # allows names no file.
            if exc.errno != errno.ENAMETOOLONG:
                raise
            raise web.HTTPNotFound() from None
    except SignalError as exc:
        response = web.json_response(exc.to_dict(), status=exc.status)
    except RoomError as exc:
        error = from_room_error(exc)
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
