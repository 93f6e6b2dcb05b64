"""The JSON codec of Socket.IO's packets and of its messages between processes: orjson behind the
`dumps`/`loads` interface that python-socketio and python-engineio call (the standard library's
codec was a tenth of a dispatch's server time)."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson

logger = logging.getLogger(__name__)


class FastJson:
    """What the Socket.IO libraries take for a `json` module. What orjson refuses is left to
    the standard library, so that the service accepts and refuses exactly what it did: JSON
    nested too deep (a RecursionError, which closes a client's websocket), NaN, lone surrogates,
    integers beyond 64 bits. The libraries' keyword arguments (`separators`) ask for what orjson
    always does: compact output."""

    @staticmethod
    def dumps(obj: Any, **options: Any) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return json.dumps(obj, **options)

    @staticmethod
    def loads(text: str | bytes) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return json.loads(text)
