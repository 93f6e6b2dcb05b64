"""Alerts for supervisors: a recording cut short (the disk filled, a write failed), too little
free space under the recordings directory, Redis close to its maxmemory
(server/redis_memory.py), and Redis replicas not acknowledging tickets (signaling/durable.py).

Kept in the Redis stream ``yz:alerts`` (trimmed by age, like the audit); an acknowledgement is a
field of the hash ``yz:alerts:ack``. Each alert is raised once per subject: a room's failure is
seen both by the live watch and when the recording is indexed, and low space is seen every check
until it is fixed; ``yz:alert:once:<kind>:<subject>`` (SET NX) keeps one of each."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis

ALERTS = "yz:alerts"
ACKS = "yz:alerts:ack"
ONCE = "yz:alert:once:{}:{}"
KEEP_DAYS = 30
MAX_ALERTS = 200
# How long one subject is not alerted about again (low space: re-raised daily while it lasts).
ONCE_TTL_S = 86400
# case_due and case_overdue: a 差评 case near or past its due date (signaling/cases.py).
KINDS = ("disk_full", "write_error", "low_space", "redis_memory", "case_due", "case_overdue",
         # redis_replication: replicas did not acknowledge a ticket in time (signaling/durable.py).
         "redis_replication")


class Alerts:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis: Any = redis
        self.clock = clock

    async def raise_once(self, kind: str, subject: str, *, room_id: str = "",
                         ticket_number: str = "", department: str = "",
                         detail: str = "") -> str | None:
        """Add an alert unless one of this kind about ``subject`` was raised lately; returns its
        id, or None when it was a repeat."""
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind {kind!r}")
        if not await self.redis.set(ONCE.format(kind, subject), "1", nx=True, ex=ONCE_TTL_S):
            return None
        now = self.clock()
        oldest = int((now - KEEP_DAYS * 86400) * 1000)
        alert_id: str = await self.redis.xadd(ALERTS, {
            "time": f"{now:.3f}", "kind": kind, "room_id": room_id,
            "ticket_number": ticket_number, "department": department,
            "detail": detail[:500],
        }, minid=oldest, approximate=False)
        return alert_id

    async def clear(self, kind: str, subject: str) -> None:
        """The condition is over (space was freed): the next occurrence alerts again."""
        await self.redis.delete(ONCE.format(kind, subject))

    async def entries(self, departments: Iterable[str] = (), limit: int = MAX_ALERTS
                      ) -> list[dict[str, Any]]:
        """Alerts of the last KEEP_DAYS, newest first. With ``departments`` (a scoped
        supervisor), a room's alert only when it is of those departments; alerts about the
        storage itself (no department) go to everybody."""
        rows = await self.redis.xrevrange(ALERTS, count=limit * 4)
        acks = await self.redis.hgetall(ACKS)
        scope = set(departments)
        out: list[dict[str, Any]] = []
        for alert_id, fields in rows:
            department = fields.get("department", "")
            if scope and department and department not in scope:
                continue
            ack = json.loads(acks[alert_id]) if alert_id in acks else None
            out.append({"id": alert_id, "time": float(fields.get("time") or 0),
                        "kind": fields.get("kind", ""), "room_id": fields.get("room_id", ""),
                        "ticket_number": fields.get("ticket_number", ""),
                        "department": department, "detail": fields.get("detail", ""),
                        "acknowledged": ack is not None,
                        "acknowledged_by": ack["by"] if ack else None,
                        "acknowledged_at": ack["at"] if ack else None})
            if len(out) >= limit:
                break
        return out

    async def get(self, alert_id: str) -> dict[str, Any] | None:
        rows = await self.redis.xrange(ALERTS, min=alert_id, max=alert_id, count=1)
        if not rows:
            return None
        _, fields = rows[0]
        return {"id": alert_id, **fields}

    async def acknowledge(self, alert_id: str, who: str) -> bool:
        """Mark an alert seen; False when it was already acknowledged."""
        added: int = await self.redis.hsetnx(ACKS, alert_id,
                                             json.dumps({"by": who, "at": self.clock()}))
        return bool(added)

