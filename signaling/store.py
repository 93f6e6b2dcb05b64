"""The Redis store: typed access to the service's keys (their layout: signaling/keys.py).
Queue, ticket and presence changes are named operations of the queue script (signaling/queue.py
and queue.lua), one atomic call each; their typed results are declared here."""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import redis.asyncio as aioredis

from signaling import keys
from signaling.config import SignalingConfig
from signaling.departments import Department
from signaling.keys import hash_token
from signaling.privacy import mask_phone
from signaling.queue import Code, Events, Op, QueueScript, Reply
from signaling.states import Presence, TicketStatus

logger = logging.getLogger(__name__)

# A process whose heartbeat (every second, signaling/clock.py) is this late is dead: its rooms
# move to live processes (queue.lua `end_calls_of`).
HEARTBEAT_TTL = 5.0
# The score range of each lane in a department's queue (see keys.LANE_SPLIT); the first holds
# the priority and the booked lanes (their head is the first to be served of the two).
_PRIORITY_LANE = ("-inf", f"({keys.LANE_SPLIT}")
_ORDINARY_LANE = (keys.LANE_SPLIT, "+inf")
GUIDE_TICKETS_S = 86400  # how long a hall guide's tickets are remembered


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    number: str
    department: str
    status: TicketStatus
    seq: int
    created_at: float
    priority: bool = False
    channel: str = "kiosk"
    also: tuple[str, ...] = ()
    staff: str = ""
    room_id: str = ""
    rating: int | None = None
    # The recording notice the applicant consented to (signaling/privacy.py), and when.
    consent_version: str = ""
    consent_at: float | None = None
    # The registered kiosk that took it, and its hall (signaling/devices.py); '' if anonymous.
    device: str = ""
    hall: str = ""

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Ticket:
        rating = data.get("rating")
        consent_at = data.get("consent_at")
        return cls(
            ticket_id=data["ticket_id"], number=data["number"], department=data["department"],
            status=TicketStatus(data["status"]), seq=int(data["seq"]),
            created_at=float(data["created_at"]),
            priority=data.get("priority") == "1", channel=data.get("channel") or "kiosk",
            also=tuple(d for d in data.get("also", "").split(",") if d),
            staff=data.get("staff", ""), room_id=data.get("room_id", ""),
            rating=int(rating) if rating else None,
            consent_version=data.get("consent_version", ""),
            consent_at=float(consent_at) if consent_at else None,
            device=data.get("device", ""), hall=data.get("hall", ""),
        )

    @classmethod
    def of(cls, events: Events, ticket_id: str) -> Ticket | None:
        """The ticket as the script that answered `events` left it (None when it is gone or
        the script did not read it)."""
        facts = events.tickets.get(ticket_id)
        return cls.from_hash(facts.fields) if facts and facts.fields else None


# Typed results of the queue script's operations (tuples, so callers may unpack them).
class Created(NamedTuple):
    code: Code  # ok, unknown_department, limit (the address's open tickets),
    # queue_full, or a registered kiosk's refusal (limit.device_ticket, device_revoked)
    ticket: Ticket | None
    token: str  # the applicant's secret for the ticket ('' when refused)
    events: Events


class PresenceChange(NamedTuple):
    code: Code  # ok, or bad_state (ringing or in a call)
    presence: Presence  # the presence now
    events: Events


class Outcome(NamedTuple):
    code: Code
    events: Events


class Finished(NamedTuple):
    staff: str  # who had the call; '' when the ticket was not in a call
    events: Events


class Sockets(NamedTuple):
    total: int  # that staff member's or ticket's sockets on all processes
    events: Events


class LiveSockets(NamedTuple):
    """A process's open sockets: how many per staff member, per ticket, and per client address
    (the kiosk sockets counted against their address's limit)."""
    staff: dict[str, int]
    tickets: dict[str, int]
    addresses: dict[str, int]


class Rejoined(NamedTuple):
    """After an outage: whether the process had been buried meanwhile (by processes that could
    still reach Redis: its rooms have moved on), and what changed."""
    buried: bool
    events: Events


class Duty(NamedTuple):
    on_duty: int
    available: int


def _str(reply: Reply) -> str:
    return str(reply.value) if reply.value is not None else ""


