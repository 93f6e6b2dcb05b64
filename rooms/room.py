"""A consultation room: its participants, the forwarding of every published track to every other
participant, and its recording. Join rules are checked before any state changes."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiortc.mediastreams import MediaStreamTrack

from recordings.lease import ALWAYS, Lease
from recordings.parts import Continuation
from recordings.recorder import Recorder
from rooms import roles
from rooms.close_reason import CloseReason
from rooms.config import MediaConfig
from rooms.errors import (
    AlreadyJoined,
    InvalidJoin,
    NotJoined,
    ObserverOnly,
    RoomClosed,
    RoomFull,
)
from rooms.forwarder import TrackForwarder
from rooms.participant import PURPOSES, Participant, SignalFn
from rooms.roles import OBSERVER_ROLES, ROOM_ROLES, Role

__all__ = ["CHAT_HISTORY", "MAX_OBSERVERS", "MAX_PUBLISHERS", "CloseReason",
           "RecordingFailedCallback", "Room", "RoomClosedCallback", "SignalFn"]

logger = logging.getLogger(__name__)

# Every participant publishes audio and video; beyond this a 2-core server cannot forward it all.
MAX_PUBLISHERS = 8
# Receive-only participants (a silent supervisor) on top of the publishers.
MAX_OBSERVERS = 4
# Chat lines a (re)joining participant is given; the timeline keeps them all.
CHAT_HISTORY = 100
# How long a screen share change waits for the sharer's answer to the offer in flight, in seconds.
SHARE_NEGOTIATION_WAIT = 10.0
RoomClosedCallback = Callable[["Room", dict[str, Any] | None], Awaitable[None]]
RecordingFailedCallback = Callable[["Room"], Awaitable[None]]


@dataclass(frozen=True)
class RoomMeta:
    """What a room is for: the ticket it serves and the desk that took the call."""

    ticket_id: str = ""
    ticket_number: str = ""
    department: str = ""
    staff: str = ""  # the username of the desk that took the call
    # The recording notice the applicant consented to, and when (epoch seconds); recorded in
    # the timeline as the recording starts. Empty for a room without an applicant's consent.
    consent_version: str = ""
    consent_at: float | None = None


class Room:
    def __init__(self, room_id: str, meta: RoomMeta, *, media: MediaConfig,
                 recordings_dir: Path, on_closed: RoomClosedCallback,
                 on_recording_failed: RecordingFailedCallback | None = None,
                 lease: Lease = ALWAYS) -> None:
        self.room_id = room_id
        self.meta = meta
        self.media = media
        self.closed = False
        self.close_reason: CloseReason | None = None
        self._lease = lease
        self.recorder = Recorder(recordings_dir / room_id, room_id=room_id, meta=asdict(meta),
                                 on_failure=self._recording_stopped, lease=lease)
        self._on_closed = on_closed
        self._on_recording_failed = on_recording_failed
        self._participants: dict[str, Participant] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._empty_timer: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._chat: collections.deque[dict[str, Any]] = collections.deque(maxlen=CHAT_HISTORY)
        # An adopted room's participants of the dead part who have not joined again yet.
        self._expected: set[str] = set()

    def __repr__(self) -> str:
        return f"Room({self.room_id})"

    def start(self) -> None:
        """Begin the recording and the empty-room timer (nobody has joined yet)."""
        self.recorder.start()
        self.recorder.add_event("open")
        if self.meta.consent_version:
            self.recorder.add_event("consent", version=self.meta.consent_version,
                                    at=self.meta.consent_at)
        self._start_empty_timer()
        logger.info("room %s: open (ticket %s, department %s)", self.room_id,
                    self.meta.ticket_id, self.meta.department)

    def resume(self, previous: Continuation) -> None:
        """Begin as the continuation of this room from a process that died: the recording goes
        on in a new part after ``previous`` (its gap in the timeline); the participants come
        back by themselves (their pages reconnect), until then the room waits as if empty."""
        self.recorder.continue_from(previous)
        self.recorder.start()
        self._start_empty_timer()
        # Who was in the call has the reconnect grace to come back, as after a dropped
        # connection; the desk that took the call not coming back ends it (see _expire).
        for entry in previous.participants:
            if entry.left_at is None:
                self._expected.add(entry.participant_id)
                self._spawn(self._expect_back(entry.participant_id),
                            f"grace:{entry.participant_id}")
        logger.info("room %s: adopted from node %s (ticket %s, department %s)", self.room_id,
                    previous.gap["from_node"], self.meta.ticket_id, self.meta.department)

    async def _expect_back(self, participant_id: str) -> None:
        await asyncio.sleep(self.media.reconnect_grace)
        if self.closed or participant_id not in self._expected:
            return  # back (and maybe gone again since, the usual way)
        self._expected.discard(participant_id)
        logger.info("room %s participant %s: not back after the node loss", self.room_id,
                    participant_id)
        self.recorder.participant_left(participant_id)
        self.recorder.add_event("leave", participant_id=participant_id,
                                reason=str(CloseReason.RECONNECT_TIMEOUT))
        if participant_id == roles.participant_id(Role.STAFF, self.meta.staff):
            await self.close(CloseReason.RECONNECT_TIMEOUT)

    # participants ---------------------------------------------------------------------------

    def participants_info(self) -> list[dict[str, Any]]:
        return [p.info() for p in self._participants.values()]

    def recording_state(self) -> str:
        """What everybody in the room is shown: ``on`` while the room records, ``interrupted``
        once the recording stopped (a full disk) while the call goes on."""
        return "interrupted" if self.recorder.failed is not None else "on"

    def _recording_stopped(self, reason: str) -> None:
        # Called by the recorder where the write failed (a forwarder's read loop, or start):
        # telling everybody and raising the alert are done in a task of their own.
        self._spawn(self._report_recording_stopped(), "recording-stopped")

    async def _report_recording_stopped(self) -> None:
        logger.warning("room %s: recording %s", self.room_id, self.recording_state())
        await self._broadcast_participants()
        if self._on_recording_failed is not None:
            await self._on_recording_failed(self)

    def participant(self, participant_id: str) -> Participant | None:
        return self._participants.get(participant_id)

    async def join(self, *, participant_id: str, role: str, name: str,
                   department: str | None, signal: SignalFn, rejoin: bool = False) -> None:
        """Add a participant. With ``rejoin``, one already here (a reloaded page, a connection
        that dropped) is replaced: same place, identity and role, a new peer connection whose
        tracks are new publishes (new track files, the recording goes on)."""
        if self.closed:
            raise RoomClosed(f"room {self.room_id} is closed")
        old = self._participants.get(participant_id)
        if old is not None and not rejoin:
            raise AlreadyJoined(f"{participant_id} is in room {self.room_id} already")
        if role not in ROOM_ROLES:
            raise InvalidJoin(f"role {role!r} is not one of {', '.join(ROOM_ROLES)}")
        if old is not None and old.role != role:
            raise InvalidJoin(f"{participant_id} is in room {self.room_id} as {old.role}")
        observer = role in OBSERVER_ROLES
        same_kind = sum(p.observer == observer for p in self._participants.values()
                        if p is not old)
        if same_kind >= (MAX_OBSERVERS if observer else MAX_PUBLISHERS):
            raise RoomFull(f"room {self.room_id} has {same_kind} "
                           f"{'observers' if observer else 'participants'}")

        if old is not None:
            await self._detach(old, CloseReason.REPLACED)
            if self.closed:
                raise RoomClosed(f"room {self.room_id} is closed")
        participant = Participant(room_id=self.room_id, participant_id=participant_id, role=role,
                                  name=name, department=department, signal=signal,
                                  video_codec=self.media.video_codec)
        participant.pc.on("track", lambda track: self._on_track(participant, track))
        participant.pc.on("connectionstatechange",
                          lambda: self._on_connection_state(participant))
        for other in self._participants.values():
            if other.reconnecting:
                continue  # its tracks ended with its connection; the next ones come in _on_track
            for purpose, forwarder in other.published.items():
                if purpose != "screen" or other.sharing:
                    participant.subscribe(forwarder, other, purpose)
        self._participants[participant_id] = participant
        self._expected.discard(participant_id)
        self._cancel_empty_timer()
        if old is None:
            self.recorder.participant_joined(participant_id, role=role, name=name,
                                             department=department)
            self.recorder.add_event("join", participant_id=participant_id, role=role)
            logger.info("room %s participant %s: joined as %s (%d in room)", self.room_id,
                        participant_id, role, len(self._participants))
        else:
            # One participant entry across reconnections; its new tracks are new publishes.
            away = time.time() - old.lost_at if old.lost_at is not None else None
            self.recorder.add_event("reconnected", participant_id=participant_id,
                                    away=round(away, 3) if away is not None else None)
            logger.info("room %s participant %s: rejoined as %s%s", self.room_id,
                        participant_id, role,
                        f" after {away:.1f} s away" if away is not None else "")
        await self._broadcast_participants()
        await participant.negotiate()

    async def answer(self, participant_id: str, sdp: str) -> None:
        participant = self._participants.get(participant_id)
        if participant is None:
            if self.closed:
                raise RoomClosed(f"room {self.room_id} is closed")
            raise NotJoined(f"{participant_id} is not in room {self.room_id}")
        await participant.answer(sdp)

    async def leave(self, participant_id: str,
                    reason: CloseReason = CloseReason.LEFT) -> None:
        participant = self._participants.get(participant_id)
        if participant is None:
            return
        logger.info("room %s participant %s: leaving (%s)", self.room_id, participant_id,
                    reason)
        await self._detach(participant, reason)
        self.recorder.participant_left(participant_id)
        self.recorder.add_event("leave", participant_id=participant_id, reason=str(reason))
        await self._broadcast_participants()
        if not self._participants and not self.closed:
            self._start_empty_timer()

    async def _detach(self, participant: Participant, reason: CloseReason) -> None:
        """Take ``participant`` out: nobody receives its tracks any more (their m-lines go
        inactive), its peer connection and forwarders close."""
        if self._participants.get(participant.participant_id) is participant:
            del self._participants[participant.participant_id]
        for other in self._participants.values():
            for forwarder in other.published.values():
                forwarder.unsubscribe(participant.participant_id)
            if other.unsubscribe(participant.participant_id):
                self._spawn(other.negotiate(), f"renegotiate:{other.participant_id}")
        await participant.close(reason)

    async def connection_lost(self, participant_id: str,
                              participant: Participant | None = None) -> None:
        """The participant's socket or peer connection dropped: keep their place for the
        reconnect grace (everybody sees them reconnecting), then take them out. The room does
        not count as empty meanwhile. ``participant``: only if it is still that connection."""
        current = self._participants.get(participant_id)
        if (current is None or self.closed or current.reconnecting
                or (participant is not None and current is not participant)):
            return
        current.reconnecting = True
        current.lost_at = time.time()
        self.recorder.add_event("reconnecting", participant_id=participant_id)
        logger.info("room %s participant %s: connection lost, %.0f s to come back",
                    self.room_id, participant_id, self.media.reconnect_grace)
        self._spawn(self._expire(current), f"grace:{participant_id}")
        await self._broadcast_participants()

    async def _expire(self, participant: Participant) -> None:
        await asyncio.sleep(self.media.reconnect_grace)
        if (self._participants.get(participant.participant_id) is participant
                and participant.reconnecting and not self.closed):
            await self.leave(participant.participant_id, CloseReason.RECONNECT_TIMEOUT)
            if participant.participant_id == roles.participant_id(Role.STAFF, self.meta.staff):
                # The desk that took the call is gone for good (its browser crashed, its
                # network is down): nobody is left to serve the applicant, so the consultation
                # ends, as when that desk hangs up, and the recording is finished and sealed.
                await self.close(CloseReason.RECONNECT_TIMEOUT)

    def add_event(self, type: str, **data: Any) -> None:
        self.recorder.add_event(type, **data)

    async def set_media(self, participant_id: str, *, audio: bool, video: bool) -> None:
        """The participant turned their microphone or camera on or off: tell everybody."""
        participant = self._joined(participant_id, publishing=True)
        if (participant.audio_on, participant.video_on) == (audio, video):
            return
        participant.audio_on = audio
        participant.video_on = video
        self.recorder.add_event("media", participant_id=participant_id, audio=audio, video=video)
        logger.info("room %s participant %s: audio %s, video %s", self.room_id, participant_id,
                    "on" if audio else "off", "on" if video else "off")
        await self._broadcast_participants()

    async def share(self, participant_id: str, on: bool) -> None:
        """Start or stop the participant's screen share: their peer connection gets (or stops)
        a third recvonly transceiver, and everybody else its track, with source "screen".

        Changes are serialized per participant, each behind the sharer's negotiation in flight:
        the screen's receiver (and its forwarder) is reused from one share to the next, so on a
        share again the others are subscribed only once the sharer has answered the offer that
        turns the screen back on, that is when its browser sends the new screen. Subscribed
        earlier, their forwarded tracks would start (and ask for their keyframe) while the
        sharer still sends nothing, or still answers the offer that stopped the share.
        """
        participant = self._joined(participant_id, publishing=True)
        async with participant.share_lock:
            if participant.closed or participant.sharing == on:
                return
            if not await participant.wait_negotiated(SHARE_NEGOTIATION_WAIT):
                logger.warning("room %s participant %s: screen share %s while an answer is late",
                               self.room_id, participant_id, "on" if on else "off")
            if participant.closed or self.closed:
                return
            # Present when an earlier share's track came: its receiver and forwarder are reused.
            forwarder = participant.published.get("screen")
            if on:
                participant.start_share()
            else:
                participant.stop_share()
                if forwarder is not None:
                    for other in self._participants.values():
                        forwarder.unsubscribe(other.participant_id)
                        if other.unsubscribe(participant_id, source="screen"):
                            self._spawn(other.negotiate(),
                                        f"renegotiate:{other.participant_id}")
            self.recorder.add_event("share", participant_id=participant_id, on=on)
            logger.info("room %s participant %s: screen share %s", self.room_id, participant_id,
                        "on" if on else "off")
            await participant.negotiate()
            await self._broadcast_participants()
            if on and forwarder is not None:
                # A first share subscribes the others in _on_track, when the screen's track comes.
                if not await participant.wait_negotiated(SHARE_NEGOTIATION_WAIT):
                    logger.warning("room %s participant %s: no answer to the screen share offer",
                                   self.room_id, participant_id)
                if participant.sharing and not participant.closed and not self.closed:
                    self._subscribe_others(participant, "screen", forwarder)

    def _joined(self, participant_id: str, *, publishing: bool = False) -> Participant:
        participant = self._participants.get(participant_id)
        if participant is None:
            if self.closed:
                raise RoomClosed(f"room {self.room_id} is closed")
            raise NotJoined(f"{participant_id} is not in room {self.room_id}")
        if publishing and participant.observer:
            raise ObserverOnly(f"{participant_id} observes room {self.room_id} silently")
        return participant

    def chat_history(self) -> list[dict[str, Any]]:
        """The last CHAT_HISTORY chat lines, oldest first."""
        return list(self._chat)

    async def chat(self, participant_id: str, text: str) -> dict[str, Any]:
        """A chat line from a participant: kept in the timeline, sent to everybody (the sender
        too, so that every page shows the lines in the server's order). Returns the message."""
        participant = self._joined(participant_id, publishing=True)
        message = {"participant_id": participant_id, "name": participant.name,
                   "role": participant.role, "text": text, "t": time.time()}
        self.recorder.add_event("chat", participant_id=participant_id, role=participant.role,
                                name=participant.name, text=text)
        self._chat.append(message)
        await asyncio.gather(*(p.signal("room:chat", message)
                               for p in list(self._participants.values())))
        return message

    # media ----------------------------------------------------------------------------------

    def _on_track(self, publisher: Participant, track: MediaStreamTrack) -> None:
        transceiver = next((t for t in publisher.pc.getTransceivers()
                            if t.receiver.track is track), None)
        purpose = publisher.purpose_of(transceiver) if transceiver is not None else None
        if (transceiver is None or purpose is None or publisher.closed or self.closed
                or purpose in publisher.published or PURPOSES[purpose][0] != track.kind):
            logger.warning("room %s participant %s: ignoring unexpected %s track", self.room_id,
                           publisher.participant_id, track.kind)
            return
        codec = self.media.video_codec if track.kind == "video" else "opus"
        recorder = self.recorder.track(publisher.participant_id, track.kind, codec)
        forwarder = TrackForwarder(
            track=track, receiver=transceiver.receiver, kind=track.kind, room_id=self.room_id,
            publisher_id=publisher.participant_id, queue_size=self.media.subscriber_queue,
            sink=recorder.write,
            on_speaking=(lambda speaking: self._on_speaking(publisher, speaking))
            if purpose == "audio" else None,
            forwarding=self.media.forwarding)
        publisher.published[purpose] = forwarder
        forwarder.start()
        source = PURPOSES[purpose][1]
        logger.info("room %s participant %s: publishing %s (%s)", self.room_id,
                    publisher.participant_id, track.kind, source)
        self.recorder.add_event("publish", participant_id=publisher.participant_id,
                                kind=track.kind, source=source, track_id=recorder.track_id)
        if purpose == "screen" and not publisher.sharing:
            return  # stopped again before its track came: the next share subscribes the others
        self._subscribe_others(publisher, purpose, forwarder)

    def _on_speaking(self, publisher: Participant, speaking: bool) -> None:
        """The publisher's microphone went loud or quiet: tell everybody (room:speaking)."""
        if (publisher.closed or self.closed
                or self._participants.get(publisher.participant_id) is not publisher):
            return
        publisher.speaking = speaking
        payload = {"participant_id": publisher.participant_id, "speaking": speaking}
        self._spawn(self._send_all("room:speaking", payload),
                    f"speaking:{publisher.participant_id}")

    async def _send_all(self, event: str, payload: dict[str, Any]) -> None:
        await asyncio.gather(*(p.signal(event, payload)
                               for p in list(self._participants.values())))

    def _subscribe_others(self, publisher: Participant, purpose: str,
                          forwarder: TrackForwarder) -> None:
        source = PURPOSES[purpose][1]
        for other in self._participants.values():
            # A participant who is reconnecting gets every track with its next connection.
            if (other is not publisher and not other.closed and not other.reconnecting
                    and not other.subscribed(publisher.participant_id, source)):
                other.subscribe(forwarder, publisher, purpose)
                self._spawn(other.negotiate(), f"renegotiate:{other.participant_id}")

    def _on_connection_state(self, participant: Participant) -> None:
        state = participant.pc.connectionState
        logger.info("room %s participant %s: connection %s", self.room_id,
                    participant.participant_id, state)
        if state == "connected":
            participant.receive_inline()
        # aiortc has no "disconnected" state: ICE consent failing ends in "failed"; the remote
        # closing its DTLS ends in "closed". Either way the participant may come back.
        if (state in ("failed", "closed") and not participant.closed
                and self._participants.get(participant.participant_id) is participant):
            self._spawn(self.connection_lost(participant.participant_id, participant),
                        f"lost:{participant.participant_id}")

    # lifetime -------------------------------------------------------------------------------

    async def close(self, reason: CloseReason) -> None:
        """Tell everybody, close every participant, finish the recording, then report it.
        Not before the lease is held (recordings/lease.py): this process may have been taken
        for dead meanwhile, and the room let go (except at shutdown, which waits for nothing)."""
        if self._closing is None and reason is not CloseReason.SERVER_SHUTDOWN:
            await self._lease.wait()
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closing = asyncio.get_running_loop().create_future()
        self.closed = True
        self.close_reason = reason
        logger.info("room %s: closing (%s) with %d participant(s)", self.room_id, reason,
                    len(self._participants))
        summary: dict[str, Any] | None = None
        try:
            await asyncio.gather(*(p.signal("room:ended", {"reason": str(reason)})
                                   for p in self._participants.values()))
            for participant in await self._take_down(reason):
                self.recorder.participant_left(participant.participant_id)
            self.recorder.add_event("close", reason=str(reason))
            try:
                summary = self.recorder.close()
            except Exception:
                logger.exception("room %s: finishing the recording failed", self.room_id)
            try:
                await self._on_closed(self, summary)
            except Exception:
                logger.exception("room %s: on_room_closed failed", self.room_id)
            logger.info("room %s: closed (%s)", self.room_id, reason)
        finally:
            self._closing.set_result(None)

    async def let_go(self) -> None:
        """Another process hosts this room now (this one was taken for dead): close every
        participant's connection here without telling anybody anything, and leave the recording
        folder as it is; nothing is reported (the other process finishes the call)."""
        if self._closing is not None:
            return
        self._closing = asyncio.get_running_loop().create_future()
        self.closed = True
        self.close_reason = CloseReason.MOVED
        logger.warning("room %s: hosted by another process now; let go with %d participant(s)",
                       self.room_id, len(self._participants))
        try:
            await self._take_down(CloseReason.MOVED)
            self.recorder.let_go()
        finally:
            self._closing.set_result(None)

    async def _take_down(self, reason: CloseReason) -> list[Participant]:
        """Close every participant and the room's tasks; returns who was in it."""
        participants = list(self._participants.values())
        self._participants.clear()
        self._cancel_empty_timer()
        for participant in participants:
            await participant.close(reason)
        await self._cancel_tasks()
        return participants

    def _start_empty_timer(self) -> None:
        self._cancel_empty_timer()
        self._empty_timer = self._spawn(self._close_when_empty(), "empty-timer")

    def _cancel_empty_timer(self) -> None:
        if self._empty_timer is not None and self._empty_timer is not asyncio.current_task():
            self._empty_timer.cancel()
        self._empty_timer = None

    async def _close_when_empty(self) -> None:
        await asyncio.sleep(self.media.empty_room_timeout)
        if not self._participants and not self.closed:
            self._empty_timer = None
            await self.close(CloseReason.EMPTY)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"room {self.room_id} {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("room %s: task %s failed", self.room_id, task.get_name(),
                         exc_info=task.exception())

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _broadcast_participants(self) -> None:
        payload = {"participants": self.participants_info(), "recording": self.recording_state()}
        await asyncio.gather(*(p.signal("room:participants", payload)
                               for p in list(self._participants.values())))
