"""What the fuzzer sends, as hypothesis strategies: socket events built from the schemas
(`signaling.schema.EVENTS`), valid and then broken (wrong types, huge strings, deep nesting,
unicode, nulls, negatives, missing and extra fields, another namespace's events, reserved and
unknown names, several arguments), raw Engine.IO / Socket.IO frames, and HTTP requests for every
route of the app.

Values that must name something the run has seen (a ticket and its token, a ticket that rang, a
room grant, a callback) are `Ref`s, filled in by the runner when it sends."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from server.seed import DEMO_DEPARTMENTS, DEMO_MATTERS
from signaling.schema import EVENTS, Field
from signaling.socket_server import RESERVED_EVENTS

# The healthy clients live in this department and account: the fuzzer never names them.
HEALTHY_DEPARTMENT = "estate"
HEALTHY_STAFF = "estate01"
DEPARTMENTS = tuple(d.id for d in DEMO_DEPARTMENTS if d.id != HEALTHY_DEPARTMENT)
NAMESPACES = tuple(EVENTS)


@dataclass(frozen=True)
class Ref:
    """Something the run has seen, picked by `pick` (modulo how many there are): `kind` is
    ticket (its id or token, by field), rung (a ticket that rang this socket), room (a room
    grant's id or token) or callback (a callback request's id)."""

    kind: str
    pick: int


@dataclass(frozen=True)
class Args:
    """More than one argument to an event (the schema allows one payload object)."""

    values: tuple[Any, ...]


# --- values ------------------------------------------------------------------------------------

def nested(depth: int, leaf: Any = 0) -> Any:
    """Lists and objects alternating `depth` levels deep, built without recursion."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


ODD_STRINGS = (
    "", " ", "\n", "\x00", "\t\r", "null", "None", "NaN", "-1", "0", "1e309", "true", "[]", "{}",
    "../../etc/passwd", "..", "%00", "%2e%2e%2f", "<script>alert(1)</script>", "' OR 1=1 --",
    "yz:ticket:*", "*", "?", "#", "ticket:create", "/kiosk", "\u202e", "\ufeff", "𠜎𠜱𠝹",
    "Ｔａｘ", "税务", "١٢٣", "１２３４５６", "²", "a" * 64, "a" * 65, "\ud800", "a\udfffb",
)
text = st.text(max_size=40)
odd_text = st.sampled_from(ODD_STRINGS)
huge_text = st.integers(1_000, 90_000).map(lambda n: "字" * (n // 3) + "x" * (n % 3))
numbers = st.one_of(
    st.integers(-(2 ** 70), 2 ** 70), st.sampled_from([0, -1, 1, 2 ** 31, 2 ** 63, -(2 ** 63)]),
    st.floats(allow_nan=True, allow_infinity=True))
shallow_json = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, text, odd_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(text, inner, max_size=4)),
    max_leaves=12)
junk = st.one_of(
    st.none(), st.booleans(), numbers, text, odd_text, huge_text, shallow_json,
    st.integers(2, 60).map(nested), st.just([]), st.just({}),
    st.lists(odd_text, max_size=6))


# --- socket events -----------------------------------------------------------------------------

_REF_FIELDS = {
    ("/kiosk", "ticket_id"): "ticket", ("/kiosk", "token"): "ticket",
    ("/staff", "ticket_id"): "rung", ("/staff", "callback_id"): "callback",
    ("/room", "room_id"): "room", ("/room", "token"): "room",
}
_PHONES = st.one_of(st.from_regex(r"\A1[3-9][0-9]{9}\Z"), st.from_regex(r"\A\+?[0-9 -]{3,22}\Z"))
_SDP = st.sampled_from([
    "v=0\r\n", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\n",
    "m=audio 0 RTP/AVP 0\r\n", "not sdp at all"])


def _field_value(namespace: str, name: str, spec: Field, pick: int) -> st.SearchStrategy[Any]:
    """A value the schema accepts (or nearly: an unknown department, a long text)."""
    kind = _REF_FIELDS.get((namespace, name))
    if kind is not None:
        return st.one_of(st.just(Ref(kind, pick)), st.just(Ref(kind, pick)), text, odd_text)
    if spec.choices is not None:
        return st.sampled_from(spec.choices)
    if spec.type is bool:
        return st.booleans()
    if spec.type is int:
        return st.integers(spec.min if spec.min is not None else -5,
                           spec.max if spec.max is not None else 5)
    if spec.type is list:
        return st.lists(st.sampled_from(DEPARTMENTS) | text, max_size=(spec.max_len or 4) + 1)
    if name == "department":
        return st.one_of(st.sampled_from(DEPARTMENTS), st.sampled_from(DEPARTMENTS), odd_text)
    if name == "phone":
        return _PHONES
    if name == "sdp":
        return _SDP
    return st.one_of(text, odd_text, st.text(min_size=1, max_size=spec.max_len or 40))


