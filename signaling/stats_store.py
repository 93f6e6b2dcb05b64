"""Statistics in Redis: the consumer that reads the queue log from its cursor and adds into the
day and month rollups (one process at a time; the cursor moves in the same transaction as the
counts, so nothing is counted twice), and the reader that sums rollups and cases for a view."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import time
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from signaling import keys
from signaling.redis_watch import UNAVAILABLE
from signaling.stats import (
    CASE_FIELDS,
    Tally,
    TicketContext,
    case_counts,
    days,
    empty_row,
    merge,
    period_of,
    view,
)

logger = logging.getLogger(__name__)

# Rollups live this long after their last change: a year's view (and a bit) always finds them.
KEEP_S = 401 * 86400
# A ticket's context (its ENTER's day and hall) is kept this long for its later entries.
TICKET_CONTEXT_S = 3 * 86400
BATCH = 2000
LOCK_S = 30
INTERVAL_S = 2.0
MAX_DAYS = 400
# The fields of a case hash the statistics read.
CASE_READ = ("department", "hall", "opened_at", "due", "state", "closed_at")
CASE_SEPARATOR = chr(31)  # the script joins with string.char(31)
# KEYS[1]: the cases index; ARGV: from, to (epoch, to excluded), the case key prefix, the
# departments (comma list, '' for all), '1' for every hall or '0' and the hall. Answers one
# string per case: its CASE_READ fields joined by CASE_SEPARATOR.
CASES_SCRIPT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '(' .. ARGV[2])
local wanted = nil
if ARGV[4] ~= '' then
  wanted = {}
  for dept in string.gmatch(ARGV[4], '[^,]+') do wanted[dept] = true end
end
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[3] .. id, 'department', 'hall', 'opened_at', 'due',
                       'state', 'closed_at')
  for i = 1, 6 do f[i] = f[i] or '' end
  if (wanted == nil or wanted[f[1]]) and (ARGV[5] == '1' or f[2] == ARGV[6]) then
    table.insert(out, table.concat(f, string.char(31)))
  end
end
return out
"""
# Rollups summed by one script call (each call blocks Redis for its run: a few milliseconds).
SUM_CHUNK = 2000
# KEYS: rollup hashes; ARGV: (label, department, hall) of each. Answers three lists (by label,
# by department, by hall) of {name, field, count, ...}; counters are integers.
SUM_SCRIPT = """
local groups = {{}, {}, {}}
local order = {{}, {}, {}}
for i, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  for g = 1, 3 do
    local name = ARGV[3 * (i - 1) + g]
    local sums = groups[g][name]
    if not sums then
      sums = {}
      groups[g][name] = sums
      table.insert(order[g], name)
    end
    for j = 1, #flat, 2 do
      sums[flat[j]] = (sums[flat[j]] or 0) + tonumber(flat[j + 1])
    end
  end
end
local out = {}
for g = 1, 3 do
  local list = {}
  for _, name in ipairs(order[g]) do
    local row = {name}
    for field, count in pairs(groups[g][name]) do
      table.insert(row, field)
      table.insert(row, count)
    end
    table.insert(list, row)
  end
  table.insert(out, list)
end
return out
"""


# The rollups of a day and of a month (monthly: True) by (period, department, hall).
STATS_KEY = {False: keys.STATS_DAY, True: keys.STATS_MONTH}


def write_tally(pipe: Any, tally: Tally) -> None:
    """Queue the tally's counts (day and month rollups, their cell indexes) and the changed
    ticket contexts on a pipeline: the one write path of the consumer (and of the benchmark)."""
    for cell, counts in tally.counts.items():
        member = json.dumps([cell.department, cell.hall], ensure_ascii=False)
        for monthly in (False, True):
            period = cell.month if monthly else cell.day
            key = STATS_KEY[monthly](period, cell.department, cell.hall)
            for name, n in counts.items():
                pipe.hincrby(key, name, n)
            pipe.expire(key, KEEP_S)
            index = keys.STATS_CELLS(period)
            pipe.sadd(index, member)
            pipe.expire(index, KEEP_S)
    for ticket in tally.changed:
        context = tally.contexts[ticket]
        pipe.hset(keys.STATS_TICKET(ticket), mapping=context.fields())
        pipe.expire(keys.STATS_TICKET(ticket), TICKET_CONTEXT_S)


