"""The Redis store: every key the service keeps, and typed access to them. Queue, ticket and
presence changes are operations of one Lua script (signaling/queue.lua), atomic across processes.

Key layout (all keys start with ``yz:``):

  yz:depts                        set    department ids
  yz:dept:<id>                    hash   id, name_zh, name_en, prefix, config (JSON of
                                         signaling.departments.Department), and the fields the Lua
                                         reads: ring_timeout, ring_pause, max_misses, wrap_up,
                                         max_queue, tiers ("group:after,...")
  yz:user:<username>              hash   username, display_name, role, departments (comma list of
                                         pools: departments and backup groups), password (scrypt)
  yz:staffusers                   set    usernames of staff accounts
  yz:members:<pool>               set    staff usernames of a department or backup group
  yz:session:<sha256(token)>      hash   username, created_at            (expires: session_ttl)
  yz:seq:ticket                   string global ticket sequence (first come, first served)
  yz:seq:number:<dept>:<lane>:<d> string per department, lane (A ordinary, B priority) and day
  yz:ticket:<ticket_id>           hash   ticket_id, number, department, also, priority, channel,
                                         status, seq, score, created_at, token_hash, staff,
                                         room_id, rest_until, overflowed, connected_at, ended_at,
                                         rating, guide (the hall guide who made it)
  yz:ticket:<ticket_id>:declined  zset   username -> when they declined or missed it
  yz:queue:<dept>                 zset   waiting ticket_id -> score (priority lane first, then seq)
  yz:ringing                      zset   ringing ticket_id -> ring deadline
  yz:staff:<username>             hash   presence, since, ticket, reason, misses, wrap_until, gone
  yz:available:<pool>             zset   available username -> idle since (longest idle first)
  yz:wrapup                       zset   username -> end of wrap-up
  yz:conns:<staff|ticket>:<id>    hash   node -> sockets of that staff member / ticket on it
  yz:node:<node>:<staff|ticket|rooms> set what that server process holds
  yz:nodes                        zset   node -> heartbeat deadline (a node past it is dead)
  yz:staff_gone                   zset   username -> end of the reconnect grace (then offline)
  yz:ticket_gone                  zset   ticket_id -> end of the reconnect grace (then abandoned)
  yz:handled:<dept>               list   recent handling times in seconds (for wait estimates)
  yz:callbacks:<dept>             hash   callback_id -> JSON request
  yz:roomtoken:<sha256(token)>    hash   room_id, role, participant_id, name, department, ticket_id
  yz:room:<room_id>               hash   room_id, node, ticket_id, department, staff, created_at,
                                         participants (count, from the host's heartbeat),
                                         invite:<dept> (JSON of a pending 会商 invitation),
                                         joined:<dept> (the invitee who took it)
  yz:guest:<username>             string the room a staff member joined by invitation (4 h)
                                  (these three: signaling/room_directory.py)
  yz:guide:<username>             zset   ticket_id -> created_at of a hall guide's tickets (1 d)
  yz:recordings                   zset   recording_id -> started_at
  yz:recording:<id>               hash   the recording's index entry (see recordings/archive.py),
                                         with staff_ids (usernames), rating, rated_at, hold
  yz:manifest:head                hash   seq, hash, recording_id of the newest integrity-chain
                                         link (recordings/manifest.py); changed under WATCH
  yz:manifest:lock                string one sealer at a time (token, 30 s expiry)
  yz:audit                        stream archive access: time, who, action (list, view, file,
                                         verify, hold, release, purge), recording_id,
                                         department, remote, detail; trimmed by MINID to 180 d
  yz:log                          stream the queue log: time, event (ENTER, RING, NOANSWER,
                                         DECLINE, CONNECT, ABANDON, CANCEL, OVERFLOW, COMPLETE,
                                         PAUSE, UNPAUSE, INVITE, JOIN), ticket, department,
                                         staff, detail
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis

from signaling.departments import Department

logger = logging.getLogger(__name__)

K = "yz:"
# The login session's cookie: set by the HTTP login, read by the staff and kiosk sockets too.
SESSION_COOKIE = "yz_session"
QUEUE_LUA = (Path(__file__).parent / "queue.lua").read_text(encoding="utf-8")
HEARTBEAT_TTL = 10.0

# An event of the queue script: (kind, a, b); see the top of signaling/queue.lua.
Event = tuple[str, str, str]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _events(flat: list[str]) -> list[Event]:
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    number: str
    department: str
    status: str
    seq: int
    created_at: float
    priority: bool = False
    channel: str = "kiosk"
    also: tuple[str, ...] = ()
    staff: str = ""
    room_id: str = ""
    rating: int | None = None

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Ticket:
        rating = data.get("rating")
        return cls(
            ticket_id=data["ticket_id"], number=data["number"], department=data["department"],
            status=data["status"], seq=int(data["seq"]), created_at=float(data["created_at"]),
            priority=data.get("priority") == "1", channel=data.get("channel") or "kiosk",
            also=tuple(d for d in data.get("also", "").split(",") if d),
            staff=data.get("staff", ""), room_id=data.get("room_id", ""),
            rating=int(rating) if rating else None,
        )


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    departments: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {"username": self.username, "display_name": self.display_name, "role": self.role,
                "departments": list(self.departments)}


class Store:
    """Typed access to the Redis keys above."""

    def __init__(self, redis: aioredis.Redis) -> None:
        # decode_responses=True: every reply is str. redis-py's types cannot know that.
        self.redis: Any = redis
        self._queue = redis.register_script(QUEUE_LUA)
        self._departments: dict[str, Department] = {}

    async def _op(self, op: str, now: float, *args: Any) -> Any:
        return await self._queue(args=[op, now, *args])

    # departments -------------------------------------------------------------------------
    async def put_department(self, dept: Department) -> None:
        tiers = ",".join(f"{t.group}:{t.after:g}" for t in dept.backups)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(K + "depts", dept.id)
            pipe.hset(K + f"dept:{dept.id}", mapping={
                "id": dept.id, "name_zh": dept.name_zh, "name_en": dept.name_en,
                "prefix": dept.prefix, "config": json.dumps(dept.to_dict(), ensure_ascii=False),
                "ring_timeout": dept.ring_timeout, "ring_pause": dept.ring_pause,
                "max_misses": dept.max_misses, "wrap_up": dept.wrap_up,
                "max_queue": dept.max_queue, "tiers": tiers,
            })
            await pipe.execute()

    async def department(self, dept_id: str) -> Department | None:
        raw = await self.redis.hget(K + f"dept:{dept_id}", "config")
        return self._parse_department(raw) if raw else None

    def _parse_department(self, raw: str) -> Department:
        # Checking a department's settings costs more than reading them: keep the parsed value
        # for as long as Redis holds the same text (an admin's change is new text).
        dept = self._departments.get(raw)
        if dept is None:
            if len(self._departments) > 256:
                self._departments.clear()
            dept = self._departments[raw] = Department.from_dict(json.loads(raw))
        return dept

    async def departments(self) -> list[Department]:
        ids = sorted(await self.redis.smembers(K + "depts"))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for dept_id in ids:
                pipe.hget(K + f"dept:{dept_id}", "config")
            rows = await pipe.execute()
        return [self._parse_department(raw) for raw in rows if raw]

    # users and sessions ---------------------------------------------------------------------
    async def put_user(self, username: str, *, display_name: str, role: str,
                       departments: tuple[str, ...], password_hash: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(K + f"user:{username}", mapping={
                "username": username, "display_name": display_name, "role": role,
                "departments": ",".join(departments), "password": password_hash,
            })
            if role == "staff":
                pipe.sadd(K + "staffusers", username)
                for pool in departments:
                    pipe.sadd(K + f"members:{pool}", username)
            await pipe.execute()

    async def user_with_password(self, username: str) -> tuple[User, str] | None:
        row = await self.redis.hgetall(K + f"user:{username}")
        if not row:
            return None
        return _user(row), row["password"]

    async def user(self, username: str) -> User | None:
        row = await self.redis.hgetall(K + f"user:{username}")
        return _user(row) if row else None

    async def has_users(self) -> bool:
        async for _ in self.redis.scan_iter(match=K + "user:*", count=100):
            return True
        return False

    async def create_session(self, username: str, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        key = K + f"session:{hash_token(token)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"username": username, "created_at": time.time()})
            pipe.expire(key, ttl)
            await pipe.execute()
        return token

    async def session_user(self, token: str) -> User | None:
        username = await self.redis.hget(K + f"session:{hash_token(token)}", "username")
        return await self.user(username) if username else None

    async def delete_session(self, token: str) -> None:
        await self.redis.delete(K + f"session:{hash_token(token)}")

    async def rebuild_members(self) -> None:
        """Rebuild the pool membership sets from the accounts (data written before they existed,
        or accounts edited by hand)."""
        for user in await self.staff_users():
            for pool in user.departments:
                await self.redis.sadd(K + f"members:{pool}", user.username)

    async def staff_users(self) -> list[User]:
        names = sorted(await self.redis.smembers(K + "staffusers"))
        users = [await self.user(name) for name in names]
        return [u for u in users if u is not None]

    # tickets ------------------------------------------------------------------------------
    async def create_ticket(self, dept_id: str, now: float, *, priority: bool = False,
                            channel: str = "kiosk", also: tuple[str, ...] = ()
                            ) -> tuple[str, Ticket | None, str, list[Event]]:
        """Enter a ticket into the department's queue (and ring someone if anyone is free).

        Returns (code, ticket, its secret token, events); code is ok, unknown_department or
        queue_full."""
        ticket_id = secrets.token_hex(8)
        token = secrets.token_urlsafe(24)
        day = time.strftime("%Y%m%d", time.localtime(now))
        result = await self._op("enqueue", now, ticket_id, dept_id, int(priority), channel,
                                ",".join(also), hash_token(token), day)
        if result[0] != "ok":
            return str(result[0]), None, "", []
        return "ok", await self.ticket(ticket_id), token, _events(result[2])

    async def ticket(self, ticket_id: str) -> Ticket | None:
        row = await self.redis.hgetall(K + f"ticket:{ticket_id}")
        return Ticket.from_hash(row) if row else None

    async def check_ticket_token(self, ticket_id: str, token: str) -> Ticket | None:
        row = await self.redis.hgetall(K + f"ticket:{ticket_id}")
        if not row or not secrets.compare_digest(row.get("token_hash", ""), hash_token(token)):
            return None
        return Ticket.from_hash(row)

    async def position(self, ticket: Ticket) -> int:
        rank = await self.redis.zrank(K + f"queue:{ticket.department}", ticket.ticket_id)
        return int(rank) + 1 if rank is not None else 0

    async def waiting(self, dept_id: str) -> list[str]:
        return list(await self.redis.zrange(K + f"queue:{dept_id}", 0, -1))

    async def longest_since(self, dept_id: str) -> float | None:
        """Creation time of the department's longest-waiting ticket (the head of either lane)."""
        key = K + f"queue:{dept_id}"
        heads = [*await self.redis.zrangebyscore(key, "-inf", "(1000000000000", start=0, num=1),
                 *await self.redis.zrangebyscore(key, 1000000000000, "+inf", start=0, num=1)]
        times = [await self.redis.hget(K + f"ticket:{t}", "created_at") for t in heads]
        return min((float(t) for t in times if t), default=None)

    async def duty(self, pool: str) -> tuple[int, int]:
        """(staff on duty, staff available now) among a department's members."""
        on_duty, available = await self._op("duty", time.time(), pool)
        return int(on_duty), int(available)

    async def handling_times(self, dept_id: str) -> list[float]:
        return [float(v) for v in await self.redis.lrange(K + f"handled:{dept_id}", 0, -1)]

    async def cancel_ticket(self, ticket_id: str, now: float) -> tuple[str, list[Event]]:
        code, events = await self._op("cancel", now, ticket_id)
        return str(code), _events(events)

    async def finish_ticket(self, ticket_id: str, now: float) -> tuple[str, list[Event]]:
        staff, events = await self._op("finish", now, ticket_id)
        return str(staff), _events(events)

    async def rate_ticket(self, ticket_id: str, rating: int) -> str:
        return str(await self._op("rate", time.time(), ticket_id, rating))

    async def tickets_of_staff_ringing(self, username: str) -> str:
        return str(await self.redis.hget(K + f"staff:{username}", "ticket") or "")

    # presence, connections and dispatch -----------------------------------------------------
    async def staff_state(self, username: str) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(K + f"staff:{username}"))

    async def staff_overview(self, username: str, pools: tuple[str, ...]
                             ) -> tuple[dict[str, str], dict[str, int], dict[str, float | None],
                                        int]:
        """In one round trip: the staff member's state hash, and per pool the waiting count, the
        creation time of the longest-waiting ticket, and the number of callback requests."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(K + f"staff:{username}")
            for pool in pools:
                key = K + f"queue:{pool}"
                pipe.zcard(key)
                pipe.zrangebyscore(key, "-inf", "(1000000000000", start=0, num=1)
                pipe.zrangebyscore(key, 1000000000000, "+inf", start=0, num=1)
                pipe.hlen(K + f"callbacks:{pool}")
            replies = await pipe.execute()
            heads = [replies[2 + 4 * i] + replies[3 + 4 * i] for i in range(len(pools))]
            for tickets in heads:
                for ticket_id in tickets:
                    pipe.hget(K + f"ticket:{ticket_id}", "created_at")
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
                           ) -> tuple[str, str, list[Event]]:
        code, presence, events = await self._op("presence", now, username, state, reason)
        return str(code), str(presence), _events(events)

    async def connection(self, kind: str, ident: str, node: str, delta: int, now: float
                         ) -> tuple[int, list[Event]]:
        """A socket of a staff member or of a ticket came (+1) or went (-1) on a process."""
        total, events = await self._op("connection", now, kind, ident, node, delta)
        return int(total), _events(events)

    async def heartbeat(self, node: str, now: float, ttl: float = HEARTBEAT_TTL) -> None:
        await self._op("heartbeat", now, node, ttl)

    async def forget_nodes(self, now: float) -> None:
        await self._op("forget_nodes", now)

    async def tick(self, now: float) -> list[Event]:
        return _events(await self._op("tick", now))

    async def dispatch(self, dept_id: str, now: float) -> list[Event]:
        return _events(await self._op("dispatch", now, dept_id))

    async def accept(self, ticket_id: str, username: str, now: float) -> str:
        return str(await self._op("accept", now, ticket_id, username))

    async def decline(self, ticket_id: str, username: str, now: float) -> tuple[str, list[Event]]:
        code, events = await self._op("decline", now, ticket_id, username)
        return str(code), _events(events)

    async def ringing_deadline(self, ticket_id: str) -> float | None:
        score = await self.redis.zscore(K + "ringing", ticket_id)
        return float(score) if score is not None else None

    # callbacks --------------------------------------------------------------------------------
    async def add_callback(self, dept_id: str, request: dict[str, Any]) -> dict[str, Any]:
        entry = {"callback_id": secrets.token_hex(6), "department": dept_id, **request}
        await self.redis.hset(K + f"callbacks:{dept_id}", entry["callback_id"],
                              json.dumps(entry, ensure_ascii=False))
        await self.log("CALLBACK", department=dept_id, detail=entry["callback_id"])
        return entry

    async def callbacks(self, dept_ids: tuple[str, ...]) -> list[dict[str, Any]]:
        out = []
        for dept_id in dept_ids:
            out += [json.loads(v) for v in
                    (await self.redis.hgetall(K + f"callbacks:{dept_id}")).values()]
        return sorted(out, key=lambda c: c["created_at"])

    async def remove_callback(self, dept_ids: tuple[str, ...], callback_id: str,
                              username: str) -> bool:
        for dept_id in dept_ids:
            if await self.redis.hdel(K + f"callbacks:{dept_id}", callback_id):
                await self.log("CALLBACK_DONE", department=dept_id, staff=username,
                               detail=callback_id)
                return True
        return False

    # rooms (the rest of the room directory: signaling/room_directory.py) ---------------
    async def put_room(self, room_id: str, *, node: str, ticket_id: str, department: str,
                       staff: str, now: float) -> None:
        await self._op("room", now, room_id, node, ticket_id, department, staff)

    async def delete_room(self, room_id: str) -> None:
        await self._op("room_closed", time.time(), room_id)

    async def set_ticket_guide(self, ticket_id: str, guide: str, now: float) -> None:
        """Remember the hall guide who made a ticket at the kiosk (a day is plenty)."""
        key = K + f"guide:{guide}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(K + f"ticket:{ticket_id}", "guide", guide)
            pipe.zadd(key, {ticket_id: now})
            pipe.zremrangebyscore(key, "-inf", now - 86400)
            pipe.expire(key, 86400)
            await pipe.execute()

    async def guide_tickets(self, guide: str, now: float) -> list[Ticket]:
        ids = await self.redis.zrangebyscore(K + f"guide:{guide}", now - 86400, "+inf")
        tickets = [await self.ticket(ticket_id) for ticket_id in ids]
        return [t for t in tickets if t is not None]

    async def ticket_guide(self, ticket_id: str) -> str:
        return str(await self.redis.hget(K + f"ticket:{ticket_id}", "guide") or "")

    async def log(self, event: str, **fields: str) -> None:
        entry = {"time": str(time.time()), "event": event, "ticket": "", "department": "",
                 "staff": "", "detail": "", **fields}
        await self.redis.xadd(K + "log", entry, maxlen=100000, approximate=True)

    async def log_entries(self, start: float, end: float) -> list[dict[str, str]]:
        """The queue log between two times (epoch seconds), oldest first."""
        rows = await self.redis.xrange(K + "log", min=f"{int(start * 1000)}-0",
                                       max=f"{int(end * 1000)}-9999999")
        return [fields for _, fields in rows]


def _user(row: dict[str, str]) -> User:
    return User(username=row["username"], display_name=row.get("display_name", row["username"]),
                role=row["role"],
                departments=tuple(d for d in row.get("departments", "").split(",") if d))