@st.composite
def valid_payload(draw: st.DrawFn, namespace: str, event: str) -> dict[str, Any]:
    pick = draw(st.integers(0, 1000))
    out: dict[str, Any] = {}
    for name, spec in EVENTS[namespace][event].items():
        if spec.required or draw(st.booleans()):
            out[name] = draw(_field_value(namespace, name, spec, pick))
    if event in ("ticket:create", "callback:request") and draw(st.integers(0, 3)):
        out["consent"] = True  # mostly: otherwise nearly every one is consent_required
    return out


@st.composite
def broken_payload(draw: st.DrawFn, namespace: str, event: str) -> Any:
    """A valid payload with one thing wrong, or no object at all."""
    base = draw(valid_payload(namespace, event))
    how = draw(st.sampled_from(["drop", "extra", "junk_field", "junk", "args", "list", "none",
                                "deep"]))
    if how == "drop" and base:
        base.pop(draw(st.sampled_from(sorted(base))))
    elif how == "extra":
        base.update(draw(st.dictionaries(text | odd_text, junk, min_size=1, max_size=3)))
    elif how == "junk_field" and base:
        base[draw(st.sampled_from(sorted(base)))] = draw(junk)
    elif how == "junk":
        return draw(junk)
    elif how == "args":
        return Args((base, *draw(st.lists(junk, min_size=1, max_size=3))))
    elif how == "list":
        return [base]
    elif how == "none":
        return None
    elif how == "deep":
        return nested(draw(st.integers(30, 200)), base)
    return base


@dataclass(frozen=True)
class Emit:
    """One event on one of the run's sockets (`socket` modulo how many it has of `namespace`)."""

    namespace: str
    socket: int
    event: str
    payload: Any


@dataclass(frozen=True)
class Replay:
    """Send again the `back`-th latest event sent (a replay: the same ticket cancelled twice, a
    ring accepted twice, a join repeated)."""

    back: int


@dataclass(frozen=True)
class Burst:
    """Events sent all at once, answered in whatever order the server gets to them."""

    emits: tuple[Emit, ...]


@dataclass(frozen=True)
class Reconnect:
    """One of the run's sockets goes away and comes back (a reload)."""

    namespace: str
    socket: int


@dataclass(frozen=True)
class Handshake:
    """A fresh connection to a namespace with a made-up cookie and auth: accepted or refused."""

    namespace: str
    cookie: str
    auth: Any


def _all_events() -> list[tuple[str, str]]:
    return [(ns, event) for ns, events in EVENTS.items() for event in events]


@st.composite
def emit(draw: st.DrawFn) -> Emit:
    namespace = draw(st.sampled_from(NAMESPACES))
    socket = draw(st.integers(0, 7))
    own = sorted(EVENTS[namespace])
    kind = draw(st.sampled_from(["valid", "valid", "valid", "broken", "broken", "other_ns",
                                 "unknown"]))
    if kind in ("valid", "broken"):
        event = draw(st.sampled_from(own))
        make = valid_payload if kind == "valid" else broken_payload
        return Emit(namespace, socket, event, draw(make(namespace, event)))
    if kind == "other_ns":
        other_ns, event = draw(st.sampled_from([e for e in _all_events() if e[0] != namespace]))
        return Emit(namespace, socket, event, draw(valid_payload(other_ns, event)))
    event = draw(st.one_of(text, odd_text, st.sampled_from([e.upper() for e in own]),
                           st.sampled_from([e + " " for e in own]),
                           st.sampled_from(sorted(RESERVED_EVENTS))))
    return Emit(namespace, socket, event, draw(junk))


# A call from the kiosk to the desk and on into the room, as the pages make it (`dept` picks the
# department and its desk, the run's sockets are in the same order), to be replayed and reordered.
FLOW = ("create", "available", "accept", "room_socket", "join", "room_socket", "join", "answer",
        "chat", "media", "share", "hangup", "rate")


