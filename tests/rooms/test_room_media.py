"""Rooms with real aiortc participants: forwarding, renegotiation, keyframe relay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from rooms.client import RoomPeer
from rooms.errors import ObserverOnly
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


async def test_late_joiner_decodes_video_within_a_second_through_keyframe_relay(
        room: Room, join: JoinFn) -> None:
    a = await join(room, "a", "applicant")
    b = await join(room, "b", "staff")
    await b.wait_for_video(10, timeout=10, participant_id="a")
    # The publishers' encoders are well past their first keyframe now; without the PLI relay a
    # late joiner would wait for aiortc's next periodic keyframe (there is none) and see nothing.
    await asyncio.sleep(1.5)
    c = await join(room, "c", "staff")
    started = time.monotonic()
    await c.wait_for_video(1, timeout=5, participant_id="a")
    await c.wait_for_video(1, timeout=5, participant_id="b")
    assert time.monotonic() - started < 1.5
    stats = c.remote("a")
    assert stats is not None and stats.first_frame_delay is not None
    assert stats.first_frame_delay < 1.0
    # the others now see the newcomer too, through renegotiation of their connections
    await a.wait_for_video(5, timeout=5, participant_id="c")
    await b.wait_for_video(5, timeout=5, participant_id="c")
    participant = room.participant("a")
    assert participant is not None
    assert participant.published["video"].keyframe_requests >= 1


async def test_leaving_participant_stops_being_forwarded_and_others_continue(
        room: Room, join: JoinFn) -> None:
    a = await join(room, "a")
    await join(room, "b", "staff")
    c = await join(room, "c", "staff")
    await a.wait_for_video(5, timeout=10)
    await c.wait_for_video(5, timeout=10)
    await room.leave("c")
    assert [p["participant_id"] for p in room.participants_info()] == ["a", "b"]
    await asyncio.sleep(0.3)
    gone = a.remote("c")
    assert gone is not None
    frozen = gone.video_frames
    before = a.remote("b")
    assert before is not None
    still = before.video_frames
    await asyncio.sleep(0.5)
    assert gone.video_frames == frozen
    assert before.video_frames > still
    assert [p["participant_id"] for p in a.participants] == ["a", "b"]


async def test_bad_answer_is_invalid_payload_and_the_room_still_works(
        room: Room, join: JoinFn) -> None:
    answers: asyncio.Queue[str] = asyncio.Queue()

    async def hold_answer(sdp: str) -> None:
        await answers.put(sdp)

    a = RoomPeer(hold_answer, name="a")
    try:
        await room.join(participant_id="a", role="applicant", name="a", department=None,
                        signal=a.handle)
        good = await asyncio.wait_for(answers.get(), 10)
        bad_answers = ["not an sdp at all", "v=0\r\n",
                       good.replace("a=ice-pwd:", "a=ice-pwd-broken:")]
        for sdp in bad_answers:
            try:
                await room.answer("a", sdp)
            except Exception as exc:
                assert getattr(exc, "code", None) == "invalid_payload", exc
            else:
                raise AssertionError("a bad answer must be refused")
        await room.answer("a", good)  # the offer is still pending, and the good answer works
        # from now on answers go straight to the room
        a._send_answer = lambda sdp: room.answer("a", sdp)
        b = await join(room, "b", "staff")
        await a.wait_for_video(10, timeout=10, participant_id="b")
        await b.wait_for_video(10, timeout=10, participant_id="a")
    finally:
        await a.close()


async def _frames_grow(peer: RoomPeer, participant_id: str, frames: int, timeout: float) -> None:
    """Wait until ``peer`` has decoded ``frames`` more video frames of ``participant_id``."""
    stats = peer.remote(participant_id)
    start = stats.video_frames if stats is not None else 0
    await peer.wait_for_video(start + frames, timeout=timeout, participant_id=participant_id)


async def _audio_grows(peer: RoomPeer, participant_id: str, timeout: float) -> None:
    stats = peer.remote(participant_id)
    assert stats is not None
    start = stats.audio_packets + stats.audio_frames
    deadline = time.monotonic() + timeout
    while stats.audio_packets + stats.audio_frames < start + 10:
        assert time.monotonic() < deadline, f"no audio of {participant_id}: {peer.stats()}"
        await asyncio.sleep(0.05)


async def test_rejoin_with_same_id_gets_video_again(room: Room, join: JoinFn) -> None:
    """A reloaded page comes back with the same participant id and a new peer connection, the way
    signaling/room_channel.py replaces it: leave, then join again."""
    a = await join(room, "a", "applicant")
    b = await join(room, "b", "staff")
    await a.wait_for_video(10, timeout=10, participant_id="b")
    await b.wait_for_video(10, timeout=10, participant_id="a")
    await asyncio.sleep(1.0)  # well past the first keyframes
    await room.leave("a")
    await a.close()
    a2 = await join(room, "a", "applicant")
    started = time.monotonic()
    await a2.wait_for_video(5, timeout=5, participant_id="b")
    assert time.monotonic() - started < 2.0, a2.stats()
    await _frames_grow(b, "a", 5, timeout=5)
    await _audio_grows(a2, "b", timeout=5)
    await _audio_grows(b, "a", timeout=5)
    stats = a2.remote("b")
    assert stats is not None and stats.video_decode_errors == 0


async def test_silent_supervisor_receives_everybody_and_sends_nothing(
        room: Room, join: JoinFn) -> None:
    a = await join(room, "a", "applicant")
    await join(room, "b", "staff")
    # The observer's own client would publish if asked: the server never asks.
    sup = await join(room, "sup", "supervisor")
    await sup.wait_for_video(10, timeout=10, participant_id="a")
    await sup.wait_for_video(10, timeout=10, participant_id="b")
    await a.wait_for_video(10, timeout=10, participant_id="b")
    observer = room.participant("sup")
    assert observer is not None and observer.observer and observer.published == {}
    assert {s.publisher_id for s in observer.subscriptions} == {"a", "b"}
    for pid in ("a", "b"):
        participant = room.participant(pid)
        assert participant is not None
        assert all(s.publisher_id != "sup" for s in participant.subscriptions)
    info = {p["participant_id"]: p for p in room.participants_info()}
    assert info["sup"]["observer"] is True and info["a"]["observer"] is False
    for refused in (room.chat("sup", "hello"), room.share("sup", True),
                    room.set_media("sup", audio=True, video=True)):
        try:
            await refused
        except ObserverOnly as exc:
            assert exc.code == "forbidden"
        else:
            raise AssertionError("an observer must not chat, share or unmute")
    assert room.chat_history() == []
