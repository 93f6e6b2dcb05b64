"""The one place where refusals become HTTP answers: a catalogue error (signaling/errors.py), a
room's refusal, or aiohttp's own 4xx under /api/ all answer
`{ok: false, error: {code, message, message_en}}` with the catalogue's status; and the security
headers every answer carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from rooms.errors import RoomError
from signaling.errors import SignalError, from_room_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except SignalError as exc:
        response = web.json_response(exc.to_dict(), status=exc.status)
    except RoomError as exc:
        error = from_room_error(exc)
        response = web.json_response(error.to_dict(), status=error.status)
    except web.HTTPException as exc:
        # aiohttp's own answers (no such route, wrong method, body too large): JSON under /api/,
        # with aiohttp's status and reason; pages and redirects stay as they are.
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        error = SignalError("not_found.request" if exc.status == 404
                            else "invalid_payload.request", reason=exc.reason)
        response = web.json_response(error.to_dict(), status=exc.status)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
