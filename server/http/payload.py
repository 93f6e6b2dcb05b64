"""Reading a request: its JSON body (declared as application/json, a size limit, valid JSON, an
object) and the time range of a query (``from`` and ``to``)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from aiohttp import web

from server.keys import CONFIG
from signaling.errors import SignalError

# An id taken from a URL or a query (room, department): letters, digits, - and _, at most 64; a
# lookup with anything else answers 400 or 404 without reaching Redis.
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


async def json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    # A plain HTML form can post text/plain, urlencoded or multipart across sites without a CORS
    # preflight, application/json it cannot: requiring it stops login CSRF from such a form.
    # aiohttp's content_type is the media type alone, lower-cased (a charset may follow).
    if request.content_type != "application/json":
        raise SignalError("invalid_payload.content_type")
    # Checked before and while reading: a client may send no Content-Length, or a wrong one.
    if request.content_length is not None and request.content_length > max_bytes:
        raise SignalError("invalid_payload.too_large")
    body = await request.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise SignalError("invalid_payload.too_large")
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise SignalError("invalid_payload.not_json") from None
    if not isinstance(data, dict):
        raise SignalError("invalid_payload.not_object")
    return data


def query_time(request: web.Request, name: str, end: bool) -> float | None:
    """A time parameter: a local date YYYY-MM-DD (``to`` takes in the whole day) or epoch
    seconds."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value < 0:
            raise SignalError("invalid_payload.time", name=name) from None
        return value
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), request.app[CONFIG].signaling.zone).timestamp()


def time_range(request: web.Request) -> tuple[float | None, float | None]:
    """The query's ``from`` and ``to`` (each may be absent); 400 when ``to`` is before."""
    start, end = query_time(request, "from", False), query_time(request, "to", True)
    if start is not None and end is not None and end < start:
        raise SignalError("invalid_payload.time_order")
    return start, end
