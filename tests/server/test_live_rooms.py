"""Who may enter a live room, over the real HTTP API and Socket.IO against the real app and Redis:
the supervisors' live-room list and silent listening in (scoped, audited), 会商 invitations of
another department (the first colleague takes it), and the hall guide of a ticket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from recordings.audit import AUDIT
from server.config import Config
from server.keys import ACCOUNTS, DIRECTORY, ROOMS, STORE
from signaling.accounts import hash_password
from signaling.client import SignalingClient, login_cookie
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

PASSWORD = "demo12345"


@pytest.fixture
def config(config: Config) -> Config:
    # Nobody sends media in these tests: keep the rooms open while the API is tried.
    return replace(config, media=replace(config.media, empty_room_timeout=60.0))


class Http:
    """One logged-in (or anonymous) browser's worth of cookies."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = client_session()

    async def login(self, username: str) -> Http:
        await logged_in(self.session, self.base, username)
        return self

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(self.base + path) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.base + path, json=body or {}) as response:
            return response.status, await response.json()

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[Any]:
    opened: list[Http] = []

    async def make(username: str | None = None) -> Http:
        client = Http(server.url)
        opened.append(client)
        return await client.login(username) if username else client

    yield make
    for client in opened:
        await client.close()


@pytest.fixture
async def sockets() -> AsyncIterator[list[SignalingClient]]:
    opened: list[SignalingClient] = []
    yield opened
    for client in opened:
        await client.close()


async def _add_user(server: LiveServer, username: str, role: str,
                    departments: tuple[str, ...] = ()) -> None:
    await server.app[ACCOUNTS].put(username, display_name=username, role=role,
                                     departments=departments,
                                     password_hash=hash_password(PASSWORD))


async def _staff(server: LiveServer, sockets: list[SignalingClient],
                 username: str) -> SignalingClient:
    client = await SignalingClient.connect(server.url, "/staff",
                                           await login_cookie(server.url, username, PASSWORD))
    sockets.append(client)
    await client.next("staff:state")
    return client


async def _live_room(server: LiveServer, sockets: list[SignalingClient],
                     department: str = "tax", staff: str = "tax01", guide: str = "",
                     also: tuple[str, ...] = ()
                     ) -> tuple[str, SignalingClient, SignalingClient]:
    """A ticket made at the kiosk (by a guide if given), accepted by `staff`, who is then in the
    room (joined over /room; no media needed for these checks). Returns the room id, the staff
    member's desk socket and their room socket."""
    cookie = await login_cookie(server.url, guide, PASSWORD) if guide else None
    kiosk = await SignalingClient.connect(server.url, "/kiosk", cookie)
    sockets.append(kiosk)
    desk = await _staff(server, sockets, staff)
    await desk.request("presence:set", {"state": "available"})
    ticket = (await kiosk.request("ticket:create", {"department": department, "consent": True,
                                                    "also": list(also)}))["ticket"]
    await desk.next("call:incoming", ticket_id=ticket["ticket_id"])
    room = (await desk.request("call:accept", {"ticket_id": ticket["ticket_id"]}))["room"]
    channel = await SignalingClient.connect(server.url, "/room")
    sockets.append(channel)
    await channel.request("room:join", room)
    return room["room_id"], desk, channel


async def test_live_rooms_are_listed_for_supervisors_in_scope_and_observe_is_audited(
        server: LiveServer, http: Any, sockets: list[SignalingClient],
        redis_client: aioredis.Redis) -> None:
    await _add_user(server, "marketsup", "supervisor", ("market",))
    await _add_user(server, "taxsup", "supervisor", ("tax",))
    room_id, _desk, _channel = await _live_room(server, sockets)

    anonymous = await http()
    assert (await anonymous.get("/api/rooms"))[0] == 401
    status, body = await anonymous.post(f"/api/rooms/{room_id}/observe")
    assert (status, body["error"]["code"]) == (401, "unauthenticated")
    for username in ("tax01", "guide01"):
        user = await http(username)
        assert (await user.get("/api/rooms"))[0] == 403
        status, body = await user.post(f"/api/rooms/{room_id}/observe")
        assert (status, body["error"]["code"]) == (403, "forbidden")
        assert "督查" in body["error"]["message"]

    supervisor = await http("supervisor")
    status, body = await supervisor.get("/api/rooms")
    assert status == 200
    [listed] = body["rooms"]
    assert listed["room_id"] == room_id
    assert listed["departments"] == ["tax"]
    assert listed["ticket_number"] == "税A001"
    assert listed["staff"] == "tax01"
    assert listed["participants"] == 1
    assert listed["started_at"] > 0

    # A supervisor scoped to other departments neither sees nor enters the room.
    market = await http("marketsup")
    assert (await market.get("/api/rooms"))[1]["rooms"] == []
    status, body = await market.post(f"/api/rooms/{room_id}/observe")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert body["error"]["message"] == "您只能旁听所管辖部门的会话。"

    for path in ("/api/rooms/r-nope/observe", "/api/rooms/..%2f/observe"):
        status, body = await supervisor.post(path)
        assert status == 404, path

    taxsup = await http("taxsup")
    status, body = await taxsup.post(f"/api/rooms/{room_id}/observe")
    assert status == 200
    grant = body["room"]
    assert (grant["role"], grant["participant_id"]) == ("supervisor", "v-taxsup")
    token = await server.app[DIRECTORY].token(grant["token"])
    assert token is not None
    assert (token["room_id"], token["role"]) == (room_id, "supervisor")
    entries = await stream_entries(redis_client, AUDIT)
    observed = [e for e in entries if e["action"] == "observe"]
    assert [(e["who"], e["recording_id"], e["department"]) for e in observed] == [
        ("taxsup", room_id, "tax")]
    # Refusals leave no trace of access (sign-ins are audited too).
    assert all(e["who"] == "taxsup" for e in entries if e["action"] != "login")

    # The token gets the supervisor in as a silent observer.
    listener = await SignalingClient.connect(server.url, "/room")
    sockets.append(listener)
    joined = await listener.request("room:join", {"room_id": room_id, "token": grant["token"]})
    assert joined["role"] == "supervisor"
    info = {p["participant_id"]: p for p in joined["participants"]}
    assert info["v-taxsup"]["observer"] is True


