"""The room directory in Redis: which live room is hosted by which process, for which ticket, with
which 会商 invitations and invited departments; the room tokens that let someone in; and the room
a staff member joined by invitation. `RoomEntry` is an entry, parsed from its hash here only.

Keys (the whole layout: signaling/keys.py):
  yz:room:<room_id>     hash   room_id, node, ticket_id, department, staff, created_at,
                               participants, invite:<dept> (JSON of an Invite), joined:<dept>
                               (the username who took that invitation), lost_node and lost_at
                               (the process that died with it, and when it was swept)
  yz:roomtoken:<sha>    hash   room_id, role, participant_id, name, department, ticket_id
  yz:guest:<username>   string the room a staff member joined by invitation
An entry is written and deleted by the queue script (Store.put_room, Store.delete_room; a dead
process's entries go with it); the scripts below change one only while it exists.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from signaling import keys
from signaling.keys import hash_token
from signaling.schema import Invite
from signaling.store import Store

logger = logging.getLogger(__name__)

INVITE_PREFIX = "invite:"
JOINED_PREFIX = "joined:"
TOKEN_TTL = 4 * 3600
GUEST_TTL = 4 * 3600

ROOM_SET_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSET', KEYS[1], unpack(ARGV))
"""
INVITE_ADD_LUA = f"""
if redis.call('HGET', KEYS[1], 'room_id') == false then return 'gone' end
if redis.call('HEXISTS', KEYS[1], '{INVITE_PREFIX}' .. ARGV[1]) == 1 then return 'pending' end
local pending = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, {len(INVITE_PREFIX)}) == '{INVITE_PREFIX}' then pending = pending + 1 end
end
if pending >= tonumber(ARGV[3]) then return 'full' end
redis.call('HSET', KEYS[1], '{INVITE_PREFIX}' .. ARGV[1], ARGV[2])
return 'ok'
"""
INVITE_TAKE_LUA = f"""
if redis.call('HDEL', KEYS[1], '{INVITE_PREFIX}' .. ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], '{JOINED_PREFIX}' .. ARGV[1], ARGV[2])
  return 'ok'
end
if redis.call('HEXISTS', KEYS[1], '{JOINED_PREFIX}' .. ARGV[1]) == 1 then return 'taken' end
return 'none'
"""


@dataclass(frozen=True)
class Invitation:
    """A pending 会商 invitation of a department into a live room."""
    room_id: str
    department: str
    note: str
    from_department: str
    invited_by: str  # display name
    invited_by_username: str
    ticket_id: str
    ticket_number: str
    created_at: float

    def payload(self) -> Invite:
        return {"room_id": self.room_id, "department": self.department, "note": self.note,
                "from_department": self.from_department, "invited_by": self.invited_by,
                "invited_by_username": self.invited_by_username, "ticket_id": self.ticket_id,
                "ticket_number": self.ticket_number, "created_at": self.created_at}

    @classmethod
    def from_json(cls, raw: str) -> Invitation | None:
        """None for text that is not an invitation (never written by this service)."""
        try:
            data = json.loads(raw)
            return cls(**{f.name: data[f.name] for f in fields(cls)})
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class RoomEntry:
    """A live room's directory entry."""
    room_id: str
    node: str  # the process that hosts the room
    ticket_id: str
    department: str  # the ticket's
    staff: str  # the username who took the call
    created_at: float
    participants: int  # as of the host's last heartbeat
    invites: tuple[Invitation, ...] = ()  # pending, oldest first
    joined: Mapping[str, str] = field(default_factory=dict)  # department -> invitee username
    # Set when the room moved here from a process that died (queue.lua `end_calls_of`).
    lost_node: str = ""
    lost_at: float = 0.0

    @classmethod
    def from_hash(cls, row: Mapping[str, str]) -> RoomEntry | None:
        """None for a missing entry (no room_id: also a half entry that a late write left)."""
        if not row.get("room_id"):
            return None
        invites = [i for f, raw in row.items() if f.startswith(INVITE_PREFIX)
                   if (i := Invitation.from_json(raw)) is not None]
        return cls(
            room_id=row["room_id"], node=row.get("node", ""), ticket_id=row.get("ticket_id", ""),
            department=row.get("department", ""), staff=row.get("staff", ""),
            created_at=float(row.get("created_at") or 0),
            participants=int(row.get("participants") or 0),
            invites=tuple(sorted(invites, key=lambda i: i.created_at)),
            joined={f[len(JOINED_PREFIX):]: v for f, v in row.items()
                    if f.startswith(JOINED_PREFIX)},
            lost_node=row.get("lost_node", ""), lost_at=float(row.get("lost_at") or 0))

    @property
    def departments(self) -> list[str]:
        """The departments taking part: the ticket's, then those that joined by invitation."""
        return [self.department, *sorted(self.joined)]

    @property
    def invited(self) -> set[str]:
        """The departments with a pending invitation."""
        return {i.department for i in self.invites}

    def joined_as(self, username: str) -> str:
        """The department a staff member joined the room for by invitation, or ''."""
        return next((dept for dept, who in self.joined.items() if who == username), "")


