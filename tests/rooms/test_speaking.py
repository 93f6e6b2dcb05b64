"""The speaking indicator: per-packet audio levels (RFC 6464 header extension, never decoded)
smoothed into a speaking state per publisher, told to the room as room:speaking; forwarded audio
keeps its level for every subscriber, an observer too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from rooms import passthrough
from rooms.client import RoomPeer, ToneAudioTrack
from rooms.forwarder import (
    SPEAKING_HOLD,
    SPEAKING_MIN_INTERVAL,
    SpeakingDetector,
)
from rooms.room import Room


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_speaking_starts_on_voice_not_on_a_click_and_ends_after_a_pause() -> None:
    clock = Clock()
    changes: list[bool] = []
    detector = SpeakingDetector(changes.append, clock)

    def packets(level: int, count: int) -> None:
        for _ in range(count):
            detector.feed(level)
            clock.now += 0.02

    packets(127, 20)  # silence
    packets(10, 1)    # a click
    packets(127, 30)
    assert changes == []
    packets(20, 5)    # voice
    assert changes == [True]
    packets(127, int(SPEAKING_HOLD / 0.02) // 2)  # a pause between words
    packets(25, 3)
    assert changes == [True]
    packets(127, int(SPEAKING_HOLD / 0.02) + 2)
    assert changes == [True, False]
    # Voice again at once: no change before SPEAKING_MIN_INTERVAL has passed since the last one.
    detector._last_change = clock.now
    packets(20, 3)
    assert changes == [True, False]
    clock.now += SPEAKING_MIN_INTERVAL
    packets(20, 3)
    assert changes == [True, False, True]


class Silence(ToneAudioTrack):
    """A microphone that sends silence (zero samples)."""

    def __init__(self) -> None:
        super().__init__()
        self._second = bytes(len(self._second))


class Signals:
    def __init__(self, peer: RoomPeer) -> None:
        self.peer = peer
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, event: str, payload: dict[str, Any]) -> None:
        self.events.append((event, payload))
        await self.peer.handle(event, payload)

    def speaking(self) -> list[dict[str, Any]]:
        return [p for e, p in self.events if e == "room:speaking"]


async def _join(room: Room, pid: str, role: str, peers: list[RoomPeer], *,
                audio: Any = None, publish: bool = True) -> Signals:
    async def send_answer(sdp: str) -> None:
        await room.answer(pid, sdp)

    peer = RoomPeer(send_answer, name=pid, video=False, audio=publish)
    if audio is not None:
        assert peer.audio is not None
        peer.audio.stop()
        peer.audio = audio
    peers.append(peer)
    signals = Signals(peer)
    await room.join(participant_id=pid, role=role, name=pid, department=None, signal=signals)
    return signals


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_tone_speaks_silence_does_not_and_forwarded_audio_keeps_its_level(
        room: Room) -> None:
    peers: list[RoomPeer] = []
    try:
        talker = await _join(room, "a", "applicant", peers)  # ToneAudioTrack: 440 Hz
        quiet = await _join(room, "s", "staff", peers, audio=Silence())
        observer = await _join(room, "v", "supervisor", peers, publish=False)

        # The observer's receivers: the levels on what the server forwards to it.
        levels: dict[str, list[int]] = {"a": [], "s": []}

        def keep(into: list[int]) -> Callable[[int, int], None]:
            return lambda _timestamp, level: into.append(level)

        def watched() -> bool:
            mids = observer.peer._mids
            done = 0
            for transceiver in observer.peer.pc.getTransceivers():
                info = mids.get(transceiver.mid or "")
                if info is None or info["kind"] != "audio":
                    continue
                if not getattr(transceiver.receiver, "_yz_watched", False):
                    passthrough.watch_audio_levels(transceiver.receiver,
                                                   keep(levels[info["participant_id"]]))
                    transceiver.receiver._yz_watched = True  # type: ignore[attr-defined]
                done += 1
            return done == 2

        await _until(watched, 10, "the observer to receive both microphones")
        await _until(lambda: any(p == {"participant_id": "a", "speaking": True}
                                 for p in observer.speaking()), 10, "a speaking")
        # Everybody is told, the speaker too; the participants info says it to a later joiner.
        for signals in (talker, quiet):
            await _until(lambda s=signals: {"participant_id": "a", "speaking": True}
                         in s.speaking(), 5, "room:speaking")
        info = {p["participant_id"]: p for p in room.participants_info()}
        assert info["a"]["speaking"] is True and info["s"]["speaking"] is False
        await _until(lambda: len(levels["a"]) > 20 and len(levels["s"]) > 20, 10,
                     "forwarded levels")
        # The tone's level (about -12 dBov) and silence (127) reach the observer as sent.
        assert max(levels["a"][-20:]) < 30, levels["a"][-20:]
        assert min(levels["s"][-20:]) == 127, levels["s"][-20:]
        assert not any(p["participant_id"] == "s" for p in observer.speaking())
        # At most a few changes per second: a steady tone is one.
        assert [p["speaking"] for p in observer.speaking()] == [True]

        # The speaker goes quiet: they stop speaking for everybody.
        assert talker.peer.audio is not None
        talker.peer.audio._second = bytes(len(talker.peer.audio._second))  # type: ignore[attr-defined]
        await _until(lambda: {"participant_id": "a", "speaking": False} in observer.speaking(),
                     SPEAKING_HOLD + 5, "a to stop speaking")
        assert room.participant("a").speaking is False  # type: ignore[union-attr]
    finally:
        for peer in peers:
            await peer.close()
