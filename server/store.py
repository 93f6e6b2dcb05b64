"""The Redis store: every key the service keeps, and the Lua scripts that change queue, ticket and
presence state atomically across server processes.

Key layout (all keys start with ``yz:``):

  yz:depts                      set    department ids
  yz:dept:<id>                  hash   id, name_zh, name_en, prefix (hall number prefix)
  yz:user:<username>            hash   username, display_name, role, departments (comma list),
                                       password (scrypt hash)
  yz:session:<token>            hash   username, role            (expires: session_ttl)
  yz:seq:ticket                 string global ticket sequence (first-come-first-served order)
  yz:seq:number:<dept>:<date>   string per-department per-day hall number counter
  yz:ticket:<ticket_id>         hash   ticket_id, number, department, status, seq, created_at,
                                       token_hash, staff, room_id, rating, ended_at
  yz:ticket:<ticket_id>:declined zset  username -> time of decline (not rung again straight away)
  yz:queue:<dept>               zset   waiting ticket_id -> seq
  yz:ringing                    zset   ringing ticket_id -> ring deadline
  yz:staff:<username>           hash   presence, since, ticket, conns
  yz:available:<dept>           zset   available username -> idle since (longest idle first)
  yz:roomtoken:<token>          hash   room_id, role, participant_id, name, department, ticket_id
  yz:room:<room_id>             hash   room_id, node, ticket_id, department, staff, created_at
  yz:recordings                 zset   recording_id -> started_at
  yz:recording:<id>             hash   the recording's index entry (see recordings/archive.py)
  yz:log                        stream queue and room event log (ENTER, RING, CONNECT, ...)
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

K = "yz:"
TICKET_STATUSES = ("waiting", "ringing", "connected", "cancelled", "ended")
PRESENCES = ("offline", "available", "ringing", "in_call", "away")
DECLINE_COOLDOWN = 30.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Dispatch: offer waiting tickets of one department to its longest-idle available staff, as many
# pairs as there are. A staff member who declined a ticket less than DECLINE_COOLDOWN ago is not
# rung for it again. Everything happens in one script, so no two processes can ring two staff for
# one ticket or one staff member for two tickets.
# KEYS: none (keys are derived from the department; single-instance Redis or one hash slot).
# ARGV: dept, now, ring_timeout, cooldown
_DISPATCH = """
local dept, now = ARGV[1], tonumber(ARGV[2])
local timeout, cooldown = tonumber(ARGV[3]), tonumber(ARGV[4])
local qkey = 'yz:queue:' .. dept
local akey = 'yz:available:' .. dept
local out = {}
local tickets = redis.call('ZRANGE', qkey, 0, -1)
for _, tid in ipairs(tickets) do
  local staff = redis.call('ZRANGE', akey, 0, -1)
  if #staff == 0 then break end
  local chosen = nil
  for _, user in ipairs(staff) do
    local declined = redis.call('ZSCORE', 'yz:ticket:' .. tid .. ':declined', user)
    if (not declined) or (now - tonumber(declined) >= cooldown) then
      chosen = user
      break
    end
  end
  if chosen then
    redis.call('ZREM', qkey, tid)
    redis.call('ZADD', 'yz:ringing', now + timeout, tid)
    redis.call('HSET', 'yz:ticket:' .. tid, 'status', 'ringing', 'staff', chosen)
    local depts = redis.call('HGET', 'yz:user:' .. chosen, 'departments') or ''
    for d in string.gmatch(depts, '[^,]+') do redis.call('ZREM', 'yz:available:' .. d, chosen) end
    redis.call('HSET', 'yz:staff:' .. chosen, 'presence', 'ringing', 'ticket', tid)
    redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event', 'RING', 'ticket', tid,
               'department', dept, 'staff', chosen)
    table.insert(out, tid)
    table.insert(out, chosen)
  end
end
return out
"""

# Put a staff member back into the available sets of all their departments.
_MAKE_AVAILABLE = """
local function make_available(user, since)
  local depts = redis.call('HGET', 'yz:user:' .. user, 'departments') or ''
  for d in string.gmatch(depts, '[^,]+') do
    redis.call('ZADD', 'yz:available:' .. d, since, user)
  end
  redis.call('HSET', 'yz:staff:' .. user, 'presence', 'available', 'since', since, 'ticket', '')
  redis.call('HDEL', 'yz:staff:' .. user, 'reason')