def flow_step(step: str, dept: int, n: int) -> Emit | Reconnect:
    """One step of a call; `n` varies what it says and which earlier grant it uses."""
    ticket = {"ticket_id": Ref("ticket", -1), "token": Ref("ticket", -1)}
    room = {"room_id": Ref("room", -1 - n % 2), "token": Ref("room", -1 - n % 2)}
    steps: dict[str, Emit | Reconnect] = {
        "create": Emit("/kiosk", n, "ticket:create",
                       {"department": DEPARTMENTS[dept], "consent": True}),
        "available": Emit("/staff", dept, "presence:set", {"state": "available"}),
        "away": Emit("/staff", dept, "presence:set", {"state": "away", "reason": "break"}),
        "accept": Emit("/staff", dept, "call:accept", {"ticket_id": Ref("rung", -1)}),
        "decline": Emit("/staff", dept, "call:decline", {"ticket_id": Ref("rung", -1)}),
        "cancel": Emit("/kiosk", n, "ticket:cancel", ticket),
        "resume": Emit("/kiosk", n, "ticket:resume", ticket),
        "rate": Emit("/kiosk", n, "rating:submit", {**ticket, "rating": 1 + n % 5}),
        "rating_options": Emit("/kiosk", n, "rating:options", ticket),
        "rate_departments": Emit("/kiosk", n, "rating:submit", {**ticket, "ratings": [
            {"department": DEPARTMENTS[dept], "score": 1 + n % 5, "reasons": ["long_wait"][:n % 2],
             "comment": "慢" * (n % 3)},
            {"department": DEPARTMENTS[(dept + 1) % len(DEPARTMENTS)], "score": 5}][:1 + n % 2]}),
        "callback": Emit("/kiosk", n, "callback:request", {
            "department": DEPARTMENTS[dept], "name": "张三", "phone": f"1380000{n:04d}",
            "consent": True}),
        "callbacks": Emit("/staff", dept, "callback:list", {}),
        "callback_done": Emit("/staff", dept, "callback:done",
                              {"callback_id": Ref("callback", -1)}),
        "room_socket": Reconnect("/room", n),
        "join": Emit("/room", n, "room:join", room),
        "answer": Emit("/room", n, "room:answer", {"sdp": "v=0\r\n" * (1 + n % 3)}),
        "chat": Emit("/room", n, "room:chat", {"text": f"您好 {n}"}),
        "media": Emit("/room", n, "room:media", {"audio": n % 2 == 0, "video": n % 3 == 0}),
        "share": Emit("/room", n, "room:share", {"on": n % 2 == 0}),
        "hangup": Emit("/room", n, "room:hangup", {}),
    }
    return steps[step]


@st.composite
def call_flow(draw: st.DrawFn) -> list[Emit | Reconnect]:
    """The call's steps in order, then a few swapped, repeated, dropped or added."""
    steps = list(FLOW)
    others = ("away", "decline", "cancel", "resume", "callback", "callbacks", "callback_done",
              "rating_options", "rate_departments", *FLOW)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(steps) - 1))
        how = draw(st.sampled_from(["swap", "repeat", "drop", "add"]))
        if how == "swap" and i + 1 < len(steps):
            steps[i], steps[i + 1] = steps[i + 1], steps[i]
        elif how == "repeat":
            steps.insert(i, steps[i])
        elif how == "drop" and len(steps) > 3:
            del steps[i]
        elif how == "add":
            steps.insert(i, draw(st.sampled_from(others)))
    dept = draw(st.integers(0, len(DEPARTMENTS) - 1))
    return [flow_step(step, dept, draw(st.integers(0, 11))) for step in steps]


socket_action = st.one_of(
    emit(), emit(), emit(), emit(), emit(),
    st.builds(Replay, st.integers(1, 20)),
    st.builds(Burst, st.lists(emit(), min_size=2, max_size=6).map(tuple)),
    st.builds(Reconnect, st.sampled_from(NAMESPACES), st.integers(0, 7)),
    st.builds(Handshake, st.sampled_from([*NAMESPACES, "/", "/nope", "/kiosk/x"]),
              st.one_of(text, odd_text, st.just("yz_session=" + "a" * 43)),
              st.none() | st.dictionaries(text, junk, max_size=3)),
)
# A batch: single actions and whole calls, flattened.
socket_batch = st.lists(st.one_of(socket_action.map(lambda a: [a]), call_flow()),
                        min_size=8, max_size=8).map(lambda parts: [a for p in parts for a in p])


