"""Interpreters as a routable skill, over the real HTTP API and Socket.IO against the real app and
Redis: a request for sign language rings the sign pool and no other, the interpreter joins with
the room role `interpreter` (in the timeline), nobody available leaves the call going and tells
the kiosk, and an interpreter enters only the rooms their pool is invited to."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from server.config import Config
from server.keys import DIRECTORY, ROOMS, STORE
from signaling import keys
from signaling.client import SignalingClient, login_cookie
from signaling.skills import room_role, skill_of
from tests.server.test_live_rooms import (  # noqa: F401 (fixtures)
    PASSWORD,
    _live_room,
    _staff,
    http,
    sockets,
)
from tests.support.server import LiveServer


@pytest.fixture
def config(config: Config) -> Config:
    # Nobody sends media in these tests: keep the rooms open while the API is tried.
    return replace(config, media=replace(config.media, empty_room_timeout=60.0))


def test_pool_names() -> None:
    assert skill_of("interp-sign") == "sign" and skill_of("interp-ko") == "ko"
    assert skill_of("tax") is None and skill_of("interp-") is None
    assert (room_role("interp-mn"), room_role("market")) == ("interpreter", "staff")


async def _available(server: LiveServer, sockets: list[SignalingClient],  # noqa: F811
                     username: str) -> SignalingClient:
    desk = await _staff(server, sockets, username)
    await desk.request("presence:set", {"state": "available"})
    return desk


async def _timeline(config: Config, room_id: str) -> list[dict[str, Any]]:
    path = config.recordings_dir / room_id / "timeline.json"
    for _ in range(100):  # written as the room closes
        if path.exists():
            break
        await asyncio.sleep(0.1)
    return list(json.loads(path.read_text())["events"])


async def test_a_sign_request_rings_the_sign_pool_and_the_interpreter_joins_as_interpreter(
        server: LiveServer, http: Any, sockets: list[SignalingClient],  # noqa: F811
        config: Config) -> None:
    sign = await _available(server, sockets, "sign01")
    korean = await _available(server, sockets, "ko01")
    room_id, _desk, channel = await _live_room(server, sockets, also=("interp-sign",))
    kiosk = sockets[0]

    invite = await sign.next("room:invite", room_id=room_id)
    assert (invite["department"], invite["from_department"]) == ("interp-sign", "tax")
    await asyncio.sleep(0.3)
    assert korean.queue("room:invite").empty()  # the Korean pool is not rung

    # Only the invited skill's interpreter enters; not another pool's, not a department's.
    for username in ("ko01", "market01"):
        status, body = await (await http(username)).post(f"/api/rooms/{room_id}/join")
        assert (status, body["error"]["code"]) == (403, "forbidden"), username
    interpreter = await http("sign01")
    status, body = await interpreter.post(f"/api/rooms/{room_id}/join")
    assert status == 200, body
    assert (body["room"]["role"], body["room"]["participant_id"]) == ("interpreter",
                                                                      "i-sign01")
    assert body["department"] == "interp-sign"
    room_socket = await SignalingClient.connect(server.url, "/room")
    sockets.append(room_socket)
    joined = await room_socket.request("room:join", {"room_id": room_id,
                                                     "token": body["room"]["token"]})
    assert joined["role"] == "interpreter"
    assert {(p["participant_id"], p["role"]) for p in joined["participants"]} >= {
        ("i-sign01", "interpreter"), ("s-tax01", "staff")}
    # The interpreter is out of the queue while in the room, and reads the notice only.
    state = await server.app[STORE].staff_state("sign01")
    assert (state["presence"], state["reason"]) == ("away", "consult")
    answer = await room_socket.call("notice:note", {"text": "x"})
    assert answer["error"]["code"] == "forbidden"
    # A reloaded interpreter's desk gets the room back, still as the interpreter.
    again = await SignalingClient.connect(server.url, "/staff",
                                          await login_cookie(server.url, "sign01", PASSWORD))
    sockets.append(again)
    back = await again.next("staff:state")
    assert back["room"]["room_id"] == room_id and back["room"]["guest"] is True
    grant = await server.app[DIRECTORY].token(back["room"]["token"])
    assert grant is not None and grant["role"] == "interpreter"
    assert kiosk.queue("interpreter:unavailable").empty()
    # The pool took part, but is no department the applicant rates.
    room = server.app[ROOMS].get(room_id)
    assert room is not None
    fields = await server.app[STORE].redis.hgetall(keys.TICKET(room.meta.ticket_id))
    assert not [f for f in fields if str(f).startswith("joined:")]

    await channel.request("room:hangup", {})
    events = await _timeline(config, room_id)
    assert [(e["type"], e["department"], e["participant_id"], e.get("role")) for e in events
            if e["type"] in ("invite", "invite_taken")] == [
        ("invite", "interp-sign", "s-tax01", None),
        ("invite_taken", "interp-sign", "i-sign01", "interpreter")]
    assert any(e["type"] == "join" and e["participant_id"] == "i-sign01"
               and e["role"] == "interpreter" for e in events)
    state = await server.app[STORE].staff_state("sign01")
    assert state["presence"] == "available"  # back on duty when the call ends


async def test_no_interpreter_available_the_call_goes_on_and_the_kiosk_is_told(
        server: LiveServer, http: Any, sockets: list[SignalingClient],  # noqa: F811
        config: Config) -> None:
    room_id, _desk, channel = await _live_room(server, sockets, also=("interp-sign",))
    kiosk = sockets[0]
    told = await kiosk.next("interpreter:unavailable")
    assert told == {"skill": "sign"}
    # Nothing is pending for the pool, and nobody of it may enter.
    await _staff(server, sockets, "sign01")  # signed in, but away: not available
    status, body = await (await http("sign01")).post(f"/api/rooms/{room_id}/join")
    assert (status, body["error"]["code"]) == (403, "forbidden")

    # Staff add one mid-call from the invite form: refused while nobody is available…
    tax = await http("tax01")
    status, body = await tax.post(f"/api/rooms/{room_id}/invite", {"department": "interp-ko"})
    assert (status, body["error"]["code"]) == (409, "no_interpreter")
    # …and rung once one is.
    korean = await _available(server, sockets, "ko01")
    status, body = await tax.post(f"/api/rooms/{room_id}/invite", {"department": "interp-ko"})
    assert status == 200, body
    invite = await korean.next("room:invite", room_id=room_id)
    assert invite["department"] == "interp-ko"

    log = await server.app[STORE].log_entries(0, 2e10)
    assert [(e["event"], e["department"]) for e in log
            if e["event"] in ("NOINTERPRETER", "INVITE")] == [
        ("NOINTERPRETER", "interp-sign"), ("NOINTERPRETER", "interp-ko"),
        ("INVITE", "interp-ko")]
    await channel.request("room:hangup", {})
    events = await _timeline(config, room_id)
    assert [e["skill"] for e in events if e["type"] == "interpreter_unavailable"] == [
        "sign", "ko"]


async def test_an_interpreter_pool_is_no_queue_and_an_interpreter_sees_only_invited_rooms(
        server: LiveServer, http: Any, sockets: list[SignalingClient]) -> None:  # noqa: F811
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    sockets.append(kiosk)
    answer = await kiosk.call("ticket:create", {"department": "interp-sign", "consent": True})
    assert answer["error"]["code"] == "unknown_department"

    await _available(server, sockets, "sign01")
    room_id, _desk, _channel = await _live_room(server, sockets)  # no interpreter asked for
    status, body = await (await http("sign01")).post(f"/api/rooms/{room_id}/join")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    # An interpreter cannot invite anyone, nor list or observe live rooms.
    interpreter = await http("sign01")
    status, body = await interpreter.post(f"/api/rooms/{room_id}/invite",
                                          {"department": "interp-ko"})
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert (await interpreter.get("/api/rooms"))[0] == 403
    # The kiosk lists the pools with their skill, apart from the departments.
    status, body = await interpreter.get("/api/departments")
    skills = {d["id"]: d["skill"] for d in body["departments"]}
    assert skills["interp-sign"] == "sign" and skills["tax"] is None
