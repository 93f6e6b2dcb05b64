"""The export job pool: composite MP4 exports of recordings (recordings/export.py) run, followed
and kept, one job per recording; asking again returns the job that runs or the file that is done.

The export itself is blocking PyAV work: it runs in a small thread pool (``WORKERS`` at a time,
the rest queued), so the event loop stays responsive.

State: the job's progress lives in this process's memory and is copied every second to the Redis
hash ``yz:export:<id>`` (state, progress, error, size, updated), which any process can read. A job
runs only in the process that started it; if that process stops, its hash stops being updated
and is reported as failed ("interrupted") once ``STALE_S`` passes, and a new request starts the
export again. Finished files are in ``<data_dir>/exports/<id>.mp4``, outside the recording's
directory (sealed by its manifest, where ``verify`` would name an added file); the retention
purge deletes them with the recording (``purge``, a purge hook of the archive).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from recordings.archive import Archive
from recordings.export import ExportCancelled, ExportError, export_recording

logger = logging.getLogger(__name__)

STATE = "yz:export:{}"
LOCK = "yz:export:lock:{}"
WORKERS = 2
MAX_PENDING = 8  # running and queued, in this process
STALE_S = 30.0
FAILED_TTL = 86400
EXPORTS_DIR = "exports"
EXPORT_NICE = 10


class TooManyExports(Exception):
    """No new export: ``MAX_PENDING`` run or wait in this process already."""


class NoSuchRecording(Exception):
    """No export: the recording is not (or no longer) in the archive."""


@dataclass
class _Job:
    recording_id: str
    token: str
    state: str = "queued"
    progress: float = 0.0
    error: str = ""
    error_en: str = ""
    size: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None

    def view(self) -> dict[str, Any]:
        return {"state": self.state, "progress": _percent(self.state, self.progress),
                "error": self.error or None, "error_en": self.error_en or None,
                "size": self.size or None}


def _percent(state: str, progress: float) -> int:
    if state == "done":
        return 100
    return max(0, min(99, int(progress * 100)))


class ExportJobs:
    def __init__(self, redis: aioredis.Redis, archive: Archive, root: Path, *,
                 timezone: str, workers: int = WORKERS) -> None:
        self.redis: Any = redis
        self.archive = archive
        self.root = root
        self.timezone = timezone
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export")
        self._jobs: dict[str, _Job] = {}

    def path(self, recording_id: str) -> Path:
        # recording_id comes from the index (checked against its id pattern), never raw input.
        return self.root / f"{recording_id}.mp4"

    async def status(self, recording_id: str) -> dict[str, Any]:
        job = self._jobs.get(recording_id)
        if job is not None:
            return job.view()
        row = await self.redis.hgetall(STATE.format(recording_id))
        state = row.get("state", "none")
        if state in ("queued", "running") and \
                time.time() - float(row.get("updated") or 0) > STALE_S:
            return {"state": "failed", "progress": 0, "size": None,
                    "error": "导出已中断（服务曾重启），请重新导出。",
                    "error_en": "The export was interrupted (the server restarted); start it "
                                "again."}
        if state == "done" and not self.path(recording_id).is_file():
            state = "none"
        if state == "none":
            return {"state": "none", "progress": 0, "error": None, "error_en": None,
                    "size": None}
        return {"state": state, "progress": _percent(state, float(row.get("progress") or 0)),
                "error": row.get("error") or None, "error_en": row.get("error_en") or None,
                "size": int(row.get("size") or 0) or None}

    async def start(self, recording_id: str) -> tuple[dict[str, Any], bool]:
        """The job of the recording: the running or finished one, or a new one (True).
        Raises TooManyExports, or NoSuchRecording when it is not in the archive."""
        current = await self.status(recording_id)
        if current["state"] in ("queued", "running", "done"):
            return current, False
        if sum(1 for j in self._jobs.values() if j.state in ("queued", "running")) >= MAX_PENDING:
            raise TooManyExports(recording_id)
        found = await self.archive.get(recording_id)
        directory = self.archive.directory(recording_id)
        if found is None or directory is None:
            raise NoSuchRecording(recording_id)
        token = f"{id(self):x}-{time.monotonic_ns():x}"
        # One export per recording across processes: the lock is held (and renewed) by the
        # process whose job runs.
        if not await self.redis.set(LOCK.format(recording_id), token, nx=True, ex=int(STALE_S)):
            return await self.status(recording_id), False
        job = _Job(recording_id, token)
        self._jobs[recording_id] = job
        await self._publish(job)
        job.task = asyncio.create_task(self._run(job, directory, found[1]),
                                       name=f"export:{recording_id}")
        return job.view(), True

    async def _run(self, job: _Job, directory: Path, timeline: dict[str, Any]) -> None:
        out = self.path(job.recording_id)

        def progress(value: float) -> None:
            job.state = "running"
            job.progress = value

        def work() -> int:
            job.state = "running"
            # Below the live calls: the thread (and x264's threads, which inherit it) gets a
            # lower CPU priority, Linux nice being per thread.
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), EXPORT_NICE)
            result = export_recording(directory, timeline, out, timezone=self.timezone,
                                      progress=progress, cancelled=job.cancel.is_set)
            return result.size

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, work)
        started = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=1.0)
                if done:
                    break
                await self._publish(job)
            job.size = future.result()
            if await self.archive.entry(job.recording_id) is None:
                # Purged while it ran: the file goes with the recording.
                out.unlink(missing_ok=True)
                raise ExportCancelled()
            job.state, job.progress = "done", 1.0
            logger.info("recording %s exported: %d bytes in %.1f s", job.recording_id, job.size,
                        time.monotonic() - started)
        except ExportCancelled:
            job.state = "cancelled"
        except ExportError as exc:
            job.state, job.error, job.error_en = "failed", exc.message, exc.message_en
            logger.warning("recording %s: export failed: %s", job.recording_id, exc.message_en)
        except asyncio.CancelledError:
            job.cancel.set()
            with contextlib.suppress(Exception):
                await asyncio.shield(future)
            job.state = "cancelled"
            raise
        except Exception:
            logger.exception("recording %s: export failed", job.recording_id)
            job.state, job.error = "failed", "导出失败（服务器错误），请稍后重试。"
            job.error_en = "The export failed (server error); try again later."
        finally:
            if self._jobs.get(job.recording_id) is job:
                del self._jobs[job.recording_id]
            with contextlib.suppress(Exception):
                if job.state == "cancelled":
                    await self.redis.delete(STATE.format(job.recording_id))
                else:
                    await self._publish(job)
                await self.redis.delete(LOCK.format(job.recording_id))

    async def _publish(self, job: _Job) -> None:
        key = STATE.format(job.recording_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"state": job.state, "progress": f"{job.progress:.4f}",
                                    "error": job.error, "error_en": job.error_en,
                                    "size": job.size, "updated": f"{time.time():.3f}"})
            if job.state == "failed":
                pipe.expire(key, FAILED_TTL)
            else:
                pipe.persist(key)
            if job.state in ("queued", "running"):
                pipe.expire(LOCK.format(job.recording_id), int(STALE_S))
            await pipe.execute()

    async def purge(self, recording_id: str) -> None:
        """The recording is gone (retention): stop its export and delete the file."""
        job = self._jobs.get(recording_id)
        if job is not None:
            job.cancel.set()
        for path in (self.path(recording_id), self.path(recording_id).with_suffix(".mp4.part")):
            path.unlink(missing_ok=True)
        await self.redis.delete(STATE.format(recording_id))

    async def close(self) -> None:
        jobs = [j for j in self._jobs.values() if j.task is not None]
        for job in jobs:
            job.cancel.set()
            assert job.task is not None
            job.task.cancel()
        for job in jobs:
            assert job.task is not None
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job.task
        # Off the loop: a worker still finishing a frame must not stall the rest of shutdown.
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