# --- raw frames --------------------------------------------------------------------------------

def _packet(namespace: str, data: str, ack: str = "") -> str:
    return f"42{namespace},{ack}{data}"


DEEP = "[" * 2000 + "]" * 2000
frame_text = st.one_of(
    # Socket.IO packets with broken JSON, deep nesting, odd types and ids
    st.builds(lambda ns, n: _packet(ns, '["ticket:create",' + "[" * n + "]" * n + "]", "1"),
              st.sampled_from(NAMESPACES), st.integers(100, 5000)),
    st.builds(lambda ns, n: _packet(ns, "[" * n + "]" * n, "2"), st.sampled_from(NAMESPACES),
              st.integers(900, 3000)),
    st.just(_packet("/kiosk", DEEP, "3")),
    st.builds(lambda ns, body: _packet(ns, body, "4"), st.sampled_from(NAMESPACES),
              st.one_of(text, odd_text, st.sampled_from(['["x",', "[", "{}", '{"a":1}', "[1]",
                                                         "[null]", '[""]', "[[]]", "null",
                                                         '["room:join"' + ",{}" * 50 + "]"]))),
    st.builds(lambda t, ns, rest: f"4{t}{ns},{rest}", st.integers(0, 9),
              st.sampled_from([*NAMESPACES, "/", "/nope"]), text | odd_text),
    st.builds(lambda n: f"451-/kiosk,{n}" + '["x",{"_placeholder":true,"num":0}]',
              st.integers(0, 9)),
    st.builds(lambda digits: f"42/kiosk,{digits}[\"x\"]", st.text("0123456789", min_size=20,
                                                                 max_size=200)),
    # Engine.IO frames
    st.sampled_from(["", "x", "b", "b!!!", "b====", "bYQ==", "9", "7", "5", "6", "2", "3",
                     "2probe", "4", "40", "41", "49", "4" + DEEP, "2" + DEEP, "\x00", " ",
                     "٣", "٤٢/kiosk,[\"x\"]"]),
    st.text(max_size=60),
)
frame = st.one_of(frame_text, frame_text, st.binary(max_size=64))
frame_batch = st.lists(frame, min_size=1, max_size=3)


# --- HTTP ----------------------------------------------------------------------------------------

ODD_IDS = (
    "x", "tax", "market", "r-tax-001", "0", "-1", "99999999999999999999", "..", "%2e%2e",
    "%00", "%ff", "%", "a%20b", "a" * 65, "a" * 300, "税务", "%E7%A8%8E", "null", "undefined",
    "tax01", "hrss01", "fund01", "nobody", "{id}", "%7B%7D", "a;b", "a,b", "a b",
    "Ｔａｘ", "%F0%9F%98%80", "%C0%AF", "%uD800",
)
QUERY_NAMES = ("from", "to", "department", "staff", "rating", "min_duration", "max_duration",
               "incomplete", "who", "action", "limit", "lang", "page", "q", "EIO", "transport",
               "sid", "state", "overdue")