class StatsConsumer:
    """Reads yz:log after the cursor, in batches, into the rollups. Run by every process; the
    lock (with expiry) lets one work at a time, and the WATCH on the cursor makes a batch that
    another process counted meanwhile count nowhere."""

    def __init__(self, redis: aioredis.Redis, zone: zoneinfo.ZoneInfo, node: str = "",
                 batch: int = BATCH) -> None:
        self._redis, self._zone, self._batch = redis, zone, batch
        self._token = node or secrets.token_hex(6)

    async def _hold_lock(self) -> bool:
        if await self._redis.set(keys.STATS_LOCK, self._token, nx=True, ex=LOCK_S):
            return True
        if await self._redis.get(keys.STATS_LOCK) == self._token:
            await self._redis.expire(keys.STATS_LOCK, LOCK_S)
            return True
        return False

    async def release(self) -> None:
        if await self._redis.get(keys.STATS_LOCK) == self._token:
            await self._redis.delete(keys.STATS_LOCK)

    async def step(self) -> int:
        """Count one batch after the cursor; returns the entries counted (0: none, or another
        process holds the lock or moved the cursor first)."""
        async with self._redis.pipeline(transaction=True) as pipeline:
            pipe: Any = pipeline  # decode_responses: str answers, which redis-py cannot type
            await pipe.watch(keys.STATS_CURSOR)
            cursor = await pipe.get(keys.STATS_CURSOR) or "0-0"
            entries: list[tuple[str, dict[str, str]]] = await pipe.xrange(
                keys.LOG, min=f"({cursor}", count=self._batch)
            if not entries:
                return 0
            if cursor == "0-0" or not await self._continuous(pipe, cursor):
                logger.info("stats: counting the queue log from %s", entries[0][0])
            tally = Tally(self._zone)
            tickets = sorted({fields.get("ticket", "") for _, fields in entries} - {""})
            # Read on another connection, in one round trip: contexts are written only with a
            # move of the cursor, which the WATCH catches.
            async with self._redis.pipeline(transaction=False) as reads:
                for ticket in tickets:
                    reads.hgetall(keys.STATS_TICKET(ticket))
                found = await reads.execute()
            for ticket, data in zip(tickets, found, strict=True):
                context = TicketContext.from_fields(data)
                if context is not None:
                    tally.contexts[ticket] = context
            for _, fields in entries:
                tally.fold(fields)
            pipe.multi()
            write_tally(pipe, tally)
            pipe.set(keys.STATS_CURSOR, entries[-1][0])
            try:
                await pipe.execute()
            except WatchError:
                logger.info("stats: another process counted from %s first", cursor)
                return 0
        return len(entries)

    async def _continuous(self, pipe: Any, cursor: str) -> bool:
        """False when the log was trimmed past the cursor (entries were lost uncounted)."""
        first = await pipe.xrange(keys.LOG, count=1)
        if first and _stream_id(first[0][0]) > _stream_id(cursor):
            logger.warning("stats: the queue log was trimmed past the cursor %s; entries up to "
                           "%s were never counted", cursor, first[0][0])
            return False
        return True

    async def catch_up(self) -> int:
        """Count everything in the log now (if this process holds the lock); the total."""
        total = 0
        if not await self._hold_lock():
            return 0
        while n := await self.step():
            total += n
            await self._hold_lock()
        return total

    async def run(self, interval: float = INTERVAL_S) -> None:
        """The background loop (server/app.py): catch up every ``interval``."""
        try:
            while True:
                try:
                    counted = await self.catch_up()
                    if counted:
                        logger.debug("stats: %d queue-log entries counted", counted)
                except UNAVAILABLE:
                    pass  # Redis is away: the Redis watch says it once
                except RedisError as exc:
                    logger.warning("stats: counting failed (%s); trying again", exc)
                await asyncio.sleep(interval)
        finally:
            try:
                await asyncio.shield(self.release())
            except (RedisError, OSError, asyncio.CancelledError):
                pass


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class StatsQuery:
    start: dt.date
    end: dt.date
    group: str
    departments: frozenset[str] | None  # None: all
    hall: str | None  # None: all


def _periods(query: StatsQuery) -> list[tuple[str, bool, list[dt.date]]]:
    """The rollups to read: (period, monthly, its days). A month view reads whole months from
    the month rollups, the days of partial months from the day rollups."""
    out: list[tuple[str, bool, list[dt.date]]] = []
    all_days = list(days(query.start, query.end))
    if query.group != "month":
        return [(d.isoformat(), False, [d]) for d in all_days]
    by_month: dict[str, list[dt.date]] = {}
    for d in all_days:
        by_month.setdefault(d.isoformat()[:7], []).append(d)
    for month, month_days in by_month.items():
        first = month_days[0].replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        if len(month_days) == (following - first).days:
            out.append((month, True, month_days))
        else:
            out += [(d.isoformat(), False, [d]) for d in month_days]
    return out


