"""Screen share with real aiortc participants: the sharer's connection gets a third (screen)
transceiver, the others get its track with source "screen", apart from the camera; stopping and
sharing again reuse it (its receiver takes RTP in every direction, so no packet dropped at a
direction change stalls it); changes sent together are serialized; a late joiner gets a running
share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from rooms.client import PatternVideoTrack, RoomPeer
from rooms.errors import ShareLimit
from rooms.participant import MAX_SHARES
from rooms.room import Room

JoinFn = Callable[..., Awaitable[RoomPeer]]


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_share_reaches_the_others_as_a_screen_track_and_stops(
        room: Room, join: JoinFn) -> None:
    a = await join(room, "a", "applicant", width=320, height=240)
    b = await join(room, "b", "staff", width=320, height=240)
    await a.wait_for_video(5, timeout=10, participant_id="b")
    staff = room.participant("b")
    assert staff is not None

    b.screen = PatternVideoTrack(640, 360)
    await room.share("b", True)
    await a.wait_for_video(10, timeout=10, participant_id="b/screen")
    screens = [t for t in staff.offer_payload()["tracks"] if t.get("source") == "screen"]
    assert screens == []  # nobody shares to the sharer
    tracks = {t["source"]: t for t in room.participant("a").offer_payload()["tracks"]}  # type: ignore[union-attr]
    assert set(tracks) == {"microphone", "camera", "screen"}
    assert tracks["screen"]["participant_id"] == "b"
    assert "screen" in staff.offer_payload()["publish"]
    assert {p["participant_id"]: p["sharing"] for p in room.participants_info()} == {
        "a": False, "b": True}
    # The camera goes on as before.
    camera = a.remote("b")
    assert camera is not None
    frames = camera.video_frames
    await a.wait_for_video(frames + 5, timeout=5, participant_id="b")

    await room.share("b", False)
    assert "screen" not in staff.offer_payload()["publish"]
    await _until(lambda: all(t.get("source") != "screen" for t in
                             room.participant("a").offer_payload()["tracks"]))  # type: ignore[union-attr]
    await room.share("b", False)  # again: nothing happens
    # The reused receiver never drops packets, whatever the direction (rooms.passthrough 5.).
    assert staff.publish["screen"].receiver._enabled is True

    # Sharing again reuses the sharer's transceiver and frames come again.
    screen = a.remote("b/screen")
    assert screen is not None
    before = screen.video_frames
    await room.share("b", True)
    await a.wait_for_video(before + 10, timeout=10, participant_id="b/screen")
    assert sum(1 for t in staff.pc.getTransceivers() if t.receiver.track is not None
               and t.direction == "recvonly") == 3

    # A late joiner gets the running share.
    c = await join(room, "c", "staff", width=320, height=240)
    await c.wait_for_video(5, timeout=10, participant_id="b/screen")

    events = [(e["type"], e.get("on"), e.get("source"))
              for e in room.recorder.timeline()["events"] if e["type"] in ("share", "publish")]
    assert ("publish", None, "screen") in events
    assert [e for e in events if e[0] == "share"] == [
        ("share", True, None), ("share", False, None), ("share", True, None)]


async def test_screen_shares_are_limited(room: Room, join: JoinFn) -> None:
    await join(room, "a", "applicant", video=False, audio=False)
    participant = room.participant("a")
    assert participant is not None
    for _ in range(MAX_SHARES):
        await room.share("a", True)
        await room.share("a", False)
    with pytest.raises(ShareLimit):
        await room.share("a", True)
    assert participant.sharing is False


async def test_stop_and_share_sent_together_are_serialized(room: Room, join: JoinFn) -> None:
    a = await join(room, "a", "applicant", width=320, height=240)
    b = await join(room, "b", "staff", width=320, height=240)
    await a.wait_for_video(5, timeout=10, participant_id="b")
    b.screen = PatternVideoTrack(640, 360)
    await room.share("b", True)
    await a.wait_for_video(10, timeout=10, participant_id="b/screen")
    staff = room.participant("b")
    assert staff is not None
    for _ in range(3):
        # As Socket.IO handles two events of one client: concurrently.
        await asyncio.gather(room.share("b", False), room.share("b", True))
        assert staff.sharing
        screen = a.remote("b/screen")
        assert screen is not None
        await a.wait_for_video(screen.video_frames + 10, timeout=10, participant_id="b/screen")
    tracks = room.participant("a").offer_payload()["tracks"]  # type: ignore[union-attr]
    assert sum(1 for t in tracks if t["source"] == "screen") == 1