class RoomDirectory:
    """Typed access to the keys above."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._redis: Any = store.redis
        self._room_set = store.redis.register_script(ROOM_SET_LUA)
        self._invite_add = store.redis.register_script(INVITE_ADD_LUA)
        self._invite_take = store.redis.register_script(INVITE_TAKE_LUA)

    # entries ----------------------------------------------------------------------------------
    async def open(self, room_id: str, *, node: str, ticket_id: str, department: str,
                   staff: str, now: float) -> str:
        """A room of `node` serves a ticket from now on (the ticket gets its room_id too), unless
        another node claimed the room first. Returns the owner."""
        return await self._store.put_room(room_id, node=node, ticket_id=ticket_id,
                                   department=department, staff=staff, now=now)

    async def close(self, room_id: str) -> None:
        await self._store.delete_room(room_id)

    async def entry(self, room_id: str) -> RoomEntry | None:
        return RoomEntry.from_hash(await self._redis.hgetall(keys.ROOM(room_id)))

    async def live(self) -> list[RoomEntry]:
        """Every live room of every process known to be alive, oldest first."""
        nodes = await self._redis.zrange(keys.NODES, 0, -1)
        ids: set[str] = set()
        for node in nodes:
            ids |= set(await self._redis.smembers(keys.NODE(node, "rooms")))
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id in sorted(ids):
                pipe.hgetall(keys.ROOM(room_id))
            rows = await pipe.execute()
        entries = [e for row in rows if (e := RoomEntry.from_hash(row)) is not None]
        return sorted(entries, key=lambda e: e.created_at)

    async def set_participants(self, room_id: str, count: int) -> bool:
        """The host's participant count; False (and nothing written) once the entry is gone, so
        a late write cannot leave a stray half entry behind."""
        return int(await self._room_set(keys=[keys.ROOM(room_id)],
                                        args=["participants", str(count)])) >= 0

    async def to_adopt(self, node: str) -> list[str]:
        """The rooms of dead processes moved to `node`, not re-created there yet."""
        return sorted(await self._redis.smembers(keys.NODE(node, "adopt")))

    async def adopted(self, node: str, room_id: str) -> None:
        await self._redis.srem(keys.NODE(node, "adopt"), room_id)

    # 会商 invitations -------------------------------------------------------------------------
    async def add_invite(self, invitation: Invitation, max_pending: int) -> str:
        """Record a pending invitation: ok, or why not (gone, pending, full)."""
        return str(await self._invite_add(
            keys=[keys.ROOM(invitation.room_id)],
            args=[invitation.department,
                  json.dumps(invitation.payload(), ensure_ascii=False), max_pending]))

    async def take_invite(self, room_id: str, department: str, username: str) -> str:
        """The first member of the department to join takes the invitation: ok, taken (a
        colleague was first) or none (there never was one, or it was withdrawn)."""
        return str(await self._invite_take(keys=[keys.ROOM(room_id)],
                                           args=[department, username]))

    async def set_guest(self, username: str, room_id: str | None) -> None:
        """The room a staff member joined by invitation (found again after a page reload)."""
        if room_id:
            await self._redis.set(keys.GUEST(username), room_id, ex=GUEST_TTL)
        else:
            await self._redis.delete(keys.GUEST(username))

    async def guest_room(self, username: str) -> str:
        return str(await self._redis.get(keys.GUEST(username)) or "")

    # room tokens ------------------------------------------------------------------------------
    async def create_token(self, room_id: str, *, role: str, participant_id: str, name: str,
                           department: str, ticket_id: str, ttl: int = TOKEN_TTL) -> str:
        token = secrets.token_urlsafe(24)
        key = keys.ROOM_TOKEN(hash_token(token))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"room_id": room_id, "role": role, "name": name,
                                    "participant_id": participant_id, "department": department,
                                    "ticket_id": ticket_id})
            pipe.expire(key, ttl)
            await pipe.execute()
        return token

    async def token(self, token: str) -> dict[str, str] | None:
        """What a room token grants: room_id, role, participant_id, name, department,
        ticket_id."""
        row = await self._redis.hgetall(keys.ROOM_TOKEN(hash_token(token)))
        return row or None