class StatsReader:
    """Sums the rollups of a range into rows by period, department and hall, plus the cases."""

    def __init__(self, redis: aioredis.Redis, zone: zoneinfo.ZoneInfo,
                 now: Callable[[], float] = time.time) -> None:
        self._redis, self._zone, self._now = redis, zone, now

    def _wanted(self, query: StatsQuery, department: str, hall: str) -> bool:
        return ((query.departments is None or department in query.departments)
                and (query.hall is None or hall == query.hall))

    async def summary(self, query: StatsQuery) -> dict[str, Any]:
        periods = _periods(query)
        async with self._redis.pipeline(transaction=False) as pipe:
            for period, _, _ in periods:
                pipe.smembers(keys.STATS_CELLS(period))
            members = await pipe.execute()
        rollups: list[str] = []
        names: list[str] = []  # (label, department, hall) of each rollup, flat
        halls: set[str] = set()
        for (period, monthly, period_days), cells in zip(periods, members, strict=True):
            label = period_of(period_days[0], query.group)
            for member in cells:
                department, hall = json.loads(member)
                if query.departments is None or department in query.departments:
                    halls.add(hall)
                if self._wanted(query, department, hall):
                    rollups.append(STATS_KEY[monthly](period, department, hall))
                    names += [label, department, hall]
        rows: dict[str, dict[str, int]] = {
            period_of(d, query.group): empty_row() for d in days(query.start, query.end)}
        by_department: dict[str, dict[str, int]] = {}
        by_hall: dict[str, dict[str, int]] = {}
        total = empty_row()
        sums = await self._sum(rollups, names) if rollups else [[], [], []]
        for group, found in zip((rows, by_department, by_hall), sums, strict=True):
            for name, *flat in found:
                if name not in group:
                    group[name] = empty_row()
                merge(group[name], dict(zip(flat[::2], flat[1::2], strict=True)))
        for row in rows.values():
            merge(total, row)
        for label, department, hall, counts in await self._cases(query):
            for group, name in ((by_department, department), (by_hall, hall)):
                if name not in group:
                    group[name] = empty_row()
            for row in (rows[label], by_department[department], by_hall[hall], total):
                for field in CASE_FIELDS:
                    row[field] += counts[field]
        return {
            "from": query.start.isoformat(), "to": query.end.isoformat(), "group": query.group,
            "rows": [{"period": label, **view(row)} for label, row in rows.items()],
            "departments": [{"department": d, **view(row)}
                            for d, row in sorted(by_department.items())],
            "halls": [{"hall": h, **view(row)} for h, row in sorted(by_hall.items())],
            "hall_names": sorted(halls),
            "totals": view(total),
        }

    async def _sum(self, rollups: list[str], names: list[str]) -> list[list[list[Any]]]:
        """The rollups summed inside Redis by period label, department and hall: three lists
        of [name, field, count, field, count, ...]. Summing there, not here, keeps a year by
        day (thousands of hashes) from being sent and parsed field by field."""
        for start in range(0, len(rollups), SUM_CHUNK):
            part = await self._redis.eval(SUM_SCRIPT, len(rollups[start:start + SUM_CHUNK]),
                                          *rollups[start:start + SUM_CHUNK],
                                          *names[3 * start:3 * (start + SUM_CHUNK)])
            if start == 0:
                sums: list[list[list[Any]]] = part
            else:
                for mine, more in zip(sums, part, strict=True):
                    mine += more
        return sums

    async def _cases(self, query: StatsQuery) -> Iterable[tuple[str, str, str, dict[str, int]]]:
        """The bad-rating cases opened in the range, of the departments and hall asked for
        (picked inside Redis: one string per case comes back, not a hash)."""
        start = dt.datetime.combine(query.start, dt.time(), self._zone).timestamp()
        end = dt.datetime.combine(query.end + dt.timedelta(days=1), dt.time(),
                                  self._zone).timestamp()
        found = await self._redis.eval(
            CASES_SCRIPT, 1, keys.CASES, repr(start), repr(end), keys.CASE(""),
            ",".join(sorted(query.departments or ())), "1" if query.hall is None else "0",
            query.hall or "")
        today = dt.datetime.fromtimestamp(self._now(), self._zone).date()
        out = []
        for line in found:
            case = dict(zip(CASE_READ, line.split(CASE_SEPARATOR), strict=True))
            try:
                opened = dt.datetime.fromtimestamp(float(case["opened_at"]), self._zone)
            except ValueError:
                continue
            out.append((period_of(opened.date(), query.group), case["department"], case["hall"],
                        case_counts(case, today, self._zone)))
        return out