end
local function make_unavailable(user, presence, now)
  local depts = redis.call('HGET', 'yz:user:' .. user, 'departments') or ''
  for d in string.gmatch(depts, '[^,]+') do redis.call('ZREM', 'yz:available:' .. d, user) end
  redis.call('HSET', 'yz:staff:' .. user, 'presence', presence, 'since', now, 'ticket', '')
end
local function requeue(tid)
  local seq = redis.call('HGET', 'yz:ticket:' .. tid, 'seq')
  local dept = redis.call('HGET', 'yz:ticket:' .. tid, 'department')
  redis.call('ZREM', 'yz:ringing', tid)
  redis.call('HSET', 'yz:ticket:' .. tid, 'status', 'waiting', 'staff', '')
  redis.call('ZADD', 'yz:queue:' .. dept, tonumber(seq), tid)
  return dept
end
"""

# ARGV: username, state (available|away|offline), now.  Returns {ok|error, presence, released}
_SET_PRESENCE = _MAKE_AVAILABLE + """
local user, state, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local current = redis.call('HGET', 'yz:staff:' .. user, 'presence') or 'offline'
local released = ''
if current == 'in_call' and state ~= 'offline' then return {'bad_state', current, ''} end
if current == 'ringing' then
  if state ~= 'offline' then return {'bad_state', current, ''} end
  released = redis.call('HGET', 'yz:staff:' .. user, 'ticket') or ''
  if released ~= '' then
    local dept = requeue(released)
    redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event', 'NOANSWER', 'ticket',
               released, 'department', dept, 'staff', user)
  end
end
if current == 'in_call' then
  -- A dropped connection during a call: the room decides when the call ends.
  return {'ok', current, ''}
end
if state == 'available' then
  if current ~= 'available' then make_available(user, now) end
else
  make_unavailable(user, state, now)
end
redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event',
           state == 'available' and 'UNPAUSE' or 'PAUSE', 'staff', user, 'presence', state)
return {'ok', state, released}
"""

# ARGV: ticket_id, username, now. Returns {code}
_ACCEPT = """
local tid, user, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local tkey = 'yz:ticket:' .. tid
if redis.call('HGET', tkey, 'status') ~= 'ringing' or redis.call('HGET', tkey, 'staff') ~= user
   or not redis.call('ZSCORE', 'yz:ringing', tid) then
  return 'not_offered'
end
redis.call('ZREM', 'yz:ringing', tid)
redis.call('HSET', tkey, 'status', 'connected', 'connected_at', now)
redis.call('HSET', 'yz:staff:' .. user, 'presence', 'in_call', 'since', now, 'ticket', tid)
redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event', 'CONNECT', 'ticket', tid,
           'department', redis.call('HGET', tkey, 'department'), 'staff', user)
return 'ok'
"""

# ARGV: ticket_id, username, now, reason (DECLINE|NOANSWER). Returns department or ''.
# A decline leaves the staff member available (and not rung again for this ticket for a while);
# a ring timeout sets them away, as Asterisk pauses a member who does not answer.
_RELEASE = _MAKE_AVAILABLE + """
local tid, user, now, reason = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local tkey = 'yz:ticket:' .. tid
if redis.call('HGET', tkey, 'status') ~= 'ringing' or redis.call('HGET', tkey, 'staff') ~= user then
  return ''
end
local dept = requeue(tid)
if reason == 'DECLINE' then
  redis.call('ZADD', tkey .. ':declined', now, user)
  redis.call('EXPIRE', tkey .. ':declined', 86400)
  local since = redis.call('HGET', 'yz:staff:' .. user, 'since') or now
  make_available(user, tonumber(since))
else
  make_unavailable(user, 'away', now)
  redis.call('HSET', 'yz:staff:' .. user, 'reason', 'missed')
end
redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event', reason, 'ticket', tid,
           'department', dept, 'staff', user)