QUERY_VALUES = (
    "1970-01-01", "1969-12-31", "0001-01-01", "9999-12-31", "2025-02-30", "2025-1-1", "-1", "0",
    "1e309", "nan", "inf", "-inf", "253402300800", "1e20", "1700000000", "none", "²", "１",
    "5", "6", "1", "true", "yes", "", " ", "tax", "zh", "en", "xx", "4", "polling", "websocket",
    "%00", "a" * 200, "99999999999999999999999",
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND", "get")
BODY_NAMES = ("username", "password", "code", "current", "new", "display_name", "role",
              "departments", "hold", "department", "note", "id", "name_zh", "name_en", "prefix",
              "matters", "hours", "closed_days", "ring_timeout", "ring_pause", "max_misses",
              "wrap_up", "max_queue", "backups", "disabled",
              "materials", "legal_basis", "fee", "time_limit", "online", "form", "count", "notes",
              "step", "text", "decision")
CONTENT_TYPES = ("application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/json; charset=latin-1", "APPLICATION/JSON", "", "*/*",
                 "application/json;;", "application/jsonx")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: str
    content_type: str | None
    body: bytes | None
    who: str  # a role whose cookie goes with it, or "" for none


def _fill(pattern: str, ids: list[str]) -> str:
    values = iter(ids)
    return re.sub(r"\{[^}]+\}", lambda _m: next(values, "x"), pattern)


def _matter_body(matter: int, field: str, value: Any) -> bytes:
    data = DEMO_MATTERS[matter % len(DEMO_MATTERS)].to_dict()
    if field.startswith("material."):
        data["materials"] = [{**m, field.partition(".")[2]: value} for m in data["materials"]]
    else:
        data[field] = value
    return json.dumps(data).encode()


def _department_body(dept: int, field: str, value: Any) -> bytes:
    data = DEMO_DEPARTMENTS[dept % len(DEPARTMENTS)].to_dict()
    data[field] = value
    return json.dumps(data).encode()


json_body = st.one_of(
    st.dictionaries(st.sampled_from(BODY_NAMES) | text, junk | text, max_size=5).map(
        lambda d: json.dumps(d).encode()),
    st.builds(_department_body, st.integers(0, 10),
              st.sampled_from(["ring_timeout", "max_queue", "hours", "backups", "closed_days",
                               "matters", "prefix", "name_zh", "wrap_up"]), junk),
    st.builds(_matter_body, st.integers(0, 20),
              st.sampled_from(["id", "department", "name", "materials", "legal_basis", "fee",
                               "time_limit", "online", "material.name", "material.form",
                               "material.count", "material.notes", "material.x"]), junk),
    st.builds(lambda n: ("[" * n + "]" * n).encode(), st.integers(30, 5000)),
    st.builds(lambda n: ('{"a":' * n + "1" + "}" * n).encode(), st.integers(30, 5000)),
    st.builds(lambda n: json.dumps({"username": nested(n, "x")}).encode(), st.integers(10, 60)),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"{", b"\xff\xfe", b"\x00", b'"x"', b"1",
                     b"NaN", b'{"username":"tax01","password":"wrong"}',
                     b'{"username":"admin","password":"' + b"x" * 5000 + b'"}',
                     b'{"username":"\\ud800","password":"x"}', b'{"code":"\xef\xbc\x91"}',
                     b'{"code":"\\uff11\\uff12\\uff13\\uff14\\uff15\\uff16"}',
                     b'{"hold": 1}', b'{"department": ["tax"]}', b'{"note": {}}']),
    st.builds(lambda n: b"x" * n, st.integers(1_000_000, 1_200_000)),
)


@st.composite
def http_request(draw: st.DrawFn, routes: list[tuple[str, str]]) -> HttpRequest:
    """A request to one of `routes` ((method, path pattern) of the app), or to a path of its own."""
    method, pattern = draw(st.sampled_from(routes))
    if draw(st.integers(0, 4)) == 0:
        method = draw(st.sampled_from(METHODS))
    ids = draw(st.lists(st.sampled_from(ODD_IDS) | st.text(
        "abcxyz019-_.%~!$&'()*+,;=:@", min_size=1, max_size=30), min_size=3, max_size=3))
    path = _fill(pattern, ids)
    if draw(st.integers(0, 9)) == 0:
        path = draw(st.sampled_from([path + "/", path + "//x", "//" + path, path + "/..",
                                     "/api/" + "a/" * 50, "/static/../server/config.py",
                                     "/static/%2e%2e/%2e%2e/server/config.py", "/api",
                                     "/" + "a" * draw(st.integers(5_000, 20_000)), "/%",
                                     "/socket.io/", "/api/%ff", path + "%"]))
    names = st.sampled_from(("from", "to")) | st.sampled_from(QUERY_NAMES) | text
    pairs = draw(st.lists(st.tuples(names,
                                    st.sampled_from(QUERY_VALUES) | text), max_size=4))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    if draw(st.integers(0, 19)) == 0:
        query += "&x=" + "a" * draw(st.integers(4_000, 40_000))
    content_type: str | None = None
    body: bytes | None = None
    if method not in ("GET", "HEAD") or draw(st.integers(0, 9)) == 0:
        content_type = draw(st.sampled_from(CONTENT_TYPES))
        body = draw(json_body)
    who = draw(st.sampled_from(["", "admin", "supervisor", "auditor", "staff", "guide"]))
    return HttpRequest(method, path, query, content_type, body, who)