async def test_a_department_is_invited_and_the_first_colleague_takes_the_invitation(
        server: LiveServer, http: Any, sockets: list[SignalingClient],
        config: Config) -> None:
    await _add_user(server, "market02", "staff", ("market",))
    market01 = await _staff(server, sockets, "market01")
    market02 = await _staff(server, sockets, "market02")
    await market01.request("presence:set", {"state": "available"})
    room_id, _desk, channel = await _live_room(server, sockets)

    # Only a staff member who is in the room may invite.
    outsider = await http("market01")
    status, body = await outsider.post(f"/api/rooms/{room_id}/invite", {"department": "hrss"})
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert (await (await http()).post(f"/api/rooms/{room_id}/invite",
                                      {"department": "hrss"}))[0] == 401
    supervisor = await http("supervisor")
    assert (await supervisor.post(f"/api/rooms/{room_id}/invite",
                                  {"department": "hrss"}))[0] == 403

    tax = await http("tax01")
    status, body = await tax.post(f"/api/rooms/{room_id}/invite",
                                  {"department": "market", "note": "营业执照变更涉及税务登记"})
    assert status == 200, body
    for desk in (market01, market02):
        invite = await desk.next("room:invite", room_id=room_id)
        assert invite["department"] == "market"
        assert invite["from_department"] == "tax"
        assert invite["note"] == "营业执照变更涉及税务登记"
        assert invite["ticket_number"] == "税A001"
        assert invite["invited_by"] == "税务坐席01"

    # Bad invitations change nothing.
    for payload, code in (({"department": "market"}, "pending"),
                          ({"department": "tax"}, "in_room"),
                          ({"department": "mars"}, "unknown_department"),
                          ({"department": "../x"}, "invalid_payload"),
                          ({"department": "hrss", "note": "x" * 201}, "invalid_payload")):
        status, body = await tax.post(f"/api/rooms/{room_id}/invite", payload)
        assert body["error"]["code"] == code, payload
        assert status in (400, 409)
    assert (await tax.post("/api/rooms/r-nope/invite", {"department": "hrss"}))[0] == 404

    # Joining needs an invitation of one's own department.
    hrss = await http("hrss01")
    status, body = await hrss.post(f"/api/rooms/{room_id}/join")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert (await (await http()).post(f"/api/rooms/{room_id}/join"))[0] == 401
    assert (await supervisor.post(f"/api/rooms/{room_id}/join"))[0] == 403
    assert (await hrss.post("/api/rooms/r-nope/join"))[0] == 404

    first = await http("market01")
    status, body = await first.post(f"/api/rooms/{room_id}/join")
    assert status == 200, body
    assert (body["room"]["role"], body["room"]["participant_id"]) == ("staff", "s-market01")
    assert body["department"] == "market"
    grant = await server.app[DIRECTORY].token(body["room"]["token"])
    assert grant is not None and grant["department"] == "market"
    closed = await market02.next("room:invite_closed", room_id=room_id)
    assert closed["reason"] == "taken"

    second = await http("market02")
    status, body = await second.post(f"/api/rooms/{room_id}/join")
    assert (status, body["error"]["code"]) == (409, "taken")
    assert body["error"]["message"] == "同事已加入该会商。"

    # The invitee is not rung for new tickets while in the room.
    state = await server.app[STORE].staff_state("market01")
    assert (state["presence"], state["reason"]) == ("away", "consult")

    # The room now counts as market's too, for scoping and for further invitations.
    status, body = await tax.post(f"/api/rooms/{room_id}/invite", {"department": "market"})
    assert body["error"]["code"] == "in_room"
    listed = (await supervisor.get("/api/rooms"))[1]["rooms"]
    assert listed[0]["departments"] == ["tax", "market"]

    # A desk that connects later finds pending invitations in its first staff:state.
    assert (await tax.post(f"/api/rooms/{room_id}/invite", {"department": "hrss"}))[0] == 200
    hrss_desk = await SignalingClient.connect(server.url, "/staff",
                                              await login_cookie(server.url, "hrss01", PASSWORD))
    sockets.append(hrss_desk)
    first_state = await hrss_desk.next("staff:state")
    assert [(i["room_id"], i["department"]) for i in first_state["invites"]] == [
        (room_id, "hrss")]

    # And a reloaded invitee's desk is given the room back.
    again = await SignalingClient.connect(server.url, "/staff",
                                          await login_cookie(server.url, "market01", PASSWORD))
    sockets.append(again)
    back = await again.next("staff:state")
    assert back["room"]["room_id"] == room_id and back["room"]["guest"] is True

    log = await server.app[STORE].log_entries(0, 2e10)
    assert [(e["event"], e["department"], e["staff"]) for e in log
            if e["event"] in ("INVITE", "JOIN")] == [
        ("INVITE", "market", "tax01"), ("JOIN", "market", "market01"),
        ("INVITE", "hrss", "tax01")]
    room = server.app[ROOMS].get(room_id)
    assert room is not None

    # Leaving puts the invitee back on duty; the room goes on.
    assert (await first.post(f"/api/rooms/{room_id}/leave"))[0] == 200
    state = await server.app[STORE].staff_state("market01")
    assert state["presence"] == "available"
    assert (await second.post(f"/api/rooms/{room_id}/leave"))[0] == 403

    # The room ends: the invitation still pending is withdrawn, and the recording's timeline
    # has the invitations and the join.
    await channel.request("room:hangup", {})
    closed = await hrss_desk.next("room:invite_closed", room_id=room_id)
    assert (closed["department"], closed["reason"]) == ("hrss", "ended")
    timeline_path = config.recordings_dir / room_id / "timeline.json"
    for _ in range(100):  # written as the room closes
        if timeline_path.exists():
            break
        await asyncio.sleep(0.1)
    events = json.loads(timeline_path.read_text())["events"]
    assert [(e["type"], e["department"], e["participant_id"]) for e in events
            if e["type"] in ("invite", "invite_taken")] == [
        ("invite", "market", "s-tax01"), ("invite_taken", "market", "s-market01"),
        ("invite", "hrss", "s-tax01")]
    assert await server.app[DIRECTORY].entry(room_id) is None


