"""The service's one audit log, tamper-evident: every entry of the Redis stream ``yz:audit`` carries
its sequence number, the previous entry's MAC and its own HMAC-SHA-256, so an edited, deleted or
reordered entry breaks the chain and `verify` names the first break. Trimmed by age, never by
length; the anchor left by trimming lets the chain start after the entries that were let go.

Key layout (the values are strings; every MAC is hex HMAC-SHA-256 with the audit key):
  yz:audit         stream  seq, prev (the MAC of entry seq-1; "" for seq 1), time, who, action,
                           recording_id, department, remote, detail, target, before, after
                           (JSON or ""), mac = MAC(canonical(every field but mac))
  yz:audit:head    hash    seq, mac, id (stream id) of the newest entry; sig = MAC of seq and mac.
                           Moved only by the append script, together with the XADD.
  yz:audit:anchor  hash    seq, mac, id, time of the newest trimmed entry; sig = MAC of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

AUDIT = "yz:audit"
HEAD = "yz:audit:head"
ANCHOR = "yz:audit:anchor"
AUDIT_KEEP_DAYS = 190
MIN_KEY_BYTES = 32
# The fields an entry records besides its place in the chain (seq, prev) and its mac.
FIELDS = ("time", "who", "action", "recording_id", "department", "remote", "detail", "target",
          "before", "after")
PAGE = 1000
# Appends lost to another process's append before giving up. Each loss is another process's
# progress, and the loser waits a random pause of up to BACKOFF * 2**loss (at most 64 ms) before
# trying again, so this is only reached if Redis is being tampered with or hammered.
MAX_TRIES = 100
BACKOFF = 0.001

# Appends only on top of the head the caller built its entry on: the XADD and the head move
# together, or nothing happens and the caller learns the real head. Says whether the oldest entry
# has passed the retention age (ARGV[6], ms), so the caller trims only when there is work.
_APPEND = """
local head = redis.call('hmget', KEYS[2], 'seq', 'mac')
local seq, mac = head[1] or '0', head[2] or ''
if seq ~= ARGV[1] or mac ~= ARGV[2] then return {0, seq, mac} end
local id = redis.call('xadd', KEYS[1], '*', unpack(ARGV, 7))
redis.call('hset', KEYS[2], 'seq', ARGV[3], 'mac', ARGV[4], 'id', id, 'sig', ARGV[5])
local first = redis.call('xrange', KEYS[1], '-', '+', 'COUNT', 1)
local stale = 0
if first[1] and tonumber(string.match(first[1][1], '^%d+')) < tonumber(ARGV[6]) then
  stale = 1
end
return {1, id, stale}
"""
# Moves the anchor to the entry ARGV[1] and trims everything up to it, in one step; an anchor
# never moves back (two processes trimming at once).
_TRIM = """
local current = redis.call('hget', KEYS[2], 'seq')
if current and tonumber(current) >= tonumber(ARGV[2]) then return 0 end
if not redis.call('xrange', KEYS[1], ARGV[1], ARGV[1])[1] then return 0 end
redis.call('hset', KEYS[2], 'seq', ARGV[2], 'mac', ARGV[3], 'id', ARGV[1], 'time', ARGV[4],
           'sig', ARGV[5])
