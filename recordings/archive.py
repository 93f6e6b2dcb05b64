"""The recording archive: the Redis index of finished recordings, and the only way to turn a
recording id and a file name into a path on disk (never a path taken from a request).

It also seals every recording into the integrity chain (recordings/manifest.py) when it is
indexed, keeps the rating in its own sealed file, and purges recordings past the retention
period unless they are on legal hold."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from recordings import manifest
from recordings.alerts import Alerts
from recordings.audit import Audit

logger = logging.getLogger(__name__)

INDEX = "yz:recordings"
ENTRY = "yz:recording:{}"
HEAD = "yz:manifest:head"
SEAL_LOCK = "yz:manifest:lock"
TIMELINE = "timeline.json"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LIST_LIMIT = 200
# How many index entries a filtered list looks at, newest first, before it stops.
SCAN_LIMIT = 20000
PURGE_INTERVAL = 3600.0
# Legal holds, also kept on disk (beside purged.jsonl, outside any sealed directory) so that
# `python -m server reindex` restores them with the index.
HOLDS = "holds.json"
# Redis cannot be reached now (signaling/redis_watch.py's UNAVAILABLE; this layer cannot import
# it): the background jobs here try again later without a traceback; the service's Redis watch
# says it in the log.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
_UNLOCK = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0"""


@dataclass(frozen=True)
class RecordingFilter:
    """What GET /api/recordings may ask for; None is "any"."""

    start: float | None = None
    end: float | None = None
    department: str | None = None
    staff: str | None = None
    rating: int | None = None  # 0: not rated
    min_duration: float | None = None
    max_duration: float | None = None
    incomplete: bool | None = None

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.department is not None and entry["department"] != self.department:
            return False
        if self.staff is not None:
            wanted = self.staff.casefold()
            if wanted not in [s.casefold() for s in entry["staff_ids"]] and not any(
                    wanted in s.casefold() for s in entry["staff"]):
                return False
        if self.rating is not None and (entry["rating"] or 0) != self.rating:
            return False
        if self.min_duration is not None and entry["duration"] < self.min_duration:
            return False
        if self.max_duration is not None and entry["duration"] > self.max_duration:
            return False
        return self.incomplete is None or entry["complete"] != self.incomplete


