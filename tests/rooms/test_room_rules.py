"""Join rules, signaling order and room lifetime (real peer connections, no media checks)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from rooms.client import RoomPeer
from rooms.close_reason import CloseReason
from rooms.errors import AlreadyJoined, NoPendingOffer, NotJoined, RoomClosed, RoomFull
from rooms.manager import RoomManager
from rooms.room import MAX_PUBLISHERS, Room, RoomMeta
from server.config import MediaConfig

JoinFn = Callable[..., Awaitable[RoomPeer]]


class Recorder:
    """A signal function that keeps what it was sent."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, event: str, payload: dict[str, Any]) -> None:
        self.events.append((event, payload))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [p for e, p in self.events if e == event]


async def test_join_sends_participants_and_an_offer_with_publish_mids(room: Room) -> None:
    signal = Recorder()
    await room.join(participant_id="a", role="applicant", name="张三", department=None,
                    signal=signal)
    assert [e for e, _ in signal.events] == ["room:participants", "room:offer"]
    offer = signal.named("room:offer")[0]
    assert set(offer["publish"]) == {"audio", "video"}
    assert offer["tracks"] == []
    assert "a=candidate:" in offer["sdp"] and "127.0.0.1" in offer["sdp"]
    assert "VP8/90000" in offer["sdp"] and "opus/48000" in offer["sdp"]
    assert "H264" not in offer["sdp"] and "PCMU" not in offer["sdp"]
    assert room.participants_info() == [
        {"participant_id": "a", "role": "applicant", "name": "张三", "department": None,
         "observer": False, "muted": False, "camera_off": False, "sharing": False,
         "reconnecting": False, "speaking": False}]


async def test_join_rules_are_checked_before_anything_changes(room: Room) -> None:
    signal = Recorder()
    await room.join(participant_id="a", role="applicant", name="a", department=None,
                    signal=signal)
    with pytest.raises(AlreadyJoined) as already:
        await room.join(participant_id="a", role="applicant", name="a", department=None,
                        signal=signal)
    assert already.value.code == "bad_state"
    with pytest.raises(Exception) as bad_role:
        await room.join(participant_id="x", role="admin", name="x", department=None,
                        signal=signal)
    assert getattr(bad_role.value, "code", None) == "invalid_payload"
    for n in range(1, MAX_PUBLISHERS):
        await room.join(participant_id=f"s{n}", role="staff", name="s", department="tax",
                        signal=Recorder())
    with pytest.raises(RoomFull) as full:
        await room.join(participant_id="late", role="staff", name="s", department=None,
                        signal=Recorder())
    assert full.value.code == "room_full"
    assert len(room.participants_info()) == MAX_PUBLISHERS
    with pytest.raises(NotJoined):
        await room.answer("nobody", "v=0")
    await room.close(CloseReason.HANGUP)
    with pytest.raises(RoomClosed) as closed:
        await room.join(participant_id="z", role="staff", name="z", department=None,
                        signal=Recorder())
    assert closed.value.code == "bad_state"


async def test_answer_without_pending_offer_is_bad_state(room: Room, join: JoinFn) -> None:
    await join(room, "a")
    participant = room.participant("a")
    assert participant is not None
    for _ in range(100):
        if participant.pc.connectionState == "connected":
            break
        await asyncio.sleep(0.05)
    with pytest.raises(NoPendingOffer) as exc:
        await room.answer("a", participant.pc.remoteDescription.sdp)
    assert exc.value.code == "bad_state"


async def test_every_join_and_leave_tells_everybody_who_is_there(room: Room) -> None:
    a, b = Recorder(), Recorder()
    await room.join(participant_id="a", role="applicant", name="a", department=None, signal=a)
    await room.join(participant_id="b", role="staff", name="b", department="tax", signal=b)
    await room.leave("b")
    await room.leave("b")  # twice is harmless
    lists = [[p["participant_id"] for p in e["participants"]] for e in a.named("room:participants")]
    assert lists == [["a"], ["a", "b"], ["a"]]
    assert [[p["participant_id"] for p in e["participants"]]
            for e in b.named("room:participants")] == [["a", "b"]]


async def test_close_tells_everybody_is_idempotent_and_reports_the_recording(
        room: Room, manager: RoomManager,
        closed_rooms: list[tuple[Room, dict[str, Any] | None]]) -> None:
    a = Recorder()
    await room.join(participant_id="a", role="applicant", name="a", department=None, signal=a)
    await asyncio.gather(room.close(CloseReason.HANGUP), room.close(CloseReason.ERROR))
    await room.close(CloseReason.HANGUP)
    assert room.closed and room.close_reason == CloseReason.HANGUP
    assert a.named("room:ended") == [{"reason": "hangup"}]
    assert len(closed_rooms) == 1
    closed, summary = closed_rooms[0]
    assert closed is room and manager.get("r1") is None
    assert summary is not None and summary["complete"] is True
    assert Path(summary["dir"]).name == "r1"
    assert summary["participants"][0]["left_at"] is not None
    assert [e["type"] for e in summary["events"]][-1] == "close"
    assert room.participant("a") is None


async def test_empty_room_closes_itself(tmp_path: Path) -> None:
    closed: list[Room] = []

    async def on_closed(room: Room, summary: dict[str, Any] | None) -> None:
        closed.append(room)

    manager = RoomManager(MediaConfig(empty_room_timeout=0.3), tmp_path, on_closed)
    room = manager.open("r2", RoomMeta(ticket_id="t2"))
    await room.join(participant_id="a", role="staff", name="a", department=None,
                    signal=Recorder())
    await asyncio.sleep(0.5)
    assert not room.closed, "a room with somebody in it stays open"
    await room.leave("a")
    await asyncio.sleep(0.6)
    assert room.closed and room.close_reason == CloseReason.EMPTY
    assert closed == [room]
    await manager.close()


async def test_manager_shutdown_closes_every_room(tmp_path: Path) -> None:
    reasons: list[str] = []

    async def on_closed(room: Room, summary: dict[str, Any] | None) -> None:
        reasons.append(str(room.close_reason))

    manager = RoomManager(MediaConfig(), tmp_path, on_closed)
    manager.open("x", RoomMeta())
    manager.open("y", RoomMeta())
    await manager.close()
    await manager.close()
    assert reasons == ["server_shutdown", "server_shutdown"]
    assert manager.get("x") is None
