"""Rooms with real aiortc participants: forwarding, renegotiation, keyframe relay."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rooms.client import RoomPeer
from rooms.room import Room

JoinFn = Callable[..., Awaitable[RoomPeer]]


async def test_two_participants_decode_each_others_video_and_hear_audio(
        room: Room, join: JoinFn) -> None:
    a = await join(room, "a", "applicant")
    b = await join(room, "b", "staff")
    await a.wait_for_video(30, timeout=10, participant_id="b")
    await b.wait_for_video(30, timeout=10, participant_id="a")
    first_a = a.remote("b")
    assert first_a is not None
    seen = first_a.video_frames
    await asyncio.sleep(0.5)
    assert first_a.video_frames > seen, "frame count must keep growing"
    for peer, other in ((a, "b"), (b, "a")):
        stats = peer.remote(other)
        assert stats is not None
        assert stats.audio_packets + stats.audio_frames > 10
        assert stats.video_decode_errors == 0
