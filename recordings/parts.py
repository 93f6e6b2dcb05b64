"""A recording continued in a new part: the room of a process that died (signaling/adopt.py) is
re-created on a live one, and its recording goes on in the same folder. The dead part's track
files stay as they were cut off; they are read back the way crash recovery reads them
(recovery.track_length), and the new part writes new files after them. The timeline lists the
parts and a ``gap`` event from the dead part's last packet to the new part's first.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recordings.recovery import TRACK_FILE, codec_of, participants_of, track_length
from recordings.timeline import TIMELINE_FILE, ParticipantEntry, TrackEntry, make_event

logger = logging.getLogger(__name__)

GAP_REASON = "node_lost"


@dataclass
class Continuation:
    """What a new part of a recording starts from: the earlier parts, read back."""

    started_at: float
    participants: list[ParticipantEntry]
    tracks: list[TrackEntry]  # every earlier part's
    events: list[dict[str, Any]]  # ending with the gap
    parts: list[dict[str, Any]]  # the earlier parts, closed
    counters: dict[str, int] = field(default_factory=dict)  # "<participant>-<kind>" -> last n
    gap: dict[str, Any] = field(default_factory=dict)  # the gap event (its ``until`` comes later)

    @property
    def lost_at(self) -> float:
        return float(self.gap["t"])


def read_back(directory: Path, *, lost_node: str, node: str, now: float) -> Continuation:
    """The recording in ``directory`` as the dead process ``lost_node`` left it; the new part is
    written by ``node`` from ``now``. A folder without a readable timeline starts afresh at the
    time its process died (the files, if any, still count)."""
    try:
        old: dict[str, Any] = json.loads((directory / TIMELINE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("%s: no readable timeline; the new part starts without one", directory)
        old = {}
    started_at = float(old.get("started_at") or now)
    listed = {t.get("file"): t for t in old.get("tracks", []) if isinstance(t, dict)}
    tracks: list[TrackEntry] = []
    ends: list[float] = []
    counters: dict[str, int] = {}
    for file in sorted([*directory.glob("*.webm"), *directory.glob("*.mkv")]):
        match = TRACK_FILE.match(file.name)
        if match is None:
            continue
        key = f"{match['participant']}-{match['kind']}"
        # The new part's files are numbered after every earlier one, even an empty one.
        counters[key] = max(counters.get(key, 0), int(match["n"]))
        seconds, packets = track_length(file)
        if packets == 0:
            continue
        known = listed.get(file.name)
        start = (float(known["started_at"]) if known
                 else max(started_at, file.stat().st_mtime - seconds))
        tracks.append(TrackEntry(track_id=file.stem, participant_id=match["participant"],
                                 kind=match["kind"],
                                 codec=codec_of(match["kind"], match["extension"]),
                                 file=file.name, started_at=start, packets=packets))
        ends.append(start + seconds)
    # The dead part ends with its last packet on disk (the heartbeat's deadline is later).
    lost_at = min(max([started_at, *ends]), now)
    parts = [dict(p) for p in old.get("parts", []) if isinstance(p, dict)]
    if not parts:
        parts = [{"part": 1, "node": lost_node, "started_at": started_at}]
    earlier = {t for p in parts[:-1] for t in p.get("tracks", [])}
    parts[-1].update(ended_at=lost_at,
                     tracks=sorted(t.track_id for t in tracks if t.track_id not in earlier))
    gap = make_event(lost_at, "gap", {"until": None, "reason": GAP_REASON,
                                      "from_node": lost_node, "to_node": node})
    events = [e for e in old.get("events", []) if isinstance(e, dict) and "t" in e]
    participants = participants_of(old.get("participants", []), tracks)
    return Continuation(started_at=started_at, participants=participants, tracks=tracks,
                        events=[*events, gap], parts=parts, counters=counters, gap=gap)
