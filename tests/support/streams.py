"""Reading the service's Redis streams (the audit trail, the queue log) in tests."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis


async def stream_entries(client: aioredis.Redis, key: str) -> list[dict[str, str]]:
    """The fields of every entry of a stream, oldest first (a client with decode_responses)."""
    rows = cast(list[tuple[str, dict[str, str]]], await client.xrange(key))
    return [fields for _, fields in rows]
