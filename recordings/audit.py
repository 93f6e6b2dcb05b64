"""The audit trail of the archive: every list, view, file download, verify, hold and purge, one
entry of the Redis stream ``yz:audit``. Entries are kept at least ``AUDIT_KEEP_DAYS`` days: the
stream is trimmed by age (MINID), never by length, so a busy day cannot push out old entries."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis

AUDIT = "yz:audit"
AUDIT_KEEP_DAYS = 190
MAX_ENTRIES = 5000


class Audit:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time,
                 keep_days: int = AUDIT_KEEP_DAYS) -> None:
        self.redis: Any = redis
        self.clock = clock
        self.keep_days = max(keep_days, AUDIT_KEEP_DAYS)

    async def append(self, who: str, action: str, *, recording_id: str = "", remote: str = "",
                     department: str = "", detail: str = "", target: str = "",
                     before: Mapping[str, Any] | None = None,
                     after: Mapping[str, Any] | None = None) -> None:
        """One entry: ``who`` did ``action`` (to ``target``: an account, a department, a
        setting; or to ``recording_id``) from ``remote``; ``before``/``after``: the changed
        thing's state either side of a change, stored as JSON."""
        now = self.clock()
        oldest = int((now - self.keep_days * 86400) * 1000)
        # Ids come from the Redis server's clock (always increasing); the entry's own time is
        # a field. Trimming drops ids older than keep_days (MINID), whatever the volume.
        await self.redis.xadd(AUDIT, {
            "time": f"{now:.3f}", "who": who, "action": action, "recording_id": recording_id,
            "department": department, "remote": remote or "", "detail": detail,
            "target": target,
            "before": json.dumps(before, ensure_ascii=False, sort_keys=True) if before else "",
            "after": json.dumps(after, ensure_ascii=False, sort_keys=True) if after else "",
        }, minid=oldest, approximate=False)

    async def entries(self, start: float, end: float,
                      departments: Iterable[str] = (), user: str = "",
                      limit: int = MAX_ENTRIES) -> list[dict[str, Any]]:
        """Entries between two times, newest first. With ``departments``, only entries about
        those departments' recordings and ``user``'s own actions (a scoped supervisor)."""
        rows = await self.redis.xrevrange(AUDIT, max=str(int(end * 1000)),
                                          min=f"{int(start * 1000)}", count=limit * 4)
        scope = set(departments)
        out: list[dict[str, Any]] = []
        for entry_id, fields in rows:
            if scope and fields.get("department") not in scope and fields.get("who") != user:
                continue
            out.append({"id": entry_id, **fields, "time": float(fields.get("time") or 0)})
            if len(out) >= limit:
                break
        return out