return dept
"""

# ARGV: now. Returns flat list {ticket, staff, ...} of rings that timed out (already released).
_EXPIRE_RINGS = _MAKE_AVAILABLE + """
local now = tonumber(ARGV[1])
local out = {}
for _, tid in ipairs(redis.call('ZRANGEBYSCORE', 'yz:ringing', '-inf', now)) do
  local user = redis.call('HGET', 'yz:ticket:' .. tid, 'staff') or ''
  local dept = requeue(tid)
  if user ~= '' then
    make_unavailable(user, 'away', now)
    redis.call('HSET', 'yz:staff:' .. user, 'reason', 'missed')
  end
  redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event', 'NOANSWER', 'ticket', tid,
             'department', dept, 'staff', user)
  table.insert(out, tid)
  table.insert(out, user)
end
return out
"""

# ARGV: ticket_id, now. Returns {code, staff_that_was_ringing}
_CANCEL = _MAKE_AVAILABLE + """
local tid, now = ARGV[1], tonumber(ARGV[2])
local tkey = 'yz:ticket:' .. tid
local status = redis.call('HGET', tkey, 'status')
if status ~= 'waiting' and status ~= 'ringing' then return {'bad_state', ''} end
local dept = redis.call('HGET', tkey, 'department')
local staff = ''
if status == 'ringing' then
  staff = redis.call('HGET', tkey, 'staff') or ''
  redis.call('ZREM', 'yz:ringing', tid)
  if staff ~= '' then
    local since = redis.call('HGET', 'yz:staff:' .. staff, 'since') or now
    make_available(staff, tonumber(since))
  end
end
redis.call('ZREM', 'yz:queue:' .. dept, tid)
redis.call('HSET', tkey, 'status', 'cancelled', 'ended_at', now, 'staff', '')
redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event', 'CANCEL', 'ticket', tid,
           'department', dept, 'staff', staff)
return {'ok', staff}
"""

# ARGV: ticket_id, now. The consultation is over: ticket ended, its staff member available again.
_FINISH = _MAKE_AVAILABLE + """
local tid, now = ARGV[1], tonumber(ARGV[2])
local tkey = 'yz:ticket:' .. tid
if redis.call('HGET', tkey, 'status') ~= 'connected' then return '' end
local staff = redis.call('HGET', tkey, 'staff') or ''
redis.call('HSET', tkey, 'status', 'ended', 'ended_at', now)
if staff ~= '' and redis.call('HGET', 'yz:staff:' .. staff, 'ticket') == tid then
  if tonumber(redis.call('HGET', 'yz:staff:' .. staff, 'conns') or '0') > 0 then
    make_available(staff, now)
  else
    make_unavailable(staff, 'offline', now)
  end
end
redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event', 'COMPLETE', 'ticket', tid,
           'department', redis.call('HGET', tkey, 'department'), 'staff', staff)
return staff
"""

# ARGV: ticket_id, rating. Returns code.
_RATE = """
local tkey = 'yz:ticket:' .. ARGV[1]
local status = redis.call('HGET', tkey, 'status')
if status ~= 'ended' and status ~= 'connected' then return 'bad_state' end
if redis.call('HEXISTS', tkey, 'rating') == 1 then return 'bad_state' end
redis.call('HSET', tkey, 'rating', ARGV[2])
return 'ok'
"""


# ARGV: now. After a restart of the only process using this Redis (the private Redis): nobody is
# connected and no room is running any more, so nobody can be available, ringing or in a call.
# Waiting tickets keep their places; rings go back to the queue; calls whose room died are ended.
_RESET_AFTER_RESTART = _MAKE_AVAILABLE + """
local now = tonumber(ARGV[1])
for _, tid in ipairs(redis.call('ZRANGE', 'yz:ringing', 0, -1)) do requeue(tid) end
for _, key in ipairs(redis.call('KEYS', 'yz:staff:*')) do
  redis.call('HSET', key, 'presence', 'offline', 'conns', 0, 'ticket', '', 'since', now)
end
for _, dept in ipairs(redis.call('SMEMBERS', 'yz:depts')) do
  redis.call('DEL', 'yz:available:' .. dept)
