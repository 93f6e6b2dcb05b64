"""Reconnection through the real server: a participant whose connection drops (its websocket
closed under it, its peer connection gone, nobody saying goodbye) keeps their place for the
reconnect grace, shown to the others as reconnecting; a rejoin with the same room token gets the
place back with a new peer connection and the recording goes on with new track files; past the
grace the participant is taken out. An empty-room timeout shorter than the grace does not close
the room meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import av
import pytest

from rooms.client import RoomClient
from server.config import Config
from server.keys import ARCHIVE, DIRECTORY, ROOMS
from signaling.client import SignalingClient
from tests.support.recordings import finished_timeline
from tests.support.rooms import Call

GRACE = 3.0


@pytest.fixture
def config(config: Config) -> Config:
    # An empty room would close after 1 s: reconnecting participants must keep it open.
    return replace(config, media=replace(config.media, reconnect_grace=GRACE,
                                         empty_room_timeout=1.0))


async def _client(server: Any, call: Call, token: str, name: str) -> RoomClient:
    return await RoomClient.connect(server.url, call.room_id, token, name=name,
                                    width=320, height=240)


async def drop(client: RoomClient) -> None:
    """A network drop as the server sees it: the websocket closes without a Socket.IO or
    Engine.IO goodbye, and the peer connection stops answering."""
    ws = client.sio.eio.ws
    assert ws is not None
    await ws.close()
    for _ in range(50):
        if not client.sio.connected:
            break
        await asyncio.sleep(0.1)
    await client.peer.close()


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def until_async(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def info(client: RoomClient, participant_id: str) -> dict[str, Any] | None:
    return next((p for p in client.peer.participants if p["participant_id"] == participant_id),
                None)


async def test_a_dropped_participant_rejoins_within_the_grace_and_the_recording_goes_on(
        server: Any, call: Call, config: Config) -> None:
    applicant = await _client(server, call, call.applicant_token, "applicant")
    desk = await _client(server, call, call.staff_token, "staff")
    again: RoomClient | None = None
    try:
        pid = applicant.participant_id or ""
        await applicant.wait_for_video(10, timeout=10)
        await desk.wait_for_video(10, timeout=10)

        await drop(applicant)
        await until(lambda: (info(desk, pid) or {}).get("reconnecting") is True, 5,
                    "the desk to see the applicant reconnecting")
        frames = desk.stats()[pid]["video_frames"]

        again = await _client(server, call, call.applicant_token, "applicant again")
        assert again.participant_id == pid and again.role == "applicant"
        await until(lambda: (info(desk, pid) or {}).get("reconnecting") is False, 5,
                    "the desk to see the applicant back")
        # The desk decodes the applicant's new video, the applicant the desk's.
        await desk.wait_for_video(frames + 15, timeout=10, participant_id=pid)
        await again.wait_for_video(15, timeout=10)
        assert [p["participant_id"] for p in desk.peer.participants].count(pid) == 1
        await desk.hangup()
    finally:
        for client in (applicant, desk, again):
            if client is not None:
                await client.close()

    timeline = await finished_timeline(config.recordings_dir, call.room_id)
    events = [(e["type"], e.get("participant_id")) for e in timeline["events"]]
    assert ("reconnecting", pid) in events and ("reconnected", pid) in events
    assert events.index(("reconnecting", pid)) < events.index(("reconnected", pid))
    assert ("leave", pid) not in events[:events.index(("reconnected", pid))]
    # One participant entry; the rejoin published new tracks, recorded in files of their own.
    assert [p["participant_id"] for p in timeline["participants"]].count(pid) == 1
    videos = sorted((t for t in timeline["tracks"]
                     if t["participant_id"] == pid and t["kind"] == "video"),
                    key=lambda t: t["started_at"])
    assert len(videos) == 2, timeline["tracks"]
    reconnected_at = next(e["t"] for e in timeline["events"] if e["type"] == "reconnected")
    assert videos[1]["started_at"] >= reconnected_at - 0.5
    for track in videos:
        with av.open(str(config.recordings_dir / call.room_id / track["file"])) as container:
            frames = sum(1 for _ in container.decode(container.streams.video[0]))
        assert frames > 5, track


async def test_past_the_grace_the_participant_is_taken_out(
        server: Any, call: Call, config: Config) -> None:
    applicant = await _client(server, call, call.applicant_token, "applicant")
    desk = await _client(server, call, call.staff_token, "staff")
    try:
        pid = applicant.participant_id or ""
        await desk.wait_for_video(5, timeout=10)
        dropped_at = time.monotonic()
        await drop(applicant)
        await until(lambda: (info(desk, pid) or {}).get("reconnecting") is True, 5,
                    "the desk to see the applicant reconnecting")
        await until(lambda: info(desk, pid) is None, GRACE + 5, "the applicant to be taken out")
        assert time.monotonic() - dropped_at >= GRACE - 0.2
        room = server.app[ROOMS].get(call.room_id)
        assert room is not None and not room.closed
        assert room.participant(pid) is None
        await desk.hangup()
    finally:
        await applicant.close()
        await desk.close()
    timeline = await finished_timeline(config.recordings_dir, call.room_id)
    leave = [e for e in timeline["events"] if e["type"] == "leave" and e["participant_id"] == pid]
    assert [e["reason"] for e in leave] == ["reconnect_timeout"]


async def test_past_the_grace_the_desk_that_took_the_call_ends_the_consultation(
        server: Any, call: Call, config: Config) -> None:
    """The call's staff member is the one who can serve the applicant: when their connection
    dropped (a crashed desk browser) and they did not come back, the room ends for everybody,
    as if they had hung up; the recording is finished and sealed."""
    applicant = await _client(server, call, call.applicant_token, "applicant")
    desk = await _client(server, call, call.staff_token, "staff")
    try:
        pid = desk.participant_id or ""
        assert desk.role == "staff"
        await applicant.wait_for_video(5, timeout=10)
        dropped_at = time.monotonic()
        await drop(desk)
        await until(lambda: (info(applicant, pid) or {}).get("reconnecting") is True, 5,
                    "the applicant to see the desk reconnecting")
        await asyncio.wait_for(applicant.peer.ended.wait(), GRACE + 5)
        assert time.monotonic() - dropped_at >= GRACE - 0.2
        assert applicant.peer.ended_reason == "reconnect_timeout"
        room = server.app[ROOMS].get(call.room_id)
        assert room is None or room.closed
    finally:
        await applicant.close()
        await desk.close()
    timeline = await finished_timeline(config.recordings_dir, call.room_id)
    events = [(e["type"], e.get("participant_id"), e.get("reason")) for e in timeline["events"]]
    assert ("leave", pid, "reconnect_timeout") in events
    assert events[-1] == ("close", None, "reconnect_timeout")
    await until_async(lambda: server.app[ARCHIVE].entry(call.room_id), 5, "the recording indexed")
    assert (await server.app[ARCHIVE].verify(call.room_id)).ok


async def test_a_room_whose_only_participant_is_reconnecting_stays_open(
        server: Any, call: Call) -> None:
    applicant = await _client(server, call, call.applicant_token, "applicant")
    again: RoomClient | None = None
    try:
        pid = applicant.participant_id or ""
        room = server.app[ROOMS].get(call.room_id)
        # The drop comes once the first negotiation is over: this test is about the empty-room
        # timeout, not about a drop in the middle of the first offer and answer.
        await until(lambda: room.participant(pid) is not None
                    and room.participant(pid).pc.connectionState == "connected", 10,
                    "the applicant's peer connection up")
        await drop(applicant)
        await until(lambda: room.participant(pid) is not None
                    and room.participant(pid).reconnecting, 5, "reconnecting")
        # Longer than the 1 s empty-room timeout, within the grace.
        await asyncio.sleep(2.0)
        assert not room.closed
        again = await _client(server, call, call.applicant_token, "applicant again")
        assert again.participant_id == pid
        assert not room.participant(pid).reconnecting
    finally:
        await applicant.close()
        if again is not None:
            await again.close()
    # A page that leaves on purpose (a Socket.IO disconnect) leaves at once; the room then
    # closes as empty.
    await until(lambda: room.closed, 5, "the empty room to close")


async def test_a_second_connection_replaces_the_first_which_is_refused_afterwards(
        server: Any, call: Call) -> None:
    first = await SignalingClient.connect(server.url, "/room")
    second = await SignalingClient.connect(server.url, "/room")
    try:
        joined = await first.request("room:join", {"room_id": call.room_id,
                                                   "token": call.applicant_token})
        assert joined["recording"] == "on"
        await second.request("room:join", {"room_id": call.room_id,
                                           "token": call.applicant_token})
        ended = await first.next("room:ended")
        assert ended == {"reason": "replaced"}
        refused = await first.call("room:chat", {"text": "还在吗"})
        assert refused["ok"] is False and refused["error"]["code"] == "bad_state"
        # The same socket may join again (a new peer connection after its own one failed).
        again = await second.request("room:join", {"room_id": call.room_id,
                                                   "token": call.applicant_token})
        assert [p["participant_id"] for p in again["participants"]] == [joined["participant_id"]]
    finally:
        await first.close()
        await second.close()


async def test_a_newcomer_during_someones_grace_gets_the_others_and_then_them(
        server: Any, call: Call) -> None:
    """Joining while a participant is reconnecting: the newcomer's offer must not carry the
    lost connection's ended tracks; it gets the others' media now and the returner's later."""
    applicant = await _client(server, call, call.applicant_token, "applicant")
    desk = await _client(server, call, call.staff_token, "staff")
    token = await server.app[DIRECTORY].create_token(
        call.room_id, role="guide", participant_id="g-guide01", name="引导员",
        department="", ticket_id="")
    guide: RoomClient | None = None
    again: RoomClient | None = None
    try:
        pid = applicant.participant_id or ""
        await desk.wait_for_video(5, timeout=10)
        await drop(applicant)
        await until(lambda: (info(desk, pid) or {}).get("reconnecting") is True, 5,
                    "the desk to see the applicant reconnecting")
        guide = await _client(server, call, token, "guide")
        await guide.wait_for_video(5, timeout=10, participant_id=desk.participant_id)
        assert guide.peer.answer_errors == []
        again = await _client(server, call, call.applicant_token, "applicant again")
        await guide.wait_for_video(5, timeout=10, participant_id=pid)
        await again.wait_for_video(5, timeout=10, participant_id="g-guide01")
        assert guide.peer.answer_errors == []
    finally:
        for client in (applicant, desk, guide, again):
            if client is not None:
                await client.close()


async def test_only_the_applicant_or_the_answering_desk_ends_the_room(
        server: Any, call: Call) -> None:
    """A guide's (or invited colleague's) hangup leaves the room; the desk's ends it."""
    guide_token = await server.app[DIRECTORY].create_token(
        call.room_id, role="guide", participant_id="g-guide01", name="引导员",
        department="", ticket_id="")
    guide = await SignalingClient.connect(server.url, "/room")
    desk = await SignalingClient.connect(server.url, "/room")
    try:
        await desk.request("room:join", {"room_id": call.room_id, "token": call.staff_token})
        await guide.request("room:join", {"room_id": call.room_id, "token": guide_token})
        left = await guide.request("room:hangup", {})
        assert left["ended"] is False
        room = server.app[ROOMS].get(call.room_id)
        assert room is not None and not room.closed and room.participant("g-guide01") is None
        ended = await desk.request("room:hangup", {})
        assert ended["ended"] is True and room.closed
    finally:
        await guide.close()
        await desk.close()
