"""Appointments (预约): each department's booking rules (set by the admin, audited), the slots
offered, booking a slot atomically (never more bookings than its capacity), the booking codes
and their arrival checks, the no-show release, and the lists for the admin and the desks. The key
layout is in signaling/keys.py; taking the ticket itself is the queue script's (op enqueue)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from recordings.audit import Audit
from rooms.config import ConfigError
from signaling import keys
from signaling.config import SignalingConfig
from signaling.errors import SignalError
from signaling.privacy import mask_phone
from signaling.redis_watch import UNAVAILABLE
from signaling.slots import Arrival, BookingRules, arrival, build_slots
from signaling.store import Store

logger = logging.getLogger(__name__)

# Codes are typed at a kiosk: no 0/O, 1/I/L. 31^8 codes, so guessing one is hopeless.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
# A booking (with the applicant's name and phone) is kept this long after its slot, then expires.
KEEP_DAYS = 30
NO_SHOW_INTERVAL = 30.0


class BookingStatus:
    BOOKED = "booked"
    ARRIVED = "arrived"
    NO_SHOW = "no_show"


# KEYS: rules, slot set, booking, day index, pending. ARGV: code, slot start, slot end,
# department, name, phone, consent_version, created_at, expire_at (epoch), pending score.
_BOOK = """
local capacity = tonumber(redis.call('HGET', KEYS[1], 'capacity') or '0')
if capacity <= 0 then return 'closed' end
if redis.call('EXISTS', KEYS[3]) == 1 then return 'exists' end
if redis.call('SCARD', KEYS[2]) >= capacity then return 'full' end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIREAT', KEYS[2], ARGV[9])
redis.call('HSET', KEYS[3], 'code', ARGV[1], 'slot', ARGV[2], 'slot_end', ARGV[3],
           'department', ARGV[4], 'name', ARGV[5], 'phone', ARGV[6], 'consent_version', ARGV[7],
           'created_at', ARGV[8], 'status', 'booked', 'ticket_id', '')
redis.call('EXPIREAT', KEYS[3], ARGV[9])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('EXPIREAT', KEYS[4], ARGV[9])
redis.call('ZADD', KEYS[5], ARGV[10], ARGV[1])
return 'ok'
"""

# KEYS: booking, slot set, pending. ARGV: code, now. A booking still waiting for its applicant
# is marked no-show and its place in the slot given back; an arrived one only leaves pending.
_NO_SHOW = """
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') ~= 'booked' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'no_show', 'released_at', ARGV[2])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class Booking:
    code: str
    department: str
    slot: float  # epoch seconds of the slot's start
    slot_end: float
    name: str
    phone: str
    status: str
    created_at: float
    ticket_id: str = ""
    consent_version: str = ""

    @classmethod
    def from_hash(cls, row: dict[str, str]) -> Booking:
        return cls(code=row["code"], department=row["department"], slot=float(row["slot"]),
                   slot_end=float(row["slot_end"]), name=row.get("name", ""),
                   phone=row.get("phone", ""), status=row.get("status", BookingStatus.BOOKED),
                   created_at=float(row.get("created_at") or 0),
                   ticket_id=row.get("ticket_id", ""),
                   consent_version=row.get("consent_version", ""))

    def view(self, zone: dt.tzinfo) -> dict[str, Any]:
        """As anyone but the applicant sees it: the name's first character and the phone
        masked (a hall screen and a desk are seen by others); `time` is the slot's start on
        the hall's clock (`zone`), HH:MM, whatever the browser's own zone."""
        start = dt.datetime.fromtimestamp(self.slot, zone)
        return {"code": self.code, "department": self.department, "slot": self.slot,
                "slot_end": self.slot_end, "day": start.date().isoformat(),
                "time": start.strftime("%H:%M"), "status": self.status,
                "ticket_id": self.ticket_id, "name": mask_name(self.name),
                "phone": mask_phone(self.phone)}


def mask_name(name: str) -> str:
    """张三丰 → 张**: the family name (first character) only."""
    return name[:1] + "*" * (len(name) - 1) if name else ""


def log_code(code: str) -> str:
    """A code in the logs: enough to tell bookings apart, not enough to take the ticket."""
    return code[:3] + "…"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """What the applicant typed, as stored: upper case, spaces and dashes dropped."""
    return "".join(c for c in text.upper() if c not in " -")


