"""Crash recovery: a recording whose process died mid-call (``kill -9``, power loss) is left with
timeline.json at ``complete: false`` and track files that were written as the packets came, with
no cues and no duration. After a restart such a recording is closed here: every track's length is
read back from its file with PyAV (demuxing up to the last whole packet on disk), ``ended_at`` is
the last packet, timeline.json is rewritten with ``complete: false`` and ``recovered: true``, and
the archive indexes and seals it.

Which recordings are orphans: those whose timeline says incomplete, that no room of this process
has open, and whose room's hosting node is gone from ``yz:nodes`` (swept) or whose room directory
``yz:room:<id>`` is gone while no file of it has changed for a while (a room being opened right
now on another process writes its timeline a moment before its room key). A node past its
deadline but not swept yet is waited for: the sweep may move its rooms to a live process, which
continues their recordings (recordings/parts.py).
With the private Redis every node it knew is forgotten at start, so all of them qualify at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import av

from recordings.archive import REDIS_UNAVAILABLE, TIMELINE, Archive
from recordings.recorder import RESERVE_FILE
from recordings.timeline import ParticipantEntry, TrackEntry, build_timeline

logger = logging.getLogger(__name__)

ROOM = "yz:room:{}"
NODES = "yz:nodes"
# A room key missing while its files changed less than this long ago may be a room being opened.
QUIET_S = 15.0
RECOVERY_INTERVAL = 10.0
# WebM for VP8 and Opus, Matroska for H.264 video (recorder.CONTAINERS).
TRACK_FILE = re.compile(r"^(?P<participant>.+)-(?P<kind>audio|video)-(?P<n>\d+)"
                         r"\.(?P<extension>webm|mkv)$")


def track_length(path: Path) -> tuple[float, int]:
    """(seconds from the first to the end of the last packet, packets) of a WebM (or Matroska)
    file that may have been cut off anywhere: demuxing stops at the first damaged or missing
    byte."""
    first: float | None = None
    last = 0.0
    packets = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams[0]
            tb = stream.time_base
            try:
                for packet in container.demux(stream):
                    if packet.pts is None or tb is None:
                        continue
                    start = float(packet.pts * tb)
                    end = start + float((packet.duration or 0) * tb)
                    first = start if first is None else min(first, start)
                    last = max(last, end)
                    packets += 1
            except (av.error.FFmpegError, ValueError) as exc:
                logger.info("%s: demuxing stopped after %d packets (%s)", path, packets, exc)
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        logger.warning("%s: unreadable (%s)", path, exc)
        return 0.0, 0
    if first is None:
        return 0.0, 0
    return max(0.0, last - first), packets


def codec_of(kind: str, extension: str) -> str:
    if kind == "audio":
        return "opus"
    return "h264" if extension == "mkv" else "vp8"


def recover_directory(directory: Path) -> dict[str, Any] | None:
    """Close the recording in ``directory`` from its files; returns its summary (as
    Recorder.close does), or None when it is not an incomplete recording."""
    path = directory / TIMELINE
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if old.get("complete") or old.get("recovered"):
        return None
    # The space the recorder kept free for its final timeline: not part of the recording.
    (directory / RESERVE_FILE).unlink(missing_ok=True)
    started_at = float(old.get("started_at") or 0)
    listed = {t.get("file"): t for t in old.get("tracks", []) if isinstance(t, dict)}
    tracks: list[TrackEntry] = []
    lengths: dict[str, float] = {}
    for file in sorted([*directory.glob("*.webm"), *directory.glob("*.mkv")]):
        match = TRACK_FILE.match(file.name)
        if match is None:
            continue
        seconds, packets = track_length(file)
        if packets == 0:
            continue
        # The file's last write is its last packet; it started that long before.
        written = file.stat().st_mtime
        known = listed.get(file.name)
        track_start = float(known["started_at"]) if known else max(started_at, written - seconds)
        lengths[file.name] = seconds
        tracks.append(TrackEntry(track_id=file.stem, participant_id=match["participant"],
                                 kind=match["kind"], codec=codec_of(match["kind"],
                                                                  match["extension"]),
                                 file=file.name, started_at=track_start, packets=packets))
    ended_at = max([started_at, *(t.started_at + lengths[t.file] for t in tracks)])
    participants = participants_of(old.get("participants", []), tracks)
    meta = {k: old.get(k) for k in ("ticket_id", "ticket_number", "department")}
    timeline = build_timeline(room_id=str(old.get("room_id") or directory.name), meta=meta,
                              started_at=started_at, ended_at=ended_at,
                              participants=participants, tracks=tracks,
                              events=old.get("events", []), rating=old.get("rating"),
                              incomplete_reason=old.get("incomplete_reason") or "crash")
    timeline["recording_id"] = old.get("recording_id") or timeline["recording_id"]
    timeline["complete"] = False
    timeline["recovered"] = True
    timeline["recovered_at"] = time.time()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(timeline, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    logger.warning("recording %s recovered after a crash: %d track(s), %.1f s",
                   timeline["recording_id"], len(tracks), timeline["duration"] or 0)
    return {**timeline, "dir": str(directory)}


def participants_of(known: Iterable[Any], tracks: list[TrackEntry]) -> list[ParticipantEntry]:
    out: list[ParticipantEntry] = []
    seen: set[str] = set()
    for p in known:
        if not isinstance(p, dict) or "participant_id" not in p:
            continue
        seen.add(p["participant_id"])
        out.append(ParticipantEntry(participant_id=p["participant_id"], role=p.get("role", ""),
                                    name=p.get("name", ""), department=p.get("department"),
                                    joined_at=float(p.get("joined_at") or 0),
                                    left_at=p.get("left_at")))
    # Participants who joined after the timeline was last written are known by their files.
    for track in tracks:
        if track.participant_id in seen:
            continue
        seen.add(track.participant_id)
        pid = track.participant_id
        role = "staff" if pid.startswith("s-") else "applicant" if pid.startswith("a-") else ""
        out.append(ParticipantEntry(participant_id=pid, role=role,
                                    name=pid[2:] if role == "staff" else "", department=None,
                                    joined_at=min(t.started_at for t in tracks
                                                  if t.participant_id == pid)))
    return out


def _last_change(directory: Path) -> float:
    latest = 0.0
    for entry in directory.iterdir():
        with contextlib.suppress(OSError):
            latest = max(latest, entry.stat().st_mtime)
    return latest


async def orphans(archive: Archive, open_ids: Iterable[str], now: float) -> list[Path]:
    """Incomplete recordings that no live process is writing."""
    skip = set(open_ids)
    found: list[Path] = []
    if not archive.root.is_dir():
        return found
    for directory in sorted(archive.root.iterdir()):
        if directory.name in skip or not directory.is_dir():
            continue
        path = directory / TIMELINE
        try:
            timeline = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if timeline.get("complete") or timeline.get("recovered"):
            continue
        if timeline.get("incomplete_reason") and await archive.entry(directory.name):
            # Cut short by a full disk and indexed from memory at close, its final timeline
            # not written: already in the archive, not an orphan.
            continue
        node = await archive.redis.hget(ROOM.format(directory.name), "node")
        if node:
            if await archive.redis.zscore(NODES, node) is not None:
                # Its process is alive and recording it, or dead but not swept yet: the sweep
                # moves the room to a live process (which continues the recording in a new
                # part, recordings/parts.py) or ends the call and deletes the room key.
                continue
        elif now - _last_change(directory) < QUIET_S:
            continue
        found.append(directory)
    return found


async def recover(archive: Archive, open_ids: Callable[[], Iterable[str]],
                  clock: Callable[[], float] = time.time) -> list[str]:
    """Close, index and seal every orphaned recording; returns their ids."""
    done: list[str] = []
    for directory in await orphans(archive, open_ids(), clock()):
        if directory.name in set(open_ids()):
            continue
        # Of several processes recovering at once, one claims each recording.
        claim = f"yz:recovering:{directory.name}"
        if not await archive.redis.set(claim, "1", nx=True, ex=300):
            continue
        try:
            summary = await asyncio.to_thread(recover_directory, directory)
            if summary is not None:
                await archive.index(summary)
                done.append(directory.name)
        except Exception:
            logger.exception("recording %s: recovery failed", directory.name)
        finally:
            await archive.redis.delete(claim)
    return done


async def run(archive: Archive, open_ids: Callable[[], Iterable[str]],
              interval: float = RECOVERY_INTERVAL,
              paused: Callable[[], bool] = lambda: False) -> None:
    """Recover at start, then every ``interval`` (a process that died while this one runs
    is found once its heartbeat runs out). Not while ``paused()``: Redis is away, or back so
    recently that live processes' heartbeats may not be renewed yet."""
    while True:
        if not paused():
            try:
                await recover(archive, open_ids)
            except REDIS_UNAVAILABLE:
                pass  # the service's Redis watch logs the outage; next round
            except Exception:
                logger.exception("recording recovery failed; trying again")
        await asyncio.sleep(interval)
