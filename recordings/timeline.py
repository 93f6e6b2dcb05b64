"""The timeline of a recording (timeline.json): pure values in, a JSON-ready dict out.

Times are Unix epoch seconds (float), as everywhere in the protocol; a replay places a track or an
event at ``t - started_at`` seconds into the consultation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TIMELINE_FILE = "timeline.json"

# Keys an event's own data may not use: they belong to the event record itself.
RESERVED_EVENT_KEYS = frozenset({"t", "type"})


@dataclass
class ParticipantEntry:
    participant_id: str
    role: str
    name: str
    department: str | None
    joined_at: float
    left_at: float | None = None

    def __post_init__(self) -> None:
        if self.left_at is not None and self.left_at < self.joined_at:
            raise ValueError(f"participant {self.participant_id} left before joining")

    def to_dict(self, ended_at: float | None = None) -> dict[str, Any]:
        left_at = self.left_at if self.left_at is not None else ended_at
        return {
            "participant_id": self.participant_id,
            "role": self.role,
            "name": self.name,
            "department": self.department,
            "joined_at": self.joined_at,
            "left_at": left_at,
        }


@dataclass
class TrackEntry:
    track_id: str
    participant_id: str
    kind: str
    codec: str
    file: str
    started_at: float
    packets: int

    def __post_init__(self) -> None:
        if self.kind not in ("audio", "video"):
            raise ValueError(f"track {self.track_id}: kind {self.kind!r} is not audio or video")
        if "/" in self.file or self.file.startswith("."):
            raise ValueError(f"track {self.track_id}: file {self.file!r} must be a plain name")

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "participant_id": self.participant_id,
            "kind": self.kind,
            "codec": self.codec,
            "file": self.file,
            "started_at": self.started_at,
            "packets": self.packets,
        }


def make_event(t: float, type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """One timeline event: ``{t, type, **data}``."""
    if not type:
        raise ValueError("an event needs a type")
    clash = RESERVED_EVENT_KEYS & set(data)
    if clash:
        raise ValueError(f"event {type!r}: data may not use {', '.join(sorted(clash))}")
    return {"t": t, "type": type, **data}


def build_timeline(*, room_id: str, meta: Mapping[str, Any], started_at: float,
                   ended_at: float | None, participants: Iterable[ParticipantEntry],
                   tracks: Iterable[TrackEntry], events: Iterable[Mapping[str, Any]],
                   rating: int | None = None,
                   incomplete_reason: str | None = None) -> dict[str, Any]:
    """The timeline document. It is complete when ``ended_at`` is known and nothing failed
    (``incomplete_reason``, e.g. ``disk_full``); participants still present at the end are
    given ``left_at = ended_at``."""
    if ended_at is not None and ended_at < started_at:
        raise ValueError("a recording cannot end before it starts")
    complete = ended_at is not None and not incomplete_reason
    extra = {"incomplete_reason": incomplete_reason} if incomplete_reason else {}
    return {
        "recording_id": room_id,
        "room_id": room_id,
        "ticket_id": meta.get("ticket_id"),
        "ticket_number": meta.get("ticket_number"),
        "department": meta.get("department"),
        "started_at": started_at,
        "ended_at": ended_at,
        "duration": round(ended_at - started_at, 3) if ended_at is not None else None,
        "complete": complete,
        "participants": [p.to_dict(ended_at) for p in participants],
        "tracks": [t.to_dict() for t in sorted(tracks, key=lambda t: (t.started_at, t.track_id))],
        "events": sorted((dict(e) for e in events), key=lambda e: e["t"]),
        "rating": rating,
        **extra,
    }