class Bookings:
    def __init__(self, redis: aioredis.Redis, store: Store, config: SignalingConfig,
                 audit: Audit, now: Callable[[], float] = time.time) -> None:
        self.redis: Any = redis
        self._store, self._config, self._audit, self._now = store, config, audit, now
        self._calendar = config.calendar()
        self._book = redis.register_script(_BOOK)
        self._no_show = redis.register_script(_NO_SHOW)

    # the admin's rules ------------------------------------------------------------------------
    async def rules(self, dept_id: str) -> BookingRules:
        row = await self.redis.hgetall(keys.BOOKING_RULES(dept_id))
        return BookingRules(**{k: int(v) for k, v in row.items()
                               if k in BookingRules.__dataclass_fields__})

    async def set_rules(self, who: str, dept_id: str, data: Any, remote: str = "") -> BookingRules:
        if await self._store.department(dept_id) is None:
            raise SignalError("unknown_department", dept_id)
        before = await self.rules(dept_id)
        try:
            rules = BookingRules.from_dict({**before.to_dict(), **(data or {})}
                                           if isinstance(data, dict) else data)
        except (ConfigError, TypeError) as error:
            raise SignalError("invalid_payload.booking_rules", str(error),
                              reason=str(error)) from None
        await self.redis.hset(keys.BOOKING_RULES(dept_id), mapping=rules.to_dict())
        await self._audit.append(who, "booking_rules", department=dept_id, remote=remote,
                                 target=dept_id, before=before.to_dict(), after=rules.to_dict())
        logger.info("booking rules of %s set by %s: %s", dept_id, who, rules.to_dict())
        return rules

    # slots and booking -----------------------------------------------------------------------
    async def slots(self, dept_id: str) -> list[dict[str, Any]]:
        """The slots offered now, each with its free places."""
        dept = await self._store.department(dept_id)
        if dept is None:
            raise SignalError("unknown_department", dept_id)
        rules = await self.rules(dept_id)
        slots = build_slots(dept, rules, self._calendar, self._config.local_time(self._now()))
        out = []
        for slot in slots:
            start = int(slot.start.timestamp())
            taken = await self.redis.scard(keys.BOOKING_SLOT(dept_id, str(start)))
            out.append({"start": start, "end": int(slot.end.timestamp()),
                        "label": slot.start.strftime("%Y-%m-%d %H:%M"),
                        "free": max(rules.capacity - int(taken), 0)})
        return out

    async def book(self, dept_id: str, start: int, name: str, phone: str,
                   consent_version: str) -> Booking:
        """Book the slot starting at `start` (epoch seconds); refused when it is not offered
        (any more), or full. Atomic: the capacity is checked and taken in one script."""
        offered = {s["start"]: s for s in await self.slots(dept_id)}
        slot = offered.get(start)
        if slot is None:
            raise SignalError("booking_slot", str(start))
        now = self._now()
        expire_at = int(slot["end"] + KEEP_DAYS * 86400)
        rules = await self.rules(dept_id)
        day = self._config.local_time(start).date().isoformat()
        for _ in range(3):  # a code already taken (vanishingly rare): draw another
            code = new_code()
            answer = await self._book(
                keys=[keys.BOOKING_RULES(dept_id), keys.BOOKING_SLOT(dept_id, str(start)),
                      keys.BOOKING(code), keys.BOOKINGS_DAY(day), keys.BOOKINGS_PENDING],
                args=[code, start, slot["end"], dept_id, name, phone, consent_version, now,
                      expire_at, start + rules.late_minutes * 60])
            if answer == "ok":
                logger.info("booking %s: %s at %s for %s (%s)", log_code(code), dept_id,
                            slot["label"], mask_name(name), mask_phone(phone))
                booking = await self.get(code)
                assert booking is not None
                return booking
            if answer == "full":
                raise SignalError("booking_full", slot["label"])
            if answer == "closed":
                raise SignalError("booking_slot", str(start))
        raise SignalError("booking_slot", str(start))

    async def get(self, code: str) -> Booking | None:
        code = normalize_code(code)
        if not code or len(code) > 16:
            return None
        row = await self.redis.hgetall(keys.BOOKING(code))
        return Booking.from_hash(row) if row else None

    async def for_arrival(self, code: str) -> Booking:
        """The booking an applicant arrives with, if they may take its ticket now: unknown,
        used (or released), too early and too late are refused, each with its own text."""
        booking = await self.get(code)
        if booking is None:
            raise SignalError("booking_unknown", code)
        if booking.status != BookingStatus.BOOKED:
            raise SignalError("booking_used", booking.status)
        rules = await self.rules(booking.department)
        now = self._now()
        when = arrival(booking.slot, now, rules)
        slot_time = self._config.local_time(booking.slot).strftime("%H:%M")
        if when == Arrival.EARLY:
            opens = self._config.local_time(booking.slot - rules.early_minutes * 60)
            raise SignalError("booking_early", booking.code, time=slot_time,
                              opens=opens.strftime("%H:%M"))
        if when == Arrival.LATE:
            raise SignalError("booking_late", booking.code, time=slot_time)
        return booking

    # no-shows and lists -----------------------------------------------------------------------
    async def release_no_shows(self) -> int:
        """Bookings nobody arrived for by the end of their window: marked no-show, their place
        given back. Returns how many."""
        now = self._now()
        released = 0
        for code in await self.redis.zrangebyscore(keys.BOOKINGS_PENDING, "-inf", now):
            row = await self.redis.hmget(keys.BOOKING(code), "department", "slot")
            dept, start = row[0] or "", str(int(float(row[1] or 0)))
            if await self._no_show(keys=[keys.BOOKING(code), keys.BOOKING_SLOT(dept, start),
                                         keys.BOOKINGS_PENDING], args=[code, now]):
                released += 1
                logger.info("booking %s (%s) released: no-show", log_code(code), dept)
        return released

    async def run(self) -> None:
        """The no-show job (a background task of the app)."""
        while True:
            try:
                await self.release_no_shows()
            except asyncio.CancelledError:
                raise
            except UNAVAILABLE:
                pass  # Redis is away: the Redis watch says it once
            except Exception:
                logger.exception("booking no-show release failed; trying again")
            await asyncio.sleep(NO_SHOW_INTERVAL)

    async def day(self, day: dt.date, departments: Iterable[str] | None = None) -> list[Booking]:
        """A day's bookings in slot order (of `departments` only, when given)."""
        codes = await self.redis.zrange(keys.BOOKINGS_DAY(day.isoformat()), 0, -1)
        wanted = set(departments) if departments is not None else None
        out = []
        for code in codes:
            row = await self.redis.hgetall(keys.BOOKING(code))
            if row and (wanted is None or row["department"] in wanted):
                out.append(Booking.from_hash(row))
        return out

    async def upcoming(self, departments: Iterable[str]) -> list[Booking]:
        """Today's bookings of the departments still to come or to arrive (the desks' list)."""
        now = self._now()
        today = self._config.local_time(now).date()
        return [b for b in await self.day(today, departments)
                if b.status == BookingStatus.BOOKED and b.slot_end > now - 3600]