end
local ended = 0
for _, key in ipairs(redis.call('KEYS', 'yz:room:*')) do
  local tid = redis.call('HGET', key, 'ticket_id')
  if tid and redis.call('HGET', 'yz:ticket:' .. tid, 'status') == 'connected' then
    redis.call('HSET', 'yz:ticket:' .. tid, 'status', 'ended', 'ended_at', now)
    redis.call('XADD', 'yz:log', 'MAXLEN', '~', 100000, '*', 'event', 'ABANDON', 'ticket', tid,
               'department', redis.call('HGET', 'yz:ticket:' .. tid, 'department'),
               'staff', redis.call('HGET', 'yz:ticket:' .. tid, 'staff') or '')
    ended = ended + 1
  end
  redis.call('DEL', key)
end
return ended
"""


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    number: str
    department: str
    status: str
    seq: int
    created_at: float
    staff: str = ""
    room_id: str = ""
    rating: int | None = None

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Ticket:
        rating = data.get("rating")
        return cls(
            ticket_id=data["ticket_id"], number=data["number"], department=data["department"],
            status=data["status"], seq=int(data["seq"]), created_at=float(data["created_at"]),
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
    """Typed access to the Redis keys above. Every multi-key change is one Lua script."""

    def __init__(self, redis: aioredis.Redis) -> None:
        # decode_responses=True: every reply is str. redis-py's types cannot know that.
        self.redis: Any = redis
        self._dispatch = redis.register_script(_DISPATCH)
        self._set_presence = redis.register_script(_SET_PRESENCE)
        self._accept = redis.register_script(_ACCEPT)
        self._release = redis.register_script(_RELEASE)
        self._expire_rings = redis.register_script(_EXPIRE_RINGS)
        self._cancel = redis.register_script(_CANCEL)
        self._finish = redis.register_script(_FINISH)
        self._rate = redis.register_script(_RATE)
        self._reset_after_restart = redis.register_script(_RESET_AFTER_RESTART)

    async def reset_after_restart(self, now: float) -> int:
        """Clear connection-bound state left by a previous run; only for a Redis no other process
        uses. Returns how many calls were ended because their room died with that run."""
        return int(await self._reset_after_restart(args=[now]))

    # departments -------------------------------------------------------------------------
    async def put_department(self, dept_id: str, name_zh: str, name_en: str, prefix: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(K + "depts", dept_id)
            pipe.hset(K + f"dept:{dept_id}", mapping={
                "id": dept_id, "name_zh": name_zh, "name_en": name_en, "prefix": prefix})
            await pipe.execute()

    async def departments(self) -> list[dict[str, str]]:
        ids = sorted(await self.redis.smembers(K + "depts"))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for dept_id in ids:
                pipe.hgetall(K + f"dept:{dept_id}")
            rows = await pipe.execute()
        return [row for row in rows if row]

    async def department(self, dept_id: str) -> dict[str, str] | None:
        row = await self.redis.hgetall(K + f"dept:{dept_id}")
        return row or None

    # users and sessions ---------------------------------------------------------------------
    async def put_user(self, username: str, *, display_name: str, role: str,
                       departments: tuple[str, ...], password_hash: str) -> None:
        await self.redis.hset(K + f"user:{username}", mapping={
            "username": username, "display_name": display_name, "role": role,
            "departments": ",".join(departments), "password": password_hash,
        })

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

    # tickets ------------------------------------------------------------------------------
    async def create_ticket(self, dept_id: str, prefix: str, now: float) -> tuple[Ticket, str]:
        """Enter a new ticket into the department's queue; returns it and its secret token."""
        day = time.strftime("%Y%m%d", time.localtime(now))
        seq = int(await self.redis.incr(K + "seq:ticket"))
        count = int(await self.redis.incr(K + f"seq:number:{dept_id}:{day}"))
        await self.redis.expire(K + f"seq:number:{dept_id}:{day}", 3 * 86400)
        ticket_id = secrets.token_hex(8)
        token = secrets.token_urlsafe(24)
        ticket = Ticket(ticket_id=ticket_id, number=f"{prefix}A{count:03d}", department=dept_id,
                        status="waiting", seq=seq, created_at=now)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(K + f"ticket:{ticket_id}", mapping={
                "ticket_id": ticket_id, "number": ticket.number, "department": dept_id,
                "status": "waiting", "seq": seq, "created_at": now,
                "token_hash": hash_token(token), "staff": "", "room_id": "",
            })
            pipe.zadd(K + f"queue:{dept_id}", {ticket_id: seq})
            pipe.xadd(K + "log", {"event": "ENTER", "ticket": ticket_id, "department": dept_id,
                                  "staff": ""}, maxlen=100000, approximate=True)
            await pipe.execute()
        return ticket, token

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

    async def set_ticket_room(self, ticket_id: str, room_id: str) -> None:
        await self.redis.hset(K + f"ticket:{ticket_id}", "room_id", room_id)

    async def cancel_ticket(self, ticket_id: str, now: float) -> tuple[str, str]:
        code, staff = await self._cancel(args=[ticket_id, now])
        return str(code), str(staff)

    async def finish_ticket(self, ticket_id: str, now: float) -> str:
        return str(await self._finish(args=[ticket_id, now]))

    async def rate_ticket(self, ticket_id: str, rating: int) -> str:
        return str(await self._rate(args=[ticket_id, rating]))

    # presence and dispatch -------------------------------------------------------------------
    async def staff_state(self, username: str) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(K + f"staff:{username}"))

    async def add_connection(self, username: str, delta: int) -> int:
        return int(await self.redis.hincrby(K + f"staff:{username}", "conns", delta))

    async def set_presence(self, username: str, state: str, now: float) -> tuple[str, str, str]:
        code, presence, released = await self._set_presence(args=[username, state, now])
        return str(code), str(presence), str(released)

    async def dispatch(self, dept_id: str, now: float,
                       ring_timeout: float) -> list[tuple[str, str]]:
        flat = await self._dispatch(args=[dept_id, now, ring_timeout, DECLINE_COOLDOWN])
        return list(zip(flat[::2], flat[1::2], strict=True))

    async def accept(self, ticket_id: str, username: str, now: float) -> str:
        return str(await self._accept(args=[ticket_id, username, now]))

    async def decline(self, ticket_id: str, username: str, now: float) -> str:
        return str(await self._release(args=[ticket_id, username, now, "DECLINE"]))

    async def expire_rings(self, now: float) -> list[tuple[str, str]]:
        flat = await self._expire_rings(args=[now])
        return list(zip(flat[::2], flat[1::2], strict=True))

    async def ringing_deadline(self, ticket_id: str) -> float | None:
        score = await self.redis.zscore(K + "ringing", ticket_id)
        return float(score) if score is not None else None

    # rooms --------------------------------------------------------------------------------
    async def create_room_token(self, room_id: str, *, role: str, participant_id: str, name: str,
                                department: str, ticket_id: str, ttl: int = 4 * 3600) -> str:
        token = secrets.token_urlsafe(24)
        key = K + f"roomtoken:{hash_token(token)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"room_id": room_id, "role": role, "name": name,
                                    "participant_id": participant_id, "department": department,
                                    "ticket_id": ticket_id})
            pipe.expire(key, ttl)
            await pipe.execute()
        return token

    async def room_token(self, token: str) -> dict[str, str] | None:
        row = await self.redis.hgetall(K + f"roomtoken:{hash_token(token)}")
        return row or None

    async def put_room(self, room_id: str, fields: dict[str, Any]) -> None:
        await self.redis.hset(K + f"room:{room_id}", mapping={"room_id": room_id, **fields})

    async def delete_room(self, room_id: str) -> None:
        await self.redis.delete(K + f"room:{room_id}")

    async def log(self, event: str, **fields: str) -> None:
        await self.redis.xadd(K + "log", {"event": event, **fields}, maxlen=100000,
                              approximate=True)


def _user(row: dict[str, str]) -> User:
    return User(username=row["username"], display_name=row.get("display_name", row["username"]),
                role=row["role"],
                departments=tuple(d for d in row.get("departments", "").split(",") if d))