async def test_at_most_a_few_invitations_are_pending(
        server: LiveServer, http: Any, sockets: list[SignalingClient]) -> None:
    room_id, _desk, _channel = await _live_room(server, sockets)
    tax = await http("tax01")
    for dept in ("market", "hrss", "fund"):
        assert (await tax.post(f"/api/rooms/{room_id}/invite", {"department": dept}))[0] == 200
    status, body = await tax.post(f"/api/rooms/{room_id}/invite", {"department": "estate"})
    assert (status, body["error"]["code"]) == (409, "too_many_invites")


async def test_the_guide_of_a_ticket_joins_its_room_and_no_other(
        server: LiveServer, http: Any, sockets: list[SignalingClient]) -> None:
    await _add_user(server, "guide02", "guide")
    market = await _staff(server, sockets, "market01")
    room_id, _desk, _channel = await _live_room(server, sockets, guide="guide01",
                                                also=("market",))

    # The department named besides the main one at the kiosk is invited when the room opens.
    invite = await market.next("room:invite", room_id=room_id)
    assert (invite["department"], invite["from_department"]) == ("market", "tax")

    guide = await http("guide01")
    status, body = await guide.get("/api/rooms/mine")
    assert status == 200
    [mine] = body["tickets"]
    assert (mine["room_id"], mine["status"], mine["number"]) == (room_id, "connected", "税A001")
    status, body = await guide.post(f"/api/rooms/{room_id}/join")
    assert status == 200, body
    assert (body["room"]["role"], body["room"]["participant_id"]) == ("guide", "g-guide01")
    channel = await SignalingClient.connect(server.url, "/room")
    sockets.append(channel)
    joined = await channel.request("room:join", {"room_id": room_id,
                                                 "token": body["room"]["token"]})
    assert joined["role"] == "guide"
    # The guide may add a department too (the guide steers the consultation).
    status, body = await guide.post(f"/api/rooms/{room_id}/invite", {"department": "fund"})
    assert status == 200, body

    other = await http("guide02")
    assert (await other.get("/api/rooms/mine"))[1]["tickets"] == []
    status, body = await other.post(f"/api/rooms/{room_id}/join")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert body["error"]["message"] == "您只能加入自己引导的会话。"
    status, body = await other.post(f"/api/rooms/{room_id}/invite", {"department": "hrss"})
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert (await other.post("/api/rooms/r-nope/join"))[0] == 404
    assert (await (await http("tax01")).get("/api/rooms/mine"))[0] == 403
