"""The audit log in tests: a fixed key, and rewriting the stream the way someone with Redis access
could (every entry put back under its own stream id, with one changed, dropped or moved)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import redis.asyncio as aioredis

from recordings.audit import AUDIT

AUDIT_KEY = bytes(range(32))

Rows = list[tuple[str, dict[str, str]]]


async def audit_rows(client: aioredis.Redis) -> Rows:
    return cast(Rows, await client.xrange(AUDIT))


async def rewrite_audit(client: aioredis.Redis, change: Callable[[Rows], Rows]) -> None:
    """Replace the stream by ``change(rows)``, each row under the stream id it names (XADD
    cannot edit an entry or add one below the last id: so the whole stream is written again)."""
    rows = change(await audit_rows(client))
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(AUDIT)
        for entry_id, fields in rows:
            pipe.xadd(AUDIT, fields, id=entry_id)  # type: ignore[arg-type]
        await pipe.execute()