return redis.call('xtrim', KEYS[1], 'MINID', ARGV[6])
"""


def _mac(key: bytes, kind: str, fields: Mapping[str, str]) -> str:
    """The MAC of one record: its kind (entry, head, anchor) and its fields, canonically encoded
    (sorted keys, compact JSON, UTF-8), so that any change of a name or value changes it."""
    body = json.dumps(dict(fields), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(key, f"yz-audit-{kind}\n{body}".encode(), hashlib.sha256).hexdigest()


def entry_mac(key: bytes, fields: Mapping[str, str]) -> str:
    return _mac(key, "entry", {k: v for k, v in fields.items() if k != "mac"})


def head_sig(key: bytes, seq: str, mac: str) -> str:
    return _mac(key, "head", {"seq": seq, "mac": mac})


def anchor_sig(key: bytes, anchor: Mapping[str, str]) -> str:
    return _mac(key, "anchor", {k: anchor.get(k, "") for k in ("seq", "mac", "id", "time")})


def _seq(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


@dataclass(frozen=True)
class Problem:
    """Where the chain breaks: ``kind`` is one of edited (the MAC does not match the fields),
    missing (a gap in seq: deleted), reordered (seq out of order), link (prev is not the MAC of
    the entry before: replaced), truncated (the head is past the last entry: deleted at the end),
    head (the head is missing, forged or behind the stream), anchor (the anchor is forged)."""

    kind: str
    entry_id: str
    seq: int | None
    time: float | None
    message: str


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int  # entries read
    problems: int  # breaks found (the first is `first`; later ones may follow from it)
    first: Problem | None
    head_seq: int
    anchor_seq: int  # 0: never trimmed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.first is None:
            start = f" (from seq {self.anchor_seq + 1}, older ones trimmed)" \
                if self.anchor_seq else ""
            return f"OK: {self.entries} entr{'y' if self.entries == 1 else 'ies'}{start}, " \
                   f"head seq {self.head_seq}"
        first = self.first
        return f"BROKEN ({first.kind}): entry {first.entry_id or '-'} seq {first.seq} " \
               f"time {first.time if first.time is not None else '-'}: {first.message}"


class ChainCheck:
    """Walks the stream in order (pure: no Redis, no asyncio): `feed` each entry, then `finish`
    with the head. Keeps going after a break, resynchronised on the entry that broke, to count
    the breaks and to tell a reordered entry (it turns up later) from a deleted one."""

    def __init__(self, key: bytes, anchor: Mapping[str, str]) -> None:
        self.key = key
        self.entries = 0
        self.problems = 0
        self.first: Problem | None = None
        self.next_seq = 1
        self.prev = ""
        self.last_id = ""
        self.anchor_seq = 0
        self._gap: tuple[int, int] | None = None  # seqs the first problem says are missing
        if anchor:
            seq = _seq(anchor.get("seq"))
            if seq is None or not hmac.compare_digest(anchor.get("sig", ""),
                                                      anchor_sig(key, anchor)):
                self._problem("anchor", anchor.get("id", ""), seq, _time(anchor.get("time")),
                              "the trimming anchor is not the one the service wrote (forged "
                              "or edited)")
            else:
                self.anchor_seq, self.next_seq, self.prev = seq, seq + 1, anchor.get("mac", "")

    def _problem(self, kind: str, entry_id: str, seq: int | None, when: float | None,
                 message: str) -> None:
        self.problems += 1
        if self.first is None:
            self.first = Problem(kind, entry_id, seq, when, message)

    def feed(self, entry_id: str, fields: Mapping[str, str]) -> None:
        self.entries += 1
        self.last_id = entry_id
        seq, when = _seq(fields.get("seq")), _time(fields.get("time"))
        mac = fields.get("mac", "")
        if seq is None or not hmac.compare_digest(mac, entry_mac(self.key, fields)):
            self._problem("edited", entry_id, seq, when,
                          "its MAC does not match its fields (edited, or written without the "
                          "key)")
        elif seq > self.next_seq:
            self._problem("missing", entry_id, seq, when,
                          f"seq {self.next_seq}–{seq - 1} missing before it (deleted)"
                          if seq - 1 > self.next_seq else
                          f"seq {self.next_seq} missing before it (deleted)")
            if self.problems == 1:
                self._gap = (self.next_seq, seq - 1)
        elif seq < self.next_seq:
            if self._gap and self._gap[0] <= seq <= self._gap[1] and self.first is not None:
                # The entry the first problem called missing is here, later: moved, not deleted.
                self.first = Problem("reordered", self.first.entry_id, self.first.seq,
                                     self.first.time,
                                     f"out of order: seq {self._gap[0]} was expected here and "
                                     "comes later")
                self._gap = None
            self._problem("reordered", entry_id, seq, when,
                          f"seq {seq} comes after seq {self.next_seq - 1} (out of order or "
                          "repeated)")
        elif not hmac.compare_digest(fields.get("prev", ""), self.prev):
            self._problem("link", entry_id, seq, when,
                          "its prev is not the MAC of the entry before it (entries replaced "
                          "or reordered)")
        # Resynchronise on this entry (unless it is one that came back out of order), so one
        # break is reported once.
        if seq is not None and seq >= self.next_seq:
            self.next_seq, self.prev = seq + 1, mac

    def finish(self, head: Mapping[str, str]) -> ChainReport:
        last_seq = self.next_seq - 1
        head_seq = _seq(head.get("seq")) if head else None
        if not head:
            if self.entries or self.anchor_seq:
                self._problem("head", "", None, None, "the chain head is missing (deleted)")
        elif head_seq is None or not hmac.compare_digest(
                head.get("sig", ""), head_sig(self.key, head.get("seq", ""),
                                              head.get("mac", ""))):
            self._problem("head", head.get("id", ""), head_seq, None,
                          "the chain head is not the one the service wrote (forged or edited)")
        elif head_seq > last_seq:
            self._problem("truncated", head.get("id", ""), head_seq, None,
                          f"seq {last_seq + 1}–{head_seq} missing at the end (deleted)"
                          if head_seq > last_seq + 1 else
                          f"the last entry (seq {head_seq}) is missing (deleted)")
        elif head_seq < last_seq:
            self._problem("head", self.last_id, last_seq, None,
                          f"the stream goes on past the head (seq {head_seq}): entries added "
                          "outside the service")
        elif not hmac.compare_digest(head.get("mac", ""), self.prev):
            self._problem("link", self.last_id, last_seq, None,
                          "the last entry is not the one the head names (replaced)")
        return ChainReport(ok=self.first is None, entries=self.entries, problems=self.problems,
                           first=self.first, head_seq=head_seq or 0,
                           anchor_seq=self.anchor_seq)


def _time(value: str | None) -> float | None:
    try:
        return float(value or "")
    except ValueError:
        return None


class Audit:
    """Appends to and reads the audit log. One instance per process (appends are serialised
    here, so that only other processes compete for the head)."""

    def __init__(self, redis: aioredis.Redis, key: bytes, clock: Callable[[], float] = time.time,
                 keep_days: int = AUDIT_KEEP_DAYS) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the audit key must be at least {MIN_KEY_BYTES} bytes")
        self.redis: Any = redis  # decode_responses=True: replies are str
        self.key = key
        self.clock = clock
        self.keep_days = max(keep_days, AUDIT_KEEP_DAYS)
        self._append = redis.register_script(_APPEND)
        self._trim = redis.register_script(_TRIM)
        self._lock = asyncio.Lock()
        self._head: tuple[str, str] = ("0", "")  # a guess; the append script corrects it

    async def append(self, who: str, action: str, *, recording_id: str = "", remote: str = "",
                     department: str = "", detail: str = "", target: str = "",
                     before: Mapping[str, Any] | None = None,
                     after: Mapping[str, Any] | None = None) -> str:
        """One entry: ``who`` did ``action`` (to ``target``: an account, a department, a
        setting; or to ``recording_id``) from ``remote``; ``before``/``after``: the changed
        thing's state either side of a change, stored as JSON. Returns its stream id."""
        now = self.clock()
        record = {
            "time": f"{now:.3f}", "who": who, "action": action, "recording_id": recording_id,
            "department": department, "remote": remote or "", "detail": detail,
            "target": target,
            "before": json.dumps(before, ensure_ascii=False, sort_keys=True) if before else "",
            "after": json.dumps(after, ensure_ascii=False, sort_keys=True) if after else "",
        }
        # Ids come from the Redis server's clock (always increasing); the entry's own time is
        # a field. Entries with ids older than keep_days are trimmed, whatever the volume.
        oldest = int((now - self.keep_days * 86400) * 1000)
        async with self._lock:
            for attempt in range(MAX_TRIES):
                seq, prev = self._head
                number = _seq(seq)
                if number is None:
                    # A head nobody here wrote: keep recording (verify reports the break).
                    logger.error("audit: the chain head's seq %r is not a number", seq)
                    number = 0
                fields = {"seq": str(number + 1), "prev": prev, **record}
                mac = entry_mac(self.key, fields)
                flat = [item for pair in {**fields, "mac": mac}.items() for item in pair]
                answer = await self._append(
                    keys=[AUDIT, HEAD],
                    args=[seq, prev, fields["seq"], mac, head_sig(self.key, fields["seq"], mac),
                          oldest, *flat])
                if answer[0] == 1:
                    self._head = (fields["seq"], mac)
                    if answer[2] == 1:
                        await self._trim_before(oldest)
                    return str(answer[1])
                # Another process appended first: build on its entry, after a random pause
                # that grows with each loss, so that a busy appender cannot starve this one
                # (without it, two processes appending in a loop can take turns losing).
                self._head = (str(answer[1]), str(answer[2]))
                await asyncio.sleep(random.uniform(0, BACKOFF * 2 ** min(attempt, 6)))
        raise RuntimeError(f"audit append: the head moved {MAX_TRIES} times in a row")

    async def _trim_before(self, oldest_ms: int) -> None:
        """Let go of the entries older than ``oldest_ms``, leaving the anchor at the newest of
        them. An entry that does not verify is not anchored (that would sign over a forgery):
        the entries stay, and verify keeps reporting them."""
        rows = await self.redis.xrevrange(AUDIT, max=str(oldest_ms - 1), min="-", count=1)
        if not rows:
            return
        entry_id, fields = rows[0]
        if not hmac.compare_digest(fields.get("mac", ""), entry_mac(self.key, fields)) \
                or _seq(fields.get("seq")) is None:
            logger.error("audit: entry %s does not verify; not trimming past it", entry_id)
            return
        anchor = {"seq": fields["seq"], "mac": fields["mac"], "id": entry_id,
                  "time": fields.get("time", "")}
        ms, _, part = entry_id.partition("-")
        trimmed = await self._trim(keys=[AUDIT, ANCHOR], args=[
            entry_id, anchor["seq"], anchor["mac"], anchor["time"], anchor_sig(self.key, anchor),
            f"{ms}-{int(part or 0) + 1}"])
        if trimmed:
            logger.info("audit: %s entr%s older than %d days trimmed (anchor seq %s)", trimmed,
                        "y" if trimmed == 1 else "ies", self.keep_days, anchor["seq"])

    async def scan(self, start: float | None = None, end: float | None = None, *,
                   who: str = "", action: str = "") -> AsyncIterator[dict[str, str]]:
        """Entries between two times (by their stream id, the Redis server's clock), newest
        first, with ``who`` and ``action`` when given (exact match); each with its ``id``."""
        upper = str(int(end * 1000)) if end is not None else "+"
        lower = str(int(start * 1000)) if start is not None else "-"
        while True:
            rows = await self.redis.xrevrange(AUDIT, max=upper, min=lower, count=PAGE)
            for entry_id, fields in rows:
                if (who and fields.get("who") != who) or \
                        (action and fields.get("action") != action):
                    continue
                yield {"id": entry_id, **fields}
            if len(rows) < PAGE:
                return
            upper = f"({rows[-1][0]}"

    async def entries(self, start: float | None = None, end: float | None = None, *,
                      who: str = "", action: str = "", limit: int = 200) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        async for entry in self.scan(start, end, who=who, action=action):
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    async def verify(self) -> ChainReport:
        """Walk the whole log from the anchor (or seq 1) to the head. The MACs are checked in a
        thread, page by page, so a long log does not hold up the event loop."""
        for _ in range(2):
            anchor, report = await self._verify_once()
            # A trim between reading the anchor and the first page looks like deleted entries:
            # believe a break only if the anchor stood still meanwhile.
            if report.ok or await self.redis.hgetall(ANCHOR) == anchor:
                return report
        return (await self._verify_once())[1]

    async def _verify_once(self) -> tuple[dict[str, str], ChainReport]:
        anchor: dict[str, str] = await self.redis.hgetall(ANCHOR)
        check = ChainCheck(self.key, anchor)
        await self._walk(check, "-")
        head: dict[str, str] = {}
        # Entries appended while the walk went on are read too, up to the head.
        for _ in range(5):
            head = await self.redis.hgetall(HEAD)
            seq = _seq(head.get("seq"))
            if seq is None or seq <= check.next_seq - 1:
                break
            if not await self._walk(check, f"({check.last_id}" if check.last_id else "-"):
                break
        return anchor, check.finish(head)

    async def _walk(self, check: ChainCheck, start: str) -> int:
        """Feed ``check`` the entries from ``start`` on; the number read."""
        read = 0
        while True:
            rows = await self.redis.xrange(AUDIT, min=start, max="+", count=PAGE)
            if rows:
                await asyncio.to_thread(_feed, check, rows)
                read += len(rows)
            if len(rows) < PAGE:
                return read
            start = f"({rows[-1][0]}"


def _feed(check: ChainCheck, rows: Iterable[tuple[str, Mapping[str, str]]]) -> None:
    for entry_id, fields in rows:
        check.feed(entry_id, fields)
