"""The queue script: the Lua of signaling/queue.lua after a prelude generated here from the Python
names it shares (key builders, the lane split, presence states, ticket statuses, event kinds,
reply codes), how its named operations are called, and the one decoder of its reply."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from signaling import keys
from signaling.config import SignalingConfig
from signaling.states import Presence, TicketStatus

logger = logging.getLogger(__name__)


class Op(StrEnum):
    """The script's operations (the table `ops` at the end of queue.lua)."""
    ENQUEUE = "enqueue"
    DISPATCH = "dispatch"
    PRESENCE = "presence"
    ACCEPT = "accept"
    DECLINE = "decline"
    CANCEL = "cancel"
    FINISH = "finish"
    RATE = "rate"
    CONNECTION = "connection"
    HEARTBEAT = "heartbeat"
    TICK = "tick"
    ROOM = "room"
    ROOM_CLOSED = "room_closed"
    DUTY = "duty"
    FORGET_NODES = "forget_nodes"
    ADDRESS_SOCKET = "address_socket"
    OUTAGE_OVER = "outage_over"


class Code(StrEnum):
    """What an operation answers: ok, or why it changed nothing."""
    OK = "ok"
    BAD_STATE = "bad_state"
    NOT_OFFERED = "not_offered"
    UNKNOWN_DEPARTMENT = "unknown_department"
    QUEUE_FULL = "queue_full"
    LIMIT = "limit"
    DEVICE_BUSY = "limit.device_ticket"  # the registered kiosk has an open ticket
    DEVICE_REVOKED = "device_revoked"
    NOT_PARTICIPANT = "not_participant"  # rated a department that did not take part
    BOOKING_USED = "booking_used"  # the booking was used, released, or is another department's


class EventKind(StrEnum):
    """What changed, for the sockets concerned (signaling/fanout.py tells them)."""
    RING = "ring"            # <ticket> <staff>: a staff member is rung for a ticket
    WITHDRAWN = "withdrawn"  # <ticket> <staff>: a ring was taken back (cancelled, gone, timeout)
    PAUSED = "paused"        # <staff> <reason>: set away by the server (missed rings)
    PRESENCE = "presence"    # <staff> <presence>: changed without their asking
    TICKET = "ticket"        # <ticket> <status>: changed without its applicant asking
    QUEUE = "queue"          # <department> '': a department's queue changed


class Event(NamedTuple):
    kind: EventKind
    a: str
    b: str


class TicketFacts(NamedTuple):
    """A ticket as the script left it: its hash (empty when it is gone) and its ring deadline."""
    fields: dict[str, str]
    deadline: float | None


class PoolFacts(NamedTuple):
    waiting: int
    longest_since: float | None  # created_at of the longest-waiting ticket
    callbacks: int


class StaffFacts(NamedTuple):
    """A staff member as the script left them: their state hash and their pools' overview."""
    state: dict[str, str]
    pools: dict[str, PoolFacts]


class Events(list[Event]):
    """An operation's events, with what the script read, in the same call, of the tickets and
    staff members they name (and of the tickets the operation returns): the fan-out tells the
    sockets from these without reading them again."""

    def __init__(self, events: Iterable[Event] = (),
                 tickets: dict[str, TicketFacts] | None = None,
                 staff: dict[str, StaffFacts] | None = None) -> None:
        super().__init__(events)
        self.tickets: dict[str, TicketFacts] = tickets or {}
        self.staff: dict[str, StaffFacts] = staff or {}


# An operation's value: a string, a count, a list of counts, or nothing.
Value = str | int | list[Any] | None


@dataclass(frozen=True)
class Reply:
    """The one shape every operation answers: {code, events, facts, value} (the facts ride
    with the events)."""
    code: Code
    events: Events
    value: Value = None


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _float(text: str) -> float | None:
    return float(text) if text else None


def decode(raw: list[Any]) -> Reply:
    """The script's reply, typed (Lua leaves a nil value out of the array)."""
    code, events, (tickets, staff), *value = raw
    return Reply(Code(code), Events(
        (Event(EventKind(kind), a, b) for kind, a, b in events),
        {tid: TicketFacts(_pairs(fields), _float(deadline)) for tid, deadline, fields in tickets},
        {user: StaffFacts(_pairs(state), {
            pool: PoolFacts(int(waiting), _float(longest), int(callbacks))
            for pool, waiting, longest, callbacks in pools}) for user, state, pools in staff},
    ), value[0] if value else None)


def argv(op: str, now: float, config: SignalingConfig, *args: Any) -> list[Any]:
    """The script's ARGV: the operation, the time, the policy (see queue.lua), its arguments."""
    return [op, now, config.decline_cooldown, config.staff_grace, config.ticket_grace,
            config.ticket_keep_hours * 3600, *args]


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _lua_key(value: str | keys.Family) -> str:
    if isinstance(value, str):
        return _lua_string(value)
    # A field is the function's parameter of that name.
    pieces = [text if field else _lua_string(text) for field, text in value.pieces()]
    return f"function({', '.join(value.fields)}) return {' .. '.join(pieces)} end"


def _lua_table(name: str, entries: Iterable[tuple[str, str]]) -> list[str]:
    return [f"local {name} = strict('{name}', {{",
            *[f"  {key} = {value}," for key, value in entries], "})"]


def prelude() -> str:
    """The Lua names queue.lua shares with Python; a name it lacks is an error, not nil."""
    lines = [
        "-- Generated by signaling/queue.py from the Python definitions; queue.lua follows.",
        "local function strict(name, t)",
        "  return setmetatable(t, {__index = function(_, k)",
        "    error(name .. '.' .. tostring(k) .. ' is not defined', 2)",
        "  end})",
        "end",
        *_lua_table("K", ((n, _lua_key(v)) for n, v in keys.signaling_keys().items())),
        f"local LANE_SPLIT = {keys.LANE_SPLIT}",
        f"local BOOKED_LANE = {keys.BOOKED_LANE}",
        f"local LOG_MAXLEN = {keys.LOG_MAXLEN}",
    ]
    for enum in (Presence, TicketStatus, EventKind, Code):
        lines += _lua_table(enum.__name__, ((m.name, _lua_string(m.value)) for m in enum))
    return "\n".join(lines) + "\n"


SCRIPT = prelude() + (Path(__file__).parent / "queue.lua").read_text(encoding="utf-8")


class QueueScript:
    """The script registered on a Redis client: one EVALSHA per operation, atomic."""

    def __init__(self, redis: aioredis.Redis, config: SignalingConfig) -> None:
        self._script = redis.register_script(SCRIPT)
        self._config = config

    async def __call__(self, op: Op, now: float, *args: Any) -> Reply:
        return decode(await self._script(args=argv(op, now, self._config, *args)))