class Store:
    """Typed access to the Redis keys of signaling/keys.py."""

    def __init__(self, redis: aioredis.Redis, config: SignalingConfig | None = None) -> None:
        # decode_responses=True: every reply is str. redis-py's types cannot know that.
        self.redis: Any = redis
        self._queue = QueueScript(redis, config or SignalingConfig())
        self._departments: dict[str, Department] = {}

    # departments -------------------------------------------------------------------------
    async def put_department(self, dept: Department) -> None:
        tiers = ",".join(f"{t.group}:{t.after:g}" for t in dept.backups)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.DEPTS, dept.id)
            pipe.hset(keys.DEPT(dept.id), mapping={
                "id": dept.id, "name_zh": dept.name_zh, "name_en": dept.name_en,
                "prefix": dept.prefix, "config": json.dumps(dept.to_dict(), ensure_ascii=False),
                "ring_timeout": dept.ring_timeout, "ring_pause": dept.ring_pause,
                "max_misses": dept.max_misses, "wrap_up": dept.wrap_up,
                "max_queue": dept.max_queue, "tiers": tiers,
            })
            await pipe.execute()

    async def department(self, dept_id: str) -> Department | None:
        raw = await self.redis.hget(keys.DEPT(dept_id), "config")
        return self._parse_department(raw) if raw else None

    def _parse_department(self, raw: str) -> Department:
        # Checking a department's settings costs more than reading them: keep the parsed value
        # for as long as Redis holds the same text (an admin's change is new text).
        dept = self._departments.get(raw)
        if dept is None:
            if len(self._departments) > 256:
                self._departments.clear()
            data = json.loads(raw)
            # Settings saved before the matter catalogue (signaling/matters.py) carry the old
            # list of matter names: the catalogue replaced it, so it is dropped when read.
            data.pop("matters", None)
            dept = self._departments[raw] = Department.from_dict(data)
        return dept

    async def departments(self) -> list[Department]:
        ids = sorted(await self.redis.smembers(keys.DEPTS))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for dept_id in ids:
                pipe.hget(keys.DEPT(dept_id), "config")
            rows = await pipe.execute()
        return [self._parse_department(raw) for raw in rows if raw]

    # tickets ------------------------------------------------------------------------------
    async def create_ticket(self, dept_id: str, now: float, *, consent_version: str,
                            priority: bool = False, channel: str = "kiosk",
                            also: tuple[str, ...] = (), address: str = "",
                            max_per_address: int = 0, device: str = "",
                            hall: str = "", booking: str = "", node: str = "") -> Created:
        """Enter a ticket into the department's queue (and ring someone if anyone is free).
        `consent_version`: the recording notice the applicant consented to, now; `address`:
        the client's, which may hold `max_per_address` open tickets (0 or no address: no
        limit); `device`, `hall`: the registered kiosk that takes it and its hall (none for an
        anonymous one); `booking`: the code of the booking arrived with (its window checked by
        signaling/bookings.py): the ticket goes into the booked lane, and the booking is used
        in the same step (booking_used if it was already); `node`: the process whose socket
        asks for it, counted for the ticket in the same step (as `connection` +1)."""
        ticket_id = secrets.token_hex(8)
        token = secrets.token_urlsafe(24)
        day = time.strftime("%Y%m%d", time.localtime(now))
        reply = await self._queue(Op.ENQUEUE, now, ticket_id, dept_id, int(priority), channel,
                                  ",".join(also), hash_token(token), day, consent_version,
                                  address, max_per_address, device, hall, booking, node)
        if reply.code != Code.OK:
            return Created(reply.code, None, "", Events())
        return Created(reply.code, Ticket.of(reply.events, ticket_id), token, reply.events)

    async def ticket(self, ticket_id: str) -> Ticket | None:
        row = await self.redis.hgetall(keys.TICKET(ticket_id))
        return Ticket.from_hash(row) if row else None

    async def check_ticket_token(self, ticket_id: str, token: str) -> Ticket | None:
        row = await self.redis.hgetall(keys.TICKET(ticket_id))
        if not row or not secrets.compare_digest(row.get("token_hash", ""), hash_token(token)):
            return None
        return Ticket.from_hash(row)

    async def position(self, ticket: Ticket) -> int:
        rank = await self.redis.zrank(keys.QUEUE(ticket.department), ticket.ticket_id)
        return int(rank) + 1 if rank is not None else 0

    async def waiting(self, dept_id: str) -> list[str]:
        return list(await self.redis.zrange(keys.QUEUE(dept_id), 0, -1))

    async def longest_since(self, dept_id: str) -> float | None:
        """Creation time of the department's longest-waiting ticket (the head of either lane)."""
        key = keys.QUEUE(dept_id)
        heads = [*await self.redis.zrangebyscore(key, *_PRIORITY_LANE, start=0, num=1),
                 *await self.redis.zrangebyscore(key, *_ORDINARY_LANE, start=0, num=1)]
        times = [await self.redis.hget(keys.TICKET(t), "created_at") for t in heads]
        return min((float(t) for t in times if t), default=None)

    async def duty(self, pool: str) -> Duty:
        """Staff on duty, and staff available now, among a department's members."""
        reply = await self._queue(Op.DUTY, time.time(), pool)
        on_duty, available = cast(list[int], reply.value)
        return Duty(int(on_duty), int(available))

    async def handling_times(self, dept_id: str) -> list[float]:
        return [float(v) for v in await self.redis.lrange(keys.HANDLED(dept_id), 0, -1)]

    async def cancel_ticket(self, ticket_id: str, now: float, node: str = "") -> Outcome:
        """ok, or bad_state when the ticket is no longer waiting or ringing. `node`: the process
        of a socket that followed the ticket, counted out in the same step (as `connection`
        -1), whatever the answer."""
        reply = await self._queue(Op.CANCEL, now, ticket_id, node)
        return Outcome(reply.code, reply.events)

    async def finish_ticket(self, ticket_id: str, now: float) -> Finished:
        reply = await self._queue(Op.FINISH, now, ticket_id)
        return Finished(_str(reply), reply.events)

    async def rate_ticket(self, ticket_id: str, scores: list[tuple[str, int]]
                          ) -> tuple[Code, list[str]]:
        """Rate the departments of a ticket, each (department, score) once: ok with whoever
        served for each, in order; not_participant with the department that took no part;
        bad_state when the ticket cannot be rated (now, or again)."""
        args = [part for dept, score in scores for part in (dept, score)]
        reply = await self._queue(Op.RATE, time.time(), ticket_id, *args)
        if reply.code == Code.NOT_PARTICIPANT:
            return reply.code, [str(reply.value)]
        return reply.code, [str(v) for v in reply.value] if isinstance(reply.value, list) else []

    async def ticket_participants(self, ticket_id: str) -> dict[str, str]:
        """The departments that took part in a ticket's call, each with who served for it: its
        own department first, then the 会商 departments in the order they joined."""
        row = await self.redis.hgetall(keys.TICKET(ticket_id))
        if not row:
            return {}
        out = {row["department"]: row.get("staff", "")}
        for name, value in row.items():
            if name.startswith("joined:"):
                out.setdefault(name.removeprefix("joined:"), value)
        return out

    async def set_ticket_joined(self, ticket_id: str, department: str, username: str) -> None:
        """A 会商 department's invitee joined the ticket's call: that department may be rated
        (the first of it to join is who served for it)."""
        key = keys.TICKET(ticket_id)
        if await self.redis.exists(key):
            await self.redis.hsetnx(key, f"joined:{department}", username)

    async def tickets_of_staff_ringing(self, username: str) -> str:
        return str(await self.redis.hget(keys.STAFF(username), "ticket") or "")

    # presence, connections and dispatch -----------------------------------------------------
    async def staff_state(self, username: str) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(keys.STAFF(username)))

    async def staff_overview(self, username: str, pools: tuple[str, ...]
                             ) -> tuple[dict[str, str], dict[str, int], dict[str, float | None],
                                        int]:
        """In one round trip: the staff member's state hash, and per pool the waiting count, the
        creation time of the longest-waiting ticket, and the number of callback requests."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.STAFF(username))
            for pool in pools:
                key = keys.QUEUE(pool)
                pipe.zcard(key)
                pipe.zrangebyscore(key, *_PRIORITY_LANE, start=0, num=1)
                pipe.zrangebyscore(key, *_ORDINARY_LANE, start=0, num=1)
                pipe.hlen(keys.CALLBACKS(pool))
            replies = await pipe.execute()
            heads = [replies[2 + 4 * i] + replies[3 + 4 * i] for i in range(len(pools))]
            for tickets in heads:
                for ticket_id in tickets:
                    pipe.hget(keys.TICKET(ticket_id), "created_at")
            created = iter(await pipe.execute())
        waiting: dict[str, int] = {}
        longest: dict[str, float | None] = {}
        callbacks = 0
        for i, pool in enumerate(pools):
            waiting[pool] = int(replies[1 + 4 * i])
            callbacks += int(replies[4 + 4 * i])
            times = [next(created) for _ in heads[i]]
            longest[pool] = min((float(t) for t in times if t), default=None)
        return replies[0], waiting, longest, callbacks

    async def set_presence(self, username: str, state: str, now: float, reason: str = ""
                           ) -> PresenceChange:
        """`state`: available, away or offline (anything else stops here, before Redis)."""
        reply = await self._queue(Op.PRESENCE, now, username, Presence(state), reason)
        return PresenceChange(reply.code, Presence(_str(reply)), reply.events)

    async def connection(self, kind: str, ident: str, node: str, delta: int, now: float
                         ) -> Sockets:
        """A socket of a staff member or of a ticket came (+1) or went (-1) on a process."""
        reply = await self._queue(Op.CONNECTION, now, kind, ident, node, delta)
        return Sockets(int(cast(int, reply.value)), reply.events)

    async def address_socket(self, address: str, node: str, delta: int, maximum: int,
                             now: float) -> tuple[Code, int]:
        """A /kiosk socket of a client address came (+1) or went (-1) on a process: ok, or
        limit when `maximum` (0: none) are open already; and the address's sockets."""
        reply = await self._queue(Op.ADDRESS_SOCKET, now, address, node, delta, maximum)
        return reply.code, int(cast(int, reply.value))

    async def heartbeat(self, node: str, now: float, ttl: float = HEARTBEAT_TTL) -> bool:
        """`node` is alive until `now` + `ttl`. True when it was not registered: its first
        heartbeat, or it was buried meanwhile (stopped for longer than the TTL: its rooms have
        moved to other processes)."""
        return (await self._queue(Op.HEARTBEAT, now, node, ttl)).value == 1

    async def node_registered(self, node: str) -> bool:
        """Whether `node` is in the heartbeat set: alive, or dead and not swept yet (a sweep
        removes it and moves its rooms in one script call)."""
        return await self.redis.zscore(keys.NODES, node) is not None

    async def forget_nodes(self, now: float) -> None:
        await self._queue(Op.FORGET_NODES, now)

    async def tick(self, now: float, sweep: bool = True, node: str = "",
                   ttl: float = HEARTBEAT_TTL) -> Events:
        """What happens with time; `sweep`: also bury the processes whose heartbeat ran out;
        `node`: the ticking process, whose heartbeat is renewed first if it is registered."""
        return (await self._queue(Op.TICK, now, "1" if sweep else "0", node, ttl)).events

    async def outage_over(self, node: str, now: float, live: LiveSockets,
                          ttl: float = HEARTBEAT_TTL, buried: bool = False) -> Rejoined:
        """Redis answers again after an outage this process saw: its heartbeat, then its sockets
        counted from `live`; graces and rings that ran out meanwhile are given back, unless
        this process was buried meanwhile (`buried`: its heartbeat found it so): the others
        kept them then."""
        reply = await self._queue(Op.OUTAGE_OVER, now, node, ttl, json.dumps(live.staff),
                                  json.dumps(live.tickets), json.dumps(live.addresses),
                                  "1" if buried else "0")
        return Rejoined(reply.value == 1, reply.events)

    async def dispatch(self, dept_id: str, now: float) -> Events:
        return (await self._queue(Op.DISPATCH, now, dept_id)).events

    async def accept(self, ticket_id: str, username: str, now: float) -> Code:
        """ok, or not_offered when the ticket does not ring this staff member (any more)."""
        return (await self._queue(Op.ACCEPT, now, ticket_id, username)).code

    async def decline(self, ticket_id: str, username: str, now: float) -> Outcome:
        reply = await self._queue(Op.DECLINE, now, ticket_id, username)
        return Outcome(reply.code, reply.events)

    async def ringing_deadline(self, ticket_id: str) -> float | None:
        score = await self.redis.zscore(keys.RINGING, ticket_id)
        return float(score) if score is not None else None

    # callbacks --------------------------------------------------------------------------------
    async def add_callback(self, dept_id: str, request: dict[str, Any]) -> dict[str, Any]:
        entry = {"callback_id": secrets.token_hex(6), "department": dept_id, **request}
        await self.redis.hset(keys.CALLBACKS(dept_id), entry["callback_id"],
                              json.dumps(entry, ensure_ascii=False))
        # The queue log is read by admins, not by the staff who call back: masked number.
        await self.log("CALLBACK", department=dept_id,
                       detail=f"{entry['callback_id']} {mask_phone(entry['phone'])}")
        return entry

    async def callbacks(self, dept_ids: tuple[str, ...]) -> list[dict[str, Any]]:
        out = []
        for dept_id in dept_ids:
            out += [json.loads(v) for v in
                    (await self.redis.hgetall(keys.CALLBACKS(dept_id))).values()]
        return sorted(out, key=lambda c: c["created_at"])

    async def remove_callback(self, dept_ids: tuple[str, ...], callback_id: str,
                              username: str) -> bool:
        for dept_id in dept_ids:
            if await self.redis.hdel(keys.CALLBACKS(dept_id), callback_id):
                await self.log("CALLBACK_DONE", department=dept_id, staff=username,
                               detail=callback_id)
                return True
        return False

    async def purge_callbacks(self, before: float, keep_days: int) -> dict[str, int]:
        """Delete every department's callback requests made before `before` (epoch seconds),
        called back or not (a done one is gone already); each department's deletion goes to
        the queue log as a count. Returns the count per department that lost any.

        Several processes may purge at once: HDEL counts only what it really deleted, so each
        request is counted (and logged) once."""
        purged: dict[str, int] = {}
        for dept_id in sorted(await self.redis.smembers(keys.DEPTS)):
            key = keys.CALLBACKS(dept_id)
            old = [callback_id for callback_id, raw in (await self.redis.hgetall(key)).items()
                   if float(json.loads(raw).get("created_at") or 0) < before]
            count = int(await self.redis.hdel(key, *old)) if old else 0
            if count:
                purged[dept_id] = count
                await self.log("CALLBACK_PURGE", department=dept_id,
                               detail=f"{count} older than {keep_days} days")
        return purged

    # rooms (the rest of the room directory: signaling/room_directory.py) ---------------
    async def put_room(self, room_id: str, *, node: str, ticket_id: str, department: str,
                       staff: str, now: float) -> str:
        """Claim the room's directory entry for `node`; the node that owns it: `node`, or the
        one that claimed it first."""
        reply = await self._queue(Op.ROOM, now, room_id, node, ticket_id, department, staff)
        return node if reply.code == Code.OK else str(reply.value)

    async def delete_room(self, room_id: str) -> None:
        await self._queue(Op.ROOM_CLOSED, time.time(), room_id)

    async def set_ticket_guide(self, ticket_id: str, guide: str, now: float) -> None:
        """Remember the hall guide who made a ticket at the kiosk (a day is plenty)."""
        key = keys.GUIDE(guide)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.TICKET(ticket_id), "guide", guide)
            pipe.zadd(key, {ticket_id: now})
            pipe.zremrangebyscore(key, "-inf", now - GUIDE_TICKETS_S)
            pipe.expire(key, GUIDE_TICKETS_S)
            await pipe.execute()

    async def guide_tickets(self, guide: str, now: float) -> list[Ticket]:
        ids = await self.redis.zrangebyscore(keys.GUIDE(guide), now - GUIDE_TICKETS_S, "+inf")
        tickets = [await self.ticket(ticket_id) for ticket_id in ids]
        return [t for t in tickets if t is not None]

    async def ticket_guide(self, ticket_id: str) -> str:
        return str(await self.redis.hget(keys.TICKET(ticket_id), "guide") or "")

    async def log(self, event: str, **fields: str) -> None:
        entry = {"time": str(time.time()), "event": event, "ticket": "", "department": "",
                 "staff": "", "detail": "", **fields}
        await self.redis.xadd(keys.LOG, entry, maxlen=keys.LOG_MAXLEN, approximate=True)

    async def log_entries(self, start: float, end: float) -> list[dict[str, str]]:
        """The queue log between two times (epoch seconds), oldest first."""
        rows = await self.redis.xrange(keys.LOG, min=f"{int(start * 1000)}-0",
                                       max=f"{int(end * 1000)}-9999999")
        return [fields for _, fields in rows]