class Archive:
    def __init__(self, redis: aioredis.Redis, root: Path, audit: Audit, *,
                 clock: Callable[[], float] = time.time, retention_days: int = 180) -> None:
        self.redis: Any = redis  # decode_responses=True: replies are str
        self.root = root
        self.clock = clock
        self.retention_days = retention_days
        self.audit = audit  # where retention's purges are recorded
        self.alerts = Alerts(redis, clock)
        self._purger: asyncio.Task[None] | None = None
        # Called with the id of each purged recording (its composite exports go with it).
        self.purge_hooks: builtins.list[Callable[[str], Awaitable[None]]] = []

    def directory(self, recording_id: str) -> Path | None:
        if not _ID.match(recording_id):
            return None
        path = self.root / recording_id
        return path if path.is_dir() else None

    async def index(self, summary: dict[str, Any]) -> None:
        """Seal a finished recording into the chain and enter it (the summary of its
        timeline) into the index."""
        recording_id = str(summary["recording_id"])
        entry = _index_fields(summary)
        key = ENTRY.format(recording_id)
        reason = entry["incomplete_reason"]
        if reason in ("disk_full", "write_error"):
            await self.alerts.raise_once(reason, recording_id, room_id=recording_id,
                                         department=entry["department"],
                                         detail=str(summary.get("failure_detail") or ""))
        try:
            rating = await self.redis.hget(key, "rating")
            if rating:
                # The applicant rated before the recording was indexed: the rating file is
                # sealed with the rest.
                await self._write_rating(recording_id, int(rating),
                                         float(await self.redis.hget(key, "rated_at") or 0)
                                         or None,
                                         json.loads(await self.redis.hget(key, "ratings")
                                                    or "[]"))
            directory = self.directory(recording_id)
            if directory is not None:
                link = await self.seal(recording_id, "close")
                if manifest.RATING not in link["files"] \
                        and (directory / manifest.RATING).exists():
                    # Rated (in another process) while the seal was being made.
                    await self.seal(recording_id, "rating", [manifest.RATING])
        except OSError as exc:
            # A full disk: the manifest could not be written. The recording is still listed
            # (verify reports it as never sealed until space is freed and it is sealed).
            logger.error("recording %s: sealing failed (%s); indexed unsealed", recording_id,
                         exc)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=entry)
            pipe.zadd(INDEX, {recording_id: entry["started_at"]})
            await pipe.execute()
        logger.info("recording %s indexed (%d tracks, %.1f s)", recording_id, entry["tracks"],
                    entry["duration"])

    async def reindex(self) -> dict[str, int]:
        """Rebuild the index from the recording directories on disk: every closed recording
        (timeline.json with an end) is entered again with its rating (rating.json) and legal
        hold (holds.json); entries whose directory is gone are dropped; the chain head is
        restored from the manifests when Redis lost it. Nothing is sealed or written to disk,
        and running it twice changes nothing."""
        counts = {"indexed": 0, "skipped": 0, "removed": 0, "holds": 0, "ratings": 0,
                  "head_restored": 0}
        holds = await asyncio.to_thread(self._read_holds)
        seen: set[str] = set()
        dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and _ID.match(p.name)) \
            if self.root.is_dir() else []
        for directory in dirs:
            try:
                timeline = json.loads((directory / TIMELINE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                counts["skipped"] += 1
                continue
            if not isinstance(timeline, dict) or timeline.get("ended_at") is None:
                counts["skipped"] += 1  # still recording, or an orphan recovery will close
                continue
            recording_id = directory.name
            entry: dict[str, Any] = _index_fields({**timeline, "recording_id": recording_id})
            try:
                rating = json.loads((directory / manifest.RATING).read_text(encoding="utf-8"))
                entry["rating"] = int(rating["rating"])
                entry["rated_at"] = float(rating.get("rated_at") or 0)
                entry["ratings"] = json.dumps(rating.get("ratings") or [], ensure_ascii=False)
                counts["ratings"] += 1
            except (OSError, ValueError, KeyError, TypeError):
                pass
            if recording_id in holds:
                entry["hold"] = int(bool(holds[recording_id].get("hold")))
                counts["holds"] += entry["hold"]
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(ENTRY.format(recording_id), mapping=entry)
                pipe.zadd(INDEX, {recording_id: entry["started_at"]})
                await pipe.execute()
            seen.add(recording_id)
            counts["indexed"] += 1
        for recording_id in await self.redis.zrange(INDEX, 0, -1):
            if recording_id not in seen and self.directory(recording_id) is None:
                await self.redis.zrem(INDEX, recording_id)
                await self.redis.delete(ENTRY.format(recording_id))
                counts["removed"] += 1
        if not await self.redis.exists(HEAD):
            last = await asyncio.to_thread(_last_link, self.root, dirs)
            if last is not None:
                await self.redis.hset(HEAD, mapping={"seq": last["seq"], "hash": last["hash"],
                                                     "recording_id": last["recording_id"]})
                counts["head_restored"] = 1
        logger.info("index rebuilt from %s: %s", self.root, counts)
        return counts

    async def set_rating(self, recording_id: str, rating: int, at: float,
                         ratings: list[dict[str, Any]] | None = None) -> None:
        """The applicant's rating: `rating` the lowest score, `ratings` one entry per department
        rated ({department, score, reasons, comment, staff})."""
        key = ENTRY.format(recording_id)
        detail = json.dumps(ratings or [], ensure_ascii=False)
        await self.redis.hset(key, mapping={"rating": rating, "rated_at": at, "ratings": detail})
        if not await self._write_rating(recording_id, rating, at, ratings or []):
            return
        directory = self.directory(recording_id)
        if directory is not None and (directory / manifest.MANIFEST).exists():
            # Already sealed: the rating file gets a chain link of its own.
            await self.seal(recording_id, "rating", [manifest.RATING])

    async def add_notice(self, recording_id: str, data: bytes) -> bool:
        """The sealed 一次性告知单 (signed JSON, as the signer made it) as notice.json, written
        once; sealed with the recording when it is indexed later, else by a link of its own.
        False when the recording has no directory (nothing recorded)."""
        directory = self.directory(recording_id)
        if directory is None:
            return False
        path = directory / manifest.NOTICE
        if path.exists():
            return True
        tmp = directory / (manifest.NOTICE + ".tmp")
        await asyncio.to_thread(tmp.write_bytes, data)
        os.replace(tmp, path)
        if (directory / manifest.MANIFEST).exists():
            await self.seal(recording_id, "notice", [manifest.NOTICE])
        return True

    def notice(self, recording_id: str) -> bytes | None:
        """notice.json of a recording, as stored (its signature is checked on those bytes)."""
        directory = self.directory(recording_id)
        path = directory / manifest.NOTICE if directory is not None else None
        return path.read_bytes() if path is not None and path.is_file() else None

    async def _write_rating(self, recording_id: str, rating: int, at: float | None,
                            ratings: list[dict[str, Any]]) -> bool:
        """rating.json, written once: timeline.json is sealed when the recording closes and
        never rewritten, so the applicant's later rating is a file of its own."""
        directory = self.directory(recording_id)
        if directory is None:
            return False
        path = directory / manifest.RATING
        if path.exists():
            return False
        tmp = directory / (manifest.RATING + ".tmp")
        tmp.write_text(json.dumps({"recording_id": recording_id, "rating": rating,
                                   "rated_at": at, "ratings": ratings}, ensure_ascii=False),
                       encoding="utf-8")
        os.replace(tmp, path)
        return True

    # integrity chain ------------------------------------------------------------------------
    async def seal(self, recording_id: str, kind: str,
                   names: list[str] | None = None) -> dict[str, Any]:
        """Append a link for the recording's files (all of them, or ``names``) to the chain.

        One sealer at a time across processes (a lock in Redis), so that a manifest on disk
        and the head in Redis move together; the head itself changes under WATCH/MULTI, so a
        writer that skipped the lock could not fork the chain silently."""
        directory = self.directory(recording_id)
        if directory is None:
            raise FileNotFoundError(recording_id)
        files = await asyncio.to_thread(manifest.hash_files, directory, names)
        token = secrets.token_hex(8)
        for _ in range(600):
            if await self.redis.set(SEAL_LOCK, token, nx=True, px=30000):
                break
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError("the manifest lock is held")
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(HEAD)
                        head = await pipe.hgetall(HEAD)
                        link = manifest.make_link(
                            seq=int(head.get("seq") or 0) + 1, kind=kind,
                            recording_id=recording_id, at=self.clock(), files=files,
                            prev=head.get("hash") or "")
                        await asyncio.to_thread(manifest.append_link, directory, link)
                        pipe.multi()
                        pipe.hset(HEAD, mapping={"seq": link["seq"], "hash": link["hash"],
                                                 "recording_id": recording_id})
                        await pipe.execute()
                        break
                    except aioredis.WatchError:
                        continue
        finally:
            await self.redis.eval(_UNLOCK, 1, SEAL_LOCK, token)
        logger.info("recording %s sealed (%s, link %d)", recording_id, kind, link["seq"])
        return link

    async def head(self) -> dict[str, str]:
        return dict(await self.redis.hgetall(HEAD))

    async def verify(self, recording_id: str | None = None) -> manifest.Report:
        head = await self.head()
        return await asyncio.to_thread(manifest.verify, self.root, recording_id, head or None)

    # reading --------------------------------------------------------------------------------
    async def list(self, filters: RecordingFilter | None = None,
                   departments: Iterable[str] = (), limit: int = LIST_LIMIT
                   ) -> list[dict[str, Any]]:
        """Recordings, newest first; ``departments`` (a scoped supervisor) limits them."""
        filters = filters or RecordingFilter()
        scope = set(departments)
        high = "+inf" if filters.end is None else filters.end
        low = "-inf" if filters.start is None else filters.start
        out: list[dict[str, Any]] = []
        offset, batch = 0, 500
        while len(out) < limit and offset < SCAN_LIMIT:
            ids = await self.redis.zrevrangebyscore(INDEX, high, low, start=offset, num=batch)
            if not ids:
                break
            offset += len(ids)
            async with self.redis.pipeline(transaction=False) as pipe:
                for recording_id in ids:
                    pipe.hgetall(ENTRY.format(recording_id))
                rows = await pipe.execute()
            for row in rows:
                if not row or "recording_id" not in row:
                    continue
                entry = _entry(row)
                if scope and entry["department"] not in scope:
                    continue
                if filters.matches(entry):
                    out.append(entry)
                    if len(out) >= limit:
                        break
        return out

    async def entry(self, recording_id: str) -> dict[str, Any] | None:
        if not _ID.match(recording_id):
            return None
        row = await self.redis.hgetall(ENTRY.format(recording_id))
        return _entry(row) if row and "recording_id" in row else None

    async def get(self, recording_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        entry = await self.entry(recording_id)
        directory = self.directory(recording_id)
        if entry is None or directory is None or not (directory / TIMELINE).exists():
            return None
        timeline = json.loads((directory / TIMELINE).read_text(encoding="utf-8"))
        rating_path = directory / manifest.RATING
        if rating_path.exists():
            # The view of a rated recording: the sealed timeline plus its rating file.
            rating = json.loads(rating_path.read_text(encoding="utf-8"))
            timeline["rating"] = rating.get("rating")
            timeline["ratings"] = rating.get("ratings") or []
            at = rating.get("rated_at") or timeline.get("ended_at")
            timeline["events"] = sorted(
                [*timeline.get("events", []),
                 {"t": at, "type": "rating", "rating": rating.get("rating"),
                  "ratings": timeline["ratings"]}],
                key=lambda e: e.get("t") or 0)
        notice_path = directory / manifest.NOTICE
        if notice_path.exists():
            # The sealed 一次性告知单 is listed in the replay's timeline (GET
            # /api/recordings/<id>/notice opens it).
            try:
                sealed = json.loads(notice_path.read_text(encoding="utf-8"))["document"]
                at, departments = sealed["sealed_at"], sorted(sealed["parts"])
            except (ValueError, KeyError, TypeError):
                # A damaged file is still listed (its page says the signature fails; verify
                # reports the changed hash).
                at, departments = None, []
            timeline["notice"] = manifest.NOTICE
            timeline["events"] = sorted(
                [*timeline.get("events", []),
                 {"t": at or timeline.get("ended_at"), "type": "notice",
                  "file": manifest.NOTICE, "departments": departments}],
                key=lambda e: e.get("t") or 0)
        return entry, timeline

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

    # retention ------------------------------------------------------------------------------
    async def set_hold(self, recording_id: str, hold: bool) -> dict[str, Any] | None:
        entry = await self.entry(recording_id)
        if entry is None:
            return None
        await self.redis.hset(ENTRY.format(recording_id), "hold", int(hold))
        await asyncio.to_thread(self._write_hold, recording_id, hold)
        return {**entry, "hold": hold}

    def _read_holds(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.root / HOLDS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)} \
            if isinstance(data, dict) else {}

    def _write_hold(self, recording_id: str, hold: bool) -> None:
        holds = self._read_holds()
        holds[recording_id] = {"hold": hold, "at": self.clock()}
        tmp = self.root / (HOLDS + ".tmp")
        tmp.write_text(json.dumps(holds, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.root / HOLDS)

    async def purge_expired(self) -> builtins.list[str]:
        """Delete every recording that started more than ``retention_days`` ago and is not on
        legal hold: its files, its index entry; its chain links are kept in purged.jsonl."""
        now = self.clock()
        cutoff = now - self.retention_days * 86400
        purged: builtins.list[str] = []
        for recording_id in await self.redis.zrangebyscore(INDEX, "-inf", f"({cutoff}"):
            key = ENTRY.format(recording_id)
            row = await self.redis.hgetall(key)
            if row.get("hold") == "1":
                continue
            # ZREM is the claim: of several processes purging at once, one does each.
            if not await self.redis.zrem(INDEX, recording_id):
                continue
            directory = self.directory(recording_id)
            if directory is not None:
                try:
                    links = (manifest.read_manifest(directory) or {}).get("links", [])
                except ValueError:
                    links = []
                if links:
                    manifest.record_purge(self.root, recording_id, now, links)
                await asyncio.to_thread(shutil.rmtree, directory, True)
            for hook in self.purge_hooks:
                try:
                    await hook(recording_id)
                except Exception:
                    logger.exception("recording %s: a purge hook failed", recording_id)
            await self.redis.delete(key)
            await self.audit.append("system", "purge", recording_id=recording_id,
                                    department=row.get("department", ""),
                                    detail=f"older than {self.retention_days} days")
            logger.info("recording %s purged (retention %d days)", recording_id,
                        self.retention_days)
            purged.append(recording_id)
        return purged

    def start(self, interval: float = PURGE_INTERVAL) -> None:
        """Start the retention job (once a minute after start, then every ``interval``)."""
        if self._purger is None:
            self._purger = asyncio.create_task(self._purge_loop(interval), name="retention")

    async def close(self) -> None:
        task, self._purger = self._purger, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _purge_loop(self, interval: float) -> None:
        await asyncio.sleep(min(interval, 60.0))
        while True:
            try:
                await self.purge_expired()
            except REDIS_UNAVAILABLE:
                logger.debug("retention: Redis unavailable; purging again in %.0f s", interval)
            except Exception:
                logger.exception("retention: purging failed")
            await asyncio.sleep(interval)


def _index_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The index entry (a Redis hash) of a recording, from its timeline or close summary."""
    participants = summary.get("participants", [])
    staff = sorted({p.get("name") or p["participant_id"] for p in participants
                    if p.get("role") == "staff"})
    staff_ids = sorted({p["participant_id"][2:] for p in participants
                        if p.get("role") == "staff"
                        and str(p.get("participant_id", "")).startswith("s-")})
    complete = bool(summary.get("complete"))
    reason = "" if complete else str(summary.get("incomplete_reason")
                                     or ("crash" if summary.get("recovered") else ""))
    return {
        "recording_id": str(summary["recording_id"]),
        "room_id": summary.get("room_id", summary["recording_id"]),
        "ticket_id": summary.get("ticket_id") or "",
        "ticket_number": summary.get("ticket_number") or "",
        "department": summary.get("department") or "",
        "staff": ",".join(staff),
        "staff_ids": ",".join(staff_ids),
        "started_at": float(summary.get("started_at") or 0),
        "ended_at": float(summary.get("ended_at") or 0),
        "duration": float(summary.get("duration") or 0),
        "complete": int(complete),
        "incomplete_reason": reason,
        "tracks": len(summary.get("tracks", [])),
    }


def _last_link(root: Path, dirs: Iterable[Path]) -> dict[str, Any] | None:
    """The newest chain link on disk (in a manifest, or of a purged recording)."""
    best: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = []
    for directory in dirs:
        try:
            found = manifest.read_manifest(directory)
        except (ValueError, UnicodeDecodeError):
            continue
        for link in (found or {}).get("links", []):
            if isinstance(link, dict):
                candidates.append({**link, "recording_id": directory.name})
    try:
        for line in (root / manifest.PURGED).read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                for link in record.get("links", []) if isinstance(record, dict) else []:
                    if isinstance(link, dict):
                        candidates.append({**link, "recording_id": record.get(
                            "recording_id", link.get("recording_id", ""))})
    except OSError:
        pass
    for link in candidates:
        if link.get("hash") and (best is None or int(link.get("seq") or 0) > int(best["seq"])):
            best = {**link, "seq": int(link.get("seq") or 0)}
    return best


def _entry(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(row)
    for name in ("started_at", "ended_at", "duration"):
        out[name] = float(row.get(name) or 0)
    out["complete"] = row.get("complete") == "1"
    out["tracks"] = int(row.get("tracks") or 0)
    out["rating"] = int(row["rating"]) if row.get("rating") else None
    out["staff"] = [s for s in row.get("staff", "").split(",") if s]
    out["staff_ids"] = [s for s in row.get("staff_ids", "").split(",") if s]
    out["hold"] = row.get("hold") == "1"
    return out
