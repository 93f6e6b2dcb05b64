"""The room recorder: remuxes every published track's encoded packets into its own WebM file as
they arrive (nothing is decoded or encoded) and keeps timeline.json next to them. H.264 video
(a server with ``media.video_codec = "h264"``) goes into Matroska ``.mkv`` instead: WebM cannot
hold H.264.

Not aiortc's MediaRecorder: it re-encodes on the event loop, and with audio and video in one file
it silently drops all video when an audio packet comes first.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import io
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
from av.container import OutputContainer

from recordings.codecs import h264_dimensions, vp8_dimensions
from recordings.lease import ALWAYS, Lease
from recordings.timeline import (
    TIMELINE_FILE,
    ParticipantEntry,
    TrackEntry,
    build_timeline,
    make_event,
)

if TYPE_CHECKING:  # parts reads files back with recovery, which needs this module
    from recordings.parts import Continuation

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
FailureCallback = Callable[[str, OSError], None]

# Write errors that mean "no room left": the recording is cut short with reason disk_full.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Kept free in every recording directory (a placeholder file deleted when a write fails) so
# that the final timeline.json still fits on a full disk.
RESERVE_FILE = ".reserve"
RESERVE_BYTES = 256 * 1024
# A track's wall-clock start is refined over its first seconds of media (see TrackRecorder).
START_WINDOW_S = 5.0
# Packets (frames) a track holds while the lease is not held (recordings/lease.py): a heartbeat
# that waits for Redis up to its socket timeout (10 s) is about 300 video frames, 500 audio ones.
HOLD_PACKETS = 1000


def failure_reason(exc: OSError) -> str:
    return "disk_full" if exc.errno in _FULL else "write_error"


# Container and file extension by codec.
CONTAINERS = {"vp8": ("webm", "webm"), "opus": ("webm", "webm"),
              "h264": ("matroska", "mkv")}


class TrackRecorder:
    """Writes one track's packets into ``<track_id>.webm`` (``.mkv`` for H.264); the file opens
    on the first packet it keeps (for video, the first keyframe; for H.264, one with an SPS) and
    timestamps start at 0.

    ``started_at`` is the wall-clock time of the file's time 0: the arrival of the first
    written packet, moved earlier when a later packet (within START_WINDOW_S of media) arrives
    sooner than its media time says. The first keyframe of a stream is large and often waits
    in the jitter buffer; placing the track by it alone would put the whole track late on the
    replay timeline by that wait.

    A write that fails (a full disk) stops this file; ``on_failure`` is told once, and the
    packets keep flowing to the subscribers (the forwarder calls ``write`` and moves on)."""

    def __init__(self, directory: Path, *, track_id: str, participant_id: str, kind: str,
                 codec: str, room_id: str, clock: Clock,
                 on_failure: FailureCallback | None = None, lease: Lease = ALWAYS) -> None:
        if codec.lower() not in CONTAINERS:
            raise ValueError(f"track {track_id}: cannot record codec {codec!r}")
        self.track_id = track_id
        self.participant_id = participant_id
        self.kind = kind
        self.codec = codec.lower()
        self._format, extension = CONTAINERS[self.codec]
        self.file = f"{track_id}.{extension}"
        self.path = directory / self.file
        self.room_id = room_id
        self.packets = 0
        self.skipped = 0
        self.started_at: float | None = None
        self._clock = clock
        self._container: OutputContainer | None = None
        # The file the muxer writes through: closing it first makes the container's close
        # write nothing (PyAV leaves out the trailer of a closed file), for let_go.
        self._file: io.RawIOBase | None = None
        self._stream: Any = None
        self._first_pts = 0
        self._last_pts = -1
        self._start_window_pts = 0
        self._time_base = Fraction(1, 90000 if kind == "video" else 48000)
        self._closed = False
        self._on_failure = on_failure
        self.failed: str | None = None
        self._lease = lease
        # Packets that came while the lease was not held: each with its pts and arrival time.
        self._held: collections.deque[tuple[av.Packet, int, float]] = collections.deque(
            maxlen=HOLD_PACKETS)

    def write(self, packet: av.Packet) -> None:
        """Write one packet; called inline from the forwarder (a remux costs microseconds).
        Never raises for a failed write: the call must go on whatever the disk does."""
        if self._closed or packet.pts is None:
            return
        if not self._lease.held():
            if len(self._held) == HOLD_PACKETS:
                self.skipped += 1
            self._held.append((packet, packet.pts, self._clock()))
            return
        try:
            if self._held:
                self._write_held()
            self._write(packet, packet.pts, self._clock())
        except OSError as exc:  # av.error.OSError too: ENOSPC from the muxer's write
            self._fail(exc)

    def _write_held(self) -> None:
        """The packets held while the lease was not, in order, each placed by when it came."""
        while self._held:
            self._write(*self._held.popleft())

    def _write(self, packet: av.Packet, packet_pts: int, now: float) -> None:
        data = bytes(packet)
        if self._container is None:
            if not self._open(packet, data, now):
                self.skipped += 1
                return
        pts = packet_pts - self._first_pts
        if pts < self._start_window_pts and self.started_at is not None:
            self.started_at = min(self.started_at, now - float(pts * self._time_base))
        if pts <= self._last_pts:
            # Matroska needs increasing timestamps; a repeated or late one is nudged forward.
            pts = self._last_pts + 1
        self._last_pts = pts
        # A copy: the same av.Packet goes to the subscribers, and muxing rescales it in place.
        out = av.Packet(data)
        out.pts = pts
        out.dts = pts
        out.time_base = self._time_base
        out.is_keyframe = packet.is_keyframe
        out.stream = self._stream
        assert self._container is not None
        self._container.mux_one(out)
        self.packets += 1

    def _fail(self, exc: OSError) -> None:
        if self.failed is not None:
            return
        self.failed = failure_reason(exc)
        logger.error("room %s participant %s: writing %s failed (%s); this track's recording "
                     "stops, the call goes on", self.room_id, self.participant_id, self.path, exc)
        self.close()
        if self._on_failure is not None:
            self._on_failure(self.failed, exc)

    def _open(self, packet: av.Packet, data: bytes, now: float) -> bool:
        if packet.time_base is not None:
            self._time_base = Fraction(packet.time_base.numerator, packet.time_base.denominator)
        # Short clusters, flushed as they close: if the process dies, all but the last second
        # or so is on disk (recordings/recovery.py closes such a file after a restart).
        file = open(self.path, "wb", buffering=0)  # closed after the container
        try:
            container = av.open(file, mode="w", format=self._format,
                                options={"cluster_time_limit": "1000", "flush_packets": "1"})
            try:
                added = self._add_stream(container, packet, data, now)
            except BaseException:
                with contextlib.suppress(Exception):
                    container.close()
                raise
        except BaseException:
            file.close()
            raise
        if added:
            self._file = file
        else:
            file.close()
            self.path.unlink(missing_ok=True)
        return added

    def _add_stream(self, container: OutputContainer, packet: av.Packet, data: bytes,
                    now: float) -> bool:
        if self.kind == "video":
            h264 = self.codec == "h264"
            size = h264_dimensions(data) if h264 else vp8_dimensions(data)
            if size is None:
                container.close()
                return False
            # H.264 goes in as Annex B with no extradata: FFmpeg's Matroska muxer takes the
            # SPS/PPS of the first packet for CodecPrivate (avcC) before it writes the track
            # header, so a file cut off by a crash decodes too.
            stream = container.add_mux_stream(self.codec, width=size[0], height=size[1])
        else:
            # An Opus encoder context is opened only for its OpusHead extradata, which Matroska
            # requires in CodecPrivate (a bare mux stream has none); it never encodes anything.
            stream = container.add_stream("libopus", rate=48000, layout="stereo")
        stream.time_base = self._time_base
        # In integer ticks: a Fraction product for every packet would double the remux's cost.
        self._start_window_pts = int(START_WINDOW_S / self._time_base)
        self._container = container
        self._stream = stream
        self._first_pts = packet.pts or 0
        self.started_at = now
        logger.info("room %s participant %s: recording %s track into %s", self.room_id,
                    self.participant_id, self.kind, self.path)
        return True

    def entry(self) -> TrackEntry | None:
        if self.started_at is None or self.packets == 0:
            return None  # nothing kept (or its first write failed): no file to play
        return TrackEntry(track_id=self.track_id, participant_id=self.participant_id,
                          kind=self.kind, codec=self.codec, file=self.file,
                          started_at=self.started_at, packets=self.packets)

    def close(self) -> None:
        if self._closed:
            return
        if self._held:
            if self._lease.held():
                try:
                    self._write_held()
                except OSError as exc:
                    self._held.clear()
                    self._fail(exc)  # closes this file again: _closed is still False
                    return
            else:
                self.skipped += len(self._held)
                self._held.clear()
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except (OSError, av.error.PyAVCallbackError) as exc:
                # The trailer (cues, duration) did not fit: the clusters before it still play.
                # (The file's write raised in PyAV's callback: the callback error is raised.)
                logger.warning("room %s participant %s: closing %s failed (%s)", self.room_id,
                               self.participant_id, self.path, exc)
            except Exception:
                logger.exception("room %s participant %s: closing %s failed", self.room_id,
                                 self.participant_id, self.path)
            self._container = None
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def let_go(self) -> int:
        """Stop without writing anything more: the file stays exactly as it is on disk (another
        process continues this recording); what was held is dropped (returns how many)."""
        if self._closed:
            return 0
        self._closed = True
        dropped = len(self._held)
        self.skipped += dropped
        self._held.clear()
        self._close_file()
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()  # its file closed first: no trailer, nothing written
            self._container = None
        return dropped


class Recorder:
    """Everything recorded of one room: its track files and its timeline.

    When a write fails (the disk is full) the recording stops but the room does not: every
    track file is closed where it is, ``failed`` names the reason, and the timeline (written
    at once, into the space the reserve file kept) says ``complete: false`` with
    ``incomplete_reason``. Whoever watches the room (signaling, to alert supervisors) reads
    ``failed``."""

    def __init__(self, directory: Path, *, room_id: str, meta: Mapping[str, Any],
                 clock: Clock = time.time,
                 on_failure: Callable[[str], None] | None = None,
                 lease: Lease = ALWAYS) -> None:
        self.directory = directory
        self._lease = lease
        # Told the reason once, when the recording stops (called where the write failed).
        self._on_failure = on_failure
        self.room_id = room_id
        self.meta = dict(meta)
        self._clock = clock
        self.started_at = clock()
        self.ended_at: float | None = None
        self._participants: list[ParticipantEntry] = []
        self._tracks: list[TrackRecorder] = []
        self._events: list[dict[str, Any]] = []
        self._counters: dict[str, int] = {}
        self._closed = False
        self._summary: dict[str, Any] | None = None
        self._failed: str | None = None
        self.failed_at: float | None = None
        self.failure_detail = ""
        # A recording continued from a dead process's part (continue_from): its earlier parts.
        self._continued: Continuation | None = None

    @property
    def failed(self) -> str | None:
        """Why the recording stopped before the room closed (``disk_full``, ``write_error``),
        or None while it records (or ended normally)."""
        return self._failed

    @property
    def recording(self) -> bool:
        """Media of this room is being written now."""
        return not self._closed and self._failed is None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._reserve()
            self._write_timeline()
        except OSError as exc:
            self._fail(failure_reason(exc), exc)
            return
        logger.info("room %s: recording into %s", self.room_id, self.directory)

    def continue_from(self, previous: Continuation) -> None:
        """This recording is a new part of ``previous`` (before ``start``): same start, the
        earlier parts' participants, events and tracks, new track files numbered after theirs."""
        self._continued = previous
        self.started_at = previous.started_at
        self._participants = list(previous.participants)
        self._events = list(previous.events)
        self._counters = dict(previous.counters)

    def participant_joined(self, participant_id: str, *, role: str, name: str,
                           department: str | None) -> None:
        if any(e.participant_id == participant_id and e.left_at is None
               for e in self._participants):
            return  # in the call since an earlier part, back after the gap: one entry
        self._participants.append(ParticipantEntry(
            participant_id=participant_id, role=role, name=name, department=department,
            joined_at=self._clock()))
        self._checkpoint()

    def participant_left(self, participant_id: str) -> None:
        for entry in reversed(self._participants):
            if entry.participant_id == participant_id and entry.left_at is None:
                entry.left_at = max(self._clock(), entry.joined_at)
                self._checkpoint()
                return

    def add_event(self, type: str, **data: Any) -> None:
        self._events.append(make_event(self._clock(), type, data))

    def track(self, participant_id: str, kind: str, codec: str) -> TrackRecorder:
        key = f"{participant_id}-{kind}"
        n = self._counters.get(key, 0) + 1
        self._counters[key] = n
        recorder = TrackRecorder(self.directory, track_id=f"{key}-{n}",
                                 participant_id=participant_id, kind=kind, codec=codec,
                                 room_id=self.room_id, clock=self._clock,
                                 on_failure=self._fail, lease=self._lease)
        if self._failed is not None:
            recorder.close()  # nothing more is written once the recording has failed
        self._tracks.append(recorder)
        self._checkpoint()
        return recorder

    def timeline(self) -> dict[str, Any]:
        entries = [e for e in (t.entry() for t in self._tracks) if e is not None]
        previous = self._continued
        if previous is not None:
            # The gap ends with the new part's first packet.
            previous.gap["until"] = min((e.started_at for e in entries), default=None)
            entries = [*previous.tracks, *entries]
        timeline = build_timeline(room_id=self.room_id, meta=self.meta,
                                  started_at=self.started_at, ended_at=self.ended_at,
                                  participants=self._participants, tracks=entries,
                                  events=self._events, incomplete_reason=self._failed)
        if previous is not None:
            own = sorted(t.track_id for t in self._tracks if t.entry() is not None)
            timeline["parts"] = [*previous.parts, {
                "part": len(previous.parts) + 1, "node": previous.gap["to_node"],
                "started_at": previous.gap["until"] or previous.lost_at,
                "ended_at": self.ended_at, "tracks": own}]
        return timeline

    def _checkpoint(self) -> None:
        """The timeline on disk follows who is in the call and which tracks are written, so that
        a process that dies leaves them for the part that continues the recording (or for crash
        recovery). Not after a failure: that timeline stays as written then; nor while the lease
        is not held (the next checkpoint or the close writes it)."""
        if (self._failed is not None or self._closed or not self._lease.held()
                or not self.directory.is_dir()):
            return
        try:
            self._write_timeline()
        except OSError as exc:
            self._fail(failure_reason(exc), exc)

    def close(self) -> dict[str, Any]:
        """Finish every file and write the complete timeline; returns it plus ``dir``.

        After a failed write the returned summary says so (``complete: false``); when even the
        final timeline cannot be written, the one written at the failure stays on disk and the
        summary (from memory) is still returned, so that the recording is indexed."""
        if self._summary is not None:
            return self._summary
        self._closed = True
        for track in self._tracks:
            track.close()
        self.ended_at = max(self._clock(), self.started_at)
        try:
            timeline = self._write_timeline()
        except OSError as exc:
            if self._failed is None:
                self._failed = failure_reason(exc)
                self.failed_at = self.ended_at
                self.failure_detail = str(exc)
            logger.error("room %s: writing the final timeline failed (%s)", self.room_id, exc)
            timeline = self.timeline()
        with contextlib.suppress(OSError):
            (self.directory / RESERVE_FILE).unlink(missing_ok=True)
        self._summary = {**timeline, "dir": str(self.directory)}
        logger.info("room %s: recording finished, %d track file(s), %.1f s%s", self.room_id,
                    len(timeline["tracks"]), timeline["duration"],
                    f" (incomplete: {self._failed})" if self._failed else "")
        return self._summary

    def let_go(self) -> None:
        """Stop without writing anything more to the folder (another process continues this
        recording there): the track files stay as they are on disk, the timeline too."""
        self._closed = True
        dropped = sum(track.let_go() for track in self._tracks)
        logger.warning("room %s: recording let go (%d held packet(s) dropped); another process "
                       "continues it", self.room_id, dropped)

    def _fail(self, reason: str, exc: OSError) -> None:
        """The first failed write stops the whole recording (a full disk fails every file):
        the files keep what they have, the reserve makes room for the timeline."""
        if self._failed is not None:
            return
        self._failed = reason
        self.failed_at = self._clock()
        self.failure_detail = str(exc)
        logger.error("room %s: recording stopped (%s: %s); the call goes on", self.room_id,
                     reason, exc)
        self.add_event("recording_failed", reason=reason)
        for track in self._tracks:
            track.close()
        with contextlib.suppress(OSError):
            (self.directory / RESERVE_FILE).unlink(missing_ok=True)
        try:
            self._write_timeline()
        except OSError as again:
            logger.error("room %s: writing the timeline after the failure failed too (%s)",
                         self.room_id, again)
        if self._on_failure is not None:
            self._on_failure(reason)

    def _reserve(self) -> None:
        with (self.directory / RESERVE_FILE).open("wb") as f:
            f.write(b"\0" * RESERVE_BYTES)

    def _write_timeline(self) -> dict[str, Any]:
        timeline = self.timeline()
        path = self.directory / TIMELINE_FILE
        tmp = path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(timeline, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
        return timeline
