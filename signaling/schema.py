"""Every Socket.IO event: what a client may send (`EVENTS`, checked by `parse`) and what the
server sends (`OUTBOUND`, one TypedDict per payload; signaling/fanout.py sends nothing else).

A handler never sees a payload that did not pass `parse`: unknown or missing fields, wrong types,
out-of-range values and oversized payloads are refused with `invalid_payload`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from signaling import notice
from signaling.errors import SignalError
from signaling.states import Presence

ID_MAX = 64
TOKEN_MAX = 128
SDP_MAX = 60_000
CHAT_MAX = 500
# How deep a payload or API body may nest lists and objects (none of the service's nests more
# than 4 levels); checked before anything walks it recursively.
MAX_NESTING = 32


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests lists and objects more than `limit` levels deep (walked
    without recursion, however deep it is)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@dataclass(frozen=True)
class Field:
    type: type
    required: bool = True
    max_len: int | None = None
    choices: tuple[Any, ...] | None = None
    min: int | None = None
    max: int | None = None

    def check(self, name: str, value: Any) -> None:
        # bool is a subclass of int: refuse True where a number is expected.
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise SignalError("invalid_payload", f"{name} must be {self.type.__name__}")
        self._check_range(name, value)

    def _check_range(self, name: str, value: Any) -> None:
        # A separate method: `value` stays Any here, not narrowed to `object` by isinstance.
        if self.max_len is not None and len(value) > self.max_len:
            raise SignalError("invalid_payload", f"{name} is longer than {self.max_len}")
        if isinstance(value, str) and self.required and not value:
            raise SignalError("invalid_payload", f"{name} must not be empty")
        if self.choices is not None and value not in self.choices:
            raise SignalError("invalid_payload", f"{name} must be one of {self.choices}")
        if self.min is not None and value < self.min:
            raise SignalError("invalid_payload", f"{name} must be at least {self.min}")
        if self.max is not None and value > self.max:
            raise SignalError("invalid_payload", f"{name} must be at most {self.max}")


def _id() -> Field:
    return Field(str, max_len=ID_MAX)


def _token() -> Field:
    return Field(str, max_len=TOKEN_MAX)


# namespace -> event -> fields
EVENTS: dict[str, dict[str, dict[str, Field]]] = {
    "/kiosk": {
        "ticket:create": {"department": _id(), "consent": Field(bool),
                          "priority": Field(bool, required=False),
                          "channel": Field(str, required=False, choices=("kiosk", "web")),
                          "also": Field(list, required=False, max_len=4),
                          # A booking code (预约) arrived with: the booked lane, in its window.
                          "booking": Field(str, required=False, max_len=16)},
        "ticket:resume": {"ticket_id": _id(), "token": _token()},
        "ticket:cancel": {"ticket_id": _id(), "token": _token()},
        # One of rating (the ticket's own department, as before 会商 could be rated) and
        # ratings ([{department, score, reasons?, comment?}], checked by signaling/ratings.py).
        "rating:submit": {"ticket_id": _id(), "token": _token(),
                          "rating": Field(int, required=False, min=1, max=5),
                          "ratings": Field(list, required=False, max_len=8)},
        "rating:options": {"ticket_id": _id(), "token": _token()},
        "callback:request": {"department": _id(), "name": Field(str, max_len=32),
                             "phone": Field(str, max_len=24),
                             "note": Field(str, required=False, max_len=200),
                             # Checked by the handler: anything but true is consent_required.
                             "consent": Field(bool, required=False)},
    },
    "/staff": {
        "presence:set": {"state": Field(str, choices=(Presence.AVAILABLE.value,
                                                      Presence.AWAY.value)),
                         "reason": Field(str, required=False, max_len=32)},
        "callback:list": {},
        "callback:done": {"callback_id": _id()},
        "call:accept": {"ticket_id": _id()},
        "call:decline": {"ticket_id": _id()},
    },
    "/room": {
        # base: the grant's, sent back with it as it came (ignored: the server knows its node).
        "room:join": {"room_id": _id(), "token": _token(),
                      "base": Field(str, required=False, max_len=40)},
        "room:answer": {"sdp": Field(str, max_len=SDP_MAX)},
        "room:hangup": {},
        "room:chat": {"text": Field(str, max_len=CHAT_MAX)},
        "room:media": {"audio": Field(bool), "video": Field(bool)},
        "room:share": {"on": Field(bool)},
        # the 一次性告知单 (signaling/notice.py): staff edit their department's part
        "notice:get": {},
        "notice:add": {"matter_id": _id()},
        "notice:remove": {"matter_id": _id()},
        "notice:material": {"matter_id": _id(),
                            "item": Field(int, required=False, min=0,
                                          max=notice.MAX_MATERIALS - 1),
                            "checked": Field(bool, required=False),
                            "text": Field(str, required=False, max_len=notice.TEXT_MAX)},
        "notice:note": {"text": Field(str, max_len=notice.NOTE_MAX)},
        "notice:sign": {},
    },
}


def parse(namespace: str, event: str, payload: Any, max_bytes: int) -> dict[str, Any]:
    """Validate one event's payload against its schema and return it as a dict."""
    fields = EVENTS.get(namespace, {}).get(event)
    if fields is None:
        raise SignalError("invalid_payload", f"unknown event {event!r}")
    if payload is None and not fields:
        return {}
    if not isinstance(payload, Mapping):
        raise SignalError("invalid_payload", "payload must be an object")
    if nested_deeper_than(payload, MAX_NESTING):
        raise SignalError("invalid_payload", f"payload nests deeper than {MAX_NESTING} levels")
    try:
        size = len(json.dumps(payload, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        raise SignalError("invalid_payload", "payload is not JSON") from None
    if size > max_bytes:
        raise SignalError("invalid_payload", f"payload is larger than {max_bytes} bytes")
    unknown = set(payload) - set(fields)
    if unknown:
        raise SignalError("invalid_payload", f"unknown field(s) {sorted(unknown)}")
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in payload:
            if spec.required:
                raise SignalError("invalid_payload", f"{name} is required")
            continue
        spec.check(name, payload[name])
        out[name] = payload[name]
    return out


# Server → client ------------------------------------------------------------------------------
# The payloads are built by signaling/views.py (tickets, staff), signaling/consult.py (会商) and
# rooms/ (the /room events); docs/protocol.md describes every field.

class RoomGrant(TypedDict):
    """A room token for one participant: join with `room:join` on the `/room` socket at
    `<base>/socket.io/` (base: "" or the hosting node's "/n/<name>")."""
    room_id: str
    token: str
    base: str


class TicketView(TypedDict):
    ticket_id: str
    number: str
    department: str
    also: list[str]
    priority: bool
    channel: str
    status: str
    position: int
    eta_seconds: float | None
    created_at: float
    hall: str  # the hall of the registered kiosk that took it; '' for an anonymous one
    # Present once connected (None when the room is gone), and in a connected ticket's answers.
    room: NotRequired[RoomGrant | None]


class Invite(TypedDict):
    """A pending 会商 invitation of a department to a live room."""
    room_id: str
    department: str
    note: str
    from_department: str
    invited_by: str
    invited_by_username: str
    ticket_id: str
    ticket_number: str
    created_at: float


class StaffRoom(TypedDict):
    """The room a (re)connecting desk is in, with a fresh token."""
    room_id: str
    token: str
    base: str
    guest: bool
    ticket: TicketView | None


class StaffState(TypedDict):
    username: str
    display_name: str
    departments: list[str]
    presence: str
    reason: str
    wrap_up_until: float | None
    queues: dict[str, int]
    longest: dict[str, float | None]
    callbacks: int
    # Only in the first staff:state after a connect.
    invites: NotRequired[list[Invite]]
    room: NotRequired[StaffRoom]


class InviteClosed(TypedDict):
    room_id: str
    department: str
    reason: str  # taken, ended
    by: NotRequired[str]


class CallIncoming(TypedDict):
    ticket_id: str
    number: str
    department: str
    priority: bool
    expires_at: float


class CallWithdrawn(TypedDict):
    ticket_id: str
    reason: str  # cancelled, timeout


class QueueUpdate(TypedDict):
    department: str
    waiting: int
    longest_since: float | None


class Callback(TypedDict):
    """A callback request in full: only for the staff of its department (callback:list)."""
    callback_id: str
    department: str
    name: str
    phone: str
    note: str
    created_at: float
    consent_version: str  # the notice the applicant consented to (signaling/privacy.py)


class CallbackNew(TypedDict):
    """A new callback request, without personal data: the desk reads it with callback:list."""
    callback_id: str
    department: str
    created_at: float


class SessionEnded(TypedDict):
    reason: str


class ServiceState(TypedDict):
    """Redis went (`degraded`: the queue waits, events answer `unavailable`) or is back (`ok`:
    the state is sent again)."""
    state: str  # degraded, ok


class CallbackDone(TypedDict):
    callback_id: str


class DeviceRevoked(TypedDict):
    """This registered kiosk was revoked: the server closes the socket right after."""
    device_id: str


class InterpreterUnavailable(TypedDict):
    """The applicant asked for an interpreter and nobody with the skill is available: the call
    goes on without one."""
    skill: str


class RoomOffer(TypedDict):
    sdp: str
    publish: dict[str, str]  # audio, video, screen -> mid
    tracks: list[dict[str, Any]]  # mid, kind, participant_id, role, name, source


class RoomParticipants(TypedDict):
    participants: list[dict[str, Any]]  # rooms.participant.Participant.info()
    recording: str  # on, interrupted


class RoomEnded(TypedDict):
    reason: str  # a rooms.close_reason.CloseReason, replaced, or why a login session ended


class RoomChat(TypedDict):
    participant_id: str
    name: str
    role: str
    text: str
    t: float


class RoomSpeaking(TypedDict):
    participant_id: str
    speaking: bool


class NoticeUpdate(TypedDict):
    """The room's 一次性告知单 after a change, whole (signaling/notice.py describes it)."""
    notice: dict[str, Any]


# namespace -> event -> payload
OUTBOUND: dict[str, dict[str, type]] = {
    "/kiosk": {"ticket:update": TicketView, "service:state": ServiceState,
               "device:revoked": DeviceRevoked,
               "interpreter:unavailable": InterpreterUnavailable},
    "/staff": {
        "service:state": ServiceState,
        "staff:state": StaffState,
        "room:invite": Invite,
        "room:invite_closed": InviteClosed,
        "call:incoming": CallIncoming,
        "call:withdrawn": CallWithdrawn,
        "queue:update": QueueUpdate,
        "callback:new": CallbackNew,
        "callback:done": CallbackDone,
        "session:ended": SessionEnded,
    },
    "/room": {
        "room:offer": RoomOffer,
        "room:participants": RoomParticipants,
        "room:ended": RoomEnded,
        "room:chat": RoomChat,
        "room:speaking": RoomSpeaking,
        "notice:update": NoticeUpdate,
    },
}
