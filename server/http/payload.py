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
from signaling.schema import MAX_NESTING, nested_deeper_than

# An id taken from a URL or a query (room, department): letters, digits, - and _, at most 64; a
# lookup with anything else answers 400 or 404 without reaching Redis.
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The last second a time parameter may name (9999-12-31 23:59:59 UTC): Redis stream ids and dates
# end there.
MAX_EPOCH = 253402300799.0


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
    except RecursionError:  # nested deeper than the interpreter's recursion limit
        raise SignalError("invalid_payload.too_deep", max=MAX_NESTING) from None
    if not isinstance(data, dict):
        raise SignalError("invalid_payload.not_object")
    if nested_deeper_than(data, MAX_NESTING):
        raise SignalError("invalid_payload.too_deep", max=MAX_NESTING)
    return data


def day_start(day: dt.date, zone: dt.tzinfo) -> float:
    """Epoch seconds of a local day's first moment, within 0 .. MAX_EPOCH (a day before 1970
    starts at 0, the day after 9999-12-31 at the end)."""
    try:
        stamp = dt.datetime.combine(day, dt.time(), zone).timestamp()
    except (OverflowError, ValueError):
        return MAX_EPOCH
    return min(max(stamp, 0.0), MAX_EPOCH)


def next_day(day: dt.date) -> dt.date | None:
    """The day after, or None after 9999-12-31."""
    try:
        return day + dt.timedelta(days=1)
    except OverflowError:
        return None


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
        if not math.isfinite(value) or not 0 <= value <= MAX_EPOCH:
            raise SignalError("invalid_payload.time", name=name) from None
        return value
    after = next_day(day) if end else day
    return MAX_EPOCH if after is None else day_start(after, request.app[CONFIG].signaling.zone)


def time_range(request: web.Request) -> tuple[float | None, float | None]:
    """The query's ``from`` and ``to`` (each may be absent); 400 when ``to`` is before."""
    start, end = query_time(request, "from", False), query_time(request, "to", True)
    if start is not None and end is not None and end < start:
        raise SignalError("invalid_payload.time_order")
    return start, end
