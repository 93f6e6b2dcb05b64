"""The recording archive: the Redis index of finished recordings, and the only way to turn a
recording id and a file name into a path on disk (never a path taken from a request)."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

INDEX = "yz:recordings"
ENTRY = "yz:recording:{}"
TIMELINE = "timeline.json"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Archive:
    def __init__(self, redis: aioredis.Redis, root: Path) -> None:
        self.redis: Any = redis  # decode_responses=True: replies are str
        self.root = root

    def directory(self, recording_id: str) -> Path | None:
        if not _ID.match(recording_id):
            return None
        path = self.root / recording_id
        return path if path.is_dir() else None

    async def index(self, summary: dict[str, Any]) -> None:
        """Enter a finished recording (the summary of its timeline) into the index."""
        recording_id = str(summary["recording_id"])
        participants = summary.get("participants", [])
        staff = sorted({p.get("name") or p["participant_id"] for p in participants
                        if p.get("role") == "staff"})
        entry = {
            "recording_id": recording_id,
            "room_id": summary.get("room_id", recording_id),
            "ticket_id": summary.get("ticket_id") or "",
            "ticket_number": summary.get("ticket_number") or "",
            "department": summary.get("department") or "",
            "staff": ",".join(staff),
            "started_at": float(summary.get("started_at") or 0),
            "ended_at": float(summary.get("ended_at") or 0),
            "duration": float(summary.get("duration") or 0),
            "complete": int(bool(summary.get("complete"))),
            "tracks": len(summary.get("tracks", [])),
        }
        key = ENTRY.format(recording_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=entry)
            pipe.zadd(INDEX, {recording_id: entry["started_at"]})
            pipe.hget(key, "rating")
            result = await pipe.execute()
        rating = result[-1]
        if rating:
            # The applicant rated before the recording was indexed: put it in the file too.
            self._write_rating(recording_id, int(rating))
        logger.info("recording %s indexed (%d tracks, %.1f s)", recording_id, entry["tracks"],
                    entry["duration"])

    async def set_rating(self, recording_id: str, rating: int, at: float) -> None:
        await self.redis.hset(ENTRY.format(recording_id), mapping={"rating": rating,
                                                                  "rated_at": at})
        self._write_rating(recording_id, rating, at)

    def _write_rating(self, recording_id: str, rating: int, at: float | None = None) -> None:
        directory = self.directory(recording_id)
        if directory is None or not (directory / TIMELINE).exists():
            return
        timeline = json.loads((directory / TIMELINE).read_text(encoding="utf-8"))
        if timeline.get("rating") == rating:
            return
        timeline["rating"] = rating
        event: dict[str, Any] = {"t": at if at is not None else timeline.get("ended_at"),
                                 "type": "rating", "rating": rating}
        timeline.setdefault("events", []).append(event)
        tmp = directory / (TIMELINE + ".tmp")
        tmp.write_text(json.dumps(timeline, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, directory / TIMELINE)

    async def list(self, limit: int = 200) -> list[dict[str, Any]]:
        ids = await self.redis.zrevrange(INDEX, 0, limit - 1)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for recording_id in ids:
                pipe.hgetall(ENTRY.format(recording_id))
            rows = await pipe.execute()
        return [_entry(row) for row in rows if row]

    async def get(self, recording_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if not _ID.match(recording_id):
            return None
        row = await self.redis.hgetall(ENTRY.format(recording_id))
        directory = self.directory(recording_id)
        if not row or directory is None or not (directory / TIMELINE).exists():
            return None
        timeline = json.loads((directory / TIMELINE).read_text(encoding="utf-8"))
        return _entry(row), timeline

    async def file(self, recording_id: str, name: str) -> Path | None:
        """The path of one media file of a recording, if the timeline lists a file of that name."""
        found = await self.get(recording_id)
        if found is None:
            return None
        _, timeline = found
        listed = {track.get("file") for track in timeline.get("tracks", [])}
        if name not in listed:
            return None
        directory = self.directory(recording_id)
        assert directory is not None
        path = directory / name
        return path if path.is_file() else None


def _entry(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(row)
    for name in ("started_at", "ended_at", "duration"):
        out[name] = float(row.get(name) or 0)
    out["complete"] = row.get("complete") == "1"
    out["tracks"] = int(row.get("tracks") or 0)
    out["rating"] = int(row["rating"]) if row.get("rating") else None
    out["staff"] = [s for s in row.get("staff", "").split(",") if s]
    return out
