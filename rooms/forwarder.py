"""Forwarding of one published track. With media.forwarding = "frame", a reader task takes encoded
packets from the publisher's RemoteStreamTrack and fans them out to bounded per-subscriber queues
and to the recorder. With "rtp", each subscriber's leg (rooms/rtp_forward.py) gets every RTP
packet from the receiver's hook, and the reassembled frames go straight to the recorder.

Keyframes: a video subscriber starts (and restarts after its queue overflowed) at a keyframe,
asked from the publisher with an RTCP PLI on its receiver, at most one per KEYFRAME_INTERVAL,
addressed to the publisher's media SSRC (never its RTX SSRC, which the publisher ignores).

Speaking: an audio forwarder reads each RTP packet's audio level header extension (RFC 6464,
never decoding) and keeps a smoothed speaking state for the publisher; the level goes on with
the forwarded packet, so every subscriber (an observer too) gets it in the same extension.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from rooms import passthrough
from rooms._native import LegWriter
from rooms.rtp_forward import RtpLeg

logger = logging.getLogger(__name__)

# Smallest gap between two PLIs sent to one publisher track, in seconds.
KEYFRAME_INTERVAL = 0.5

PacketSink = Callable[[av.Packet], None]

# Speaking: a packet at least this loud (-dBov, RFC 6464: 0 loudest, 127 silence) is voice...
SPEAKING_LEVEL = 50
# ... SPEAKING_PACKETS of them within SPEAKING_WINDOW seconds start speaking (a click does not),
SPEAKING_PACKETS = 3
SPEAKING_WINDOW = 0.4
# ... and it stops after SPEAKING_HOLD seconds without one (pauses between words do not).
SPEAKING_HOLD = 0.8
# At most one change of the state per publisher in this many seconds.
SPEAKING_MIN_INTERVAL = 0.3
# RTP timestamps whose level is kept for the forwarded packets (about 2.5 s of 20 ms packets).
LEVELS_KEPT = 128


class SpeakingDetector:
    """A smoothed speaking state from per-packet audio levels; ``on_change(speaking)`` is called
    on each change, at most once per SPEAKING_MIN_INTERVAL."""

    def __init__(self, on_change: Callable[[bool], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.speaking = False
        self._on_change = on_change
        self._clock = clock
        self._loud: collections.deque[float] = collections.deque(maxlen=SPEAKING_PACKETS)
        self._last_change = -SPEAKING_MIN_INTERVAL

    def feed(self, level: int) -> None:
        now = self._clock()
        if level <= SPEAKING_LEVEL:
            self._loud.append(now)
        if self.speaking:
            wanted = bool(self._loud) and now - self._loud[-1] < SPEAKING_HOLD
        else:
            wanted = (len(self._loud) == SPEAKING_PACKETS
                      and now - self._loud[0] <= SPEAKING_WINDOW)
        if wanted != self.speaking and now - self._last_change >= SPEAKING_MIN_INTERVAL:
            self.set(wanted)

    def set(self, speaking: bool) -> None:
        if speaking == self.speaking:
            return
        self.speaking = speaking
        self._last_change = self._clock()
        self._on_change(speaking)


class ForwardedTrack(MediaStreamTrack):
    """What a subscriber's RTCRtpSender reads: packets of one publisher track, through a queue.

    Audio drops the oldest packet on overflow. Video cannot skip frames (the decoder would break
    until the next keyframe anyway), so on overflow it clears the queue and waits for a keyframe.
    """

    def __init__(self, kind: str, maxsize: int, request_keyframe: Callable[[], None],
                 label: str, level_of: Callable[[av.Packet], int | None] | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.label = label
        self.drops = 0
        self.packets = 0
        # The audio level of the packet handed out last, for the sender's extension.
        self.last_level: int | None = None
        self._level_of = level_of
        self._maxsize = maxsize
        self._queue: collections.deque[av.Packet] = collections.deque()
        self._ready = asyncio.Event()
        self._request_keyframe = request_keyframe
        # Nothing is queued until the sender reads for the first time: packets queued while the
        # subscriber negotiates would only be stale.
        self._active = False
        self._need_keyframe = kind == "video"

    def push(self, packet: av.Packet) -> None:
        if not self._active or self.readyState != "live":
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                return
            self._need_keyframe = False
        if len(self._queue) >= self._maxsize:
            if self.kind == "video":
                self.drops += len(self._queue)
                self._queue.clear()
                self._need_keyframe = True
                self._request_keyframe()
                if not packet.is_keyframe:
                    return
                self._need_keyframe = False
            else:
                self._queue.popleft()
                self.drops += 1
        self._queue.append(packet)
        self._ready.set()

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if not self._active:
            self._active = True
            if self._need_keyframe:
                self._request_keyframe()
        while not self._queue:
            self._ready.clear()
            if self._need_keyframe:
                # The first request may have been rate-limited or its keyframe lost: ask again.
                try:
                    await asyncio.wait_for(self._ready.wait(), KEYFRAME_INTERVAL)
                except TimeoutError:
                    self._request_keyframe()
            else:
                await self._ready.wait()
            if self.readyState != "live":
                raise MediaStreamError
        self.packets += 1
        packet = self._queue.popleft()
        if self._level_of is not None:
            self.last_level = self._level_of(packet)
        return packet

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self._ready.set()


class TrackForwarder:
    """Reads one publisher track and fans its packets out; owns its reader and PLI tasks."""

    def __init__(self, *, track: MediaStreamTrack, receiver: RTCRtpReceiver, kind: str,
                 room_id: str, publisher_id: str, queue_size: int,
                 sink: PacketSink | None = None,
                 on_speaking: Callable[[bool], None] | None = None,
                 forwarding: str = "frame",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind
        self.room_id = room_id
        self.publisher_id = publisher_id
        self.packets = 0
        self.keyframe_requests = 0
        self._track = track
        self._receiver = receiver
        self._queue_size = queue_size
        self._sink = sink
        self._clock = clock
        self.forwarding = forwarding
        self._subscribers: dict[str, ForwardedTrack] = {}
        # forwarding = "rtp": subscribers get each RTP packet from the receiver's hook, and the
        # frames (one depacketizer per track) go to the recorder alone.
        self._legs: dict[str, RtpLeg] = {}
        # The legs' writers, which rooms._native.forward sends on: changed in place (the
        # receiver's hook holds this list).
        self._writers: list[LegWriter] = []
        self._last_pli = -KEYFRAME_INTERVAL
        self._reader: asyncio.Task[None] | None = None
        self._pli_tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._levels: collections.OrderedDict[int, int] = collections.OrderedDict()
        self.speaking: SpeakingDetector | None = None
        if kind == "audio":
            if on_speaking is not None:
                self.speaking = SpeakingDetector(on_speaking, clock)
            passthrough.watch_audio_levels(receiver, self._on_level)
        if forwarding == "rtp":
            passthrough.forward_legs(receiver, self._writers, clock)

    def _on_level(self, timestamp: int, level: int) -> None:
        if self._closed:
            return
        self._levels[timestamp] = level
        if len(self._levels) > LEVELS_KEPT:
            self._levels.popitem(last=False)
        if self.speaking is not None:
            self.speaking.feed(level)

    def level_of(self, packet: av.Packet) -> int | None:
        """The audio level the publisher sent with ``packet`` (by its RTP timestamp)."""
        if packet.pts is None:
            return None
        timestamp = passthrough.rtp_timestamp(self._receiver, packet.pts)
        return self._levels.get(timestamp) if timestamp is not None else None

    def __repr__(self) -> str:
        return f"TrackForwarder(room={self.room_id} publisher={self.publisher_id} {self.kind})"

    def start(self) -> None:
        if self._closed:
            return
        if self.forwarding == "rtp":
            # The subscribers' legs take RTP packets from the receiver's hook: the frames are
            # the recorder's alone, handed over as they are reassembled, with no reader task.
            passthrough.deliver_frames(self._receiver, self._record)
        elif self._reader is None:
            self._reader = asyncio.create_task(self._read(), name=f"forward:{self!r}")

    def subscribe(self, subscriber_id: str) -> ForwardedTrack | RtpLeg:
        self.unsubscribe(subscriber_id)
        if self.forwarding == "rtp":
            leg = RtpLeg(self.kind, self.request_keyframe,
                         label=f"{self.publisher_id}->{subscriber_id}")
            self._legs[subscriber_id] = leg
            self._writers[:] = [leg.writer for leg in self._legs.values()]
            return leg
        forwarded = ForwardedTrack(self.kind, self._queue_size, self.request_keyframe,
                                   label=f"{self.publisher_id}->{subscriber_id}",
                                   level_of=self.level_of if self.kind == "audio" else None)
        self._subscribers[subscriber_id] = forwarded
        return forwarded

    def unsubscribe(self, subscriber_id: str) -> None:
        forwarded = self._subscribers.pop(subscriber_id, None)
        if forwarded is not None:
            forwarded.stop()
        leg = self._legs.pop(subscriber_id, None)
        if leg is not None:
            leg.stop()
            self._writers[:] = [leg.writer for leg in self._legs.values()]

    @property
    def drops(self) -> int:
        return (sum(s.drops for s in self._subscribers.values())
                + sum(leg.drops for leg in self._legs.values()))

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe with an RTCP PLI, at most once per KEYFRAME_INTERVAL."""
        if self.kind != "video" or self._closed:
            return
        now = self._clock()
        if now - self._last_pli < KEYFRAME_INTERVAL:
            return
        # Not just any active source: the publisher ignores a PLI naming its RTX SSRC.
        sources = passthrough.media_sources(self._receiver)
        if not sources:
            return  # no media received yet: the first frame of a stream is a keyframe anyway
        self._last_pli = now
        self.keyframe_requests += 1
        for source in sources:
            task = asyncio.create_task(self._receiver._send_rtcp_pli(source),
                                       name=f"pli:{self!r}")
            self._pli_tasks.add(task)
            task.add_done_callback(self._pli_tasks.discard)

    async def _read(self) -> None:
        try:
            while True:
                packet = await self._track.recv()
                if not isinstance(packet, av.Packet):
                    logger.error("room %s participant %s: %s track yields %s, not packets; "
                                 "is rooms.passthrough installed?", self.room_id,
                                 self.publisher_id, self.kind, type(packet).__name__)
                    return
                self.packets += 1
                for forwarded in self._subscribers.values():
                    forwarded.push(packet)
                self._record(packet)
        except MediaStreamError:
            logger.info("room %s participant %s: %s track ended after %d packets", self.room_id,
                        self.publisher_id, self.kind, self.packets)

    def _record(self, packet: av.Packet) -> None:
        if self._sink is None or self._closed:
            return
        try:
            self._sink(packet)
        except Exception:
            logger.exception("room %s participant %s: recording the %s track failed; "
                             "recording of it stops", self.room_id, self.publisher_id, self.kind)
            self._sink = None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.speaking is not None:
            self.speaking.set(False)
        for forwarded in self._subscribers.values():
            forwarded.stop()
        self._subscribers.clear()
        for leg in self._legs.values():
            leg.stop()
        self._legs.clear()
        self._writers.clear()
        tasks = [t for t in (self._reader, *self._pli_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("%r: task failed", self)
        self._sink = None
