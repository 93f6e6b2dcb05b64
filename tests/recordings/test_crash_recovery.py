"""Crash recovery of a recording: a real server process (`python -m server serve --demo`) on a
redis-server of the test's own, a call between two aiortc peers through the ticket flow, about
6 s of media, then `kill -9` of the server mid-call. A new server process on the same data
directory and Redis closes the orphaned recording: it is listed by GET /api/recordings as
incomplete, its video files decode up to within 5 s of the kill, and `python -m server verify`
passes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import pytest

from bench.common import children, open_room
from recordings import recovery
from recordings.archive import Archive
from recordings.audit import Audit
from rooms.client import RoomClient
from server.redis_server import EmbeddedRedis
from signaling.client import SignalingClient
from tests.support.audit import AUDIT_KEY
from tests.support.harness import ROOT, ServerProcess, wait_until
from tests.support.http import client_session, logged_in
from tests.support.recordings import make_recording


async def _recordings(base: str) -> list[dict[str, Any]]:
    async with client_session() as session:
        await logged_in(session, base, "supervisor")
        response = await session.get(f"{base}/api/recordings")
        assert response.status == 200
        found: list[dict[str, Any]] = (await response.json())["recordings"]
        return found


def _decoded_seconds(path: Path) -> float:
    """Seconds of video that decode, first frame to last."""
    times: list[float] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        try:
            for frame in container.decode(stream):
                if frame.time is not None:
                    times.append(frame.time)
        except av.error.FFmpegError:
            pass  # the cut-off end
    return max(times) - min(times) if times else 0.0


def _kill(pids: list[int]) -> None:
    """SIGKILL these processes (ours) once; the list is emptied so no id is reused later."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pids.clear()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("redis_kind", ["external", "private"])
async def test_recording_of_a_killed_server_is_closed_indexed_and_sealed_after_restart(
        tmp_path: Path, redis_kind: str, loopback_candidates: None) -> None:
    """external: a redis-server of the test's own that outlives the server; once the dead one's
    heartbeat runs out the new process is the live one, so the call moves to it (node loss,
    tests/cluster/test_node_loss.py): nobody comes back, the room closes empty and the recording
    is finished there, complete, its one part followed by the gap. private: the server's own
    redis-server (`serve --demo` without a Redis URL) is killed with it and restarts from its
    AOF; no process of the old Redis is left, the call is over, and the new process recovers the
    recording at start."""
    redis = EmbeddedRedis(tmp_path / "redis")
    if redis_kind == "external":
        await redis.start()
    redis_url = redis.url if redis_kind == "external" else ""
    data_dir = tmp_path / "data"
    first = ServerProcess(redis_url, data_dir)
    second: ServerProcess | None = None
    clients: list[RoomClient] = []
    sockets: list[SignalingClient] = []
    private_redis: list[int] = []
    try:
        await first.start()
        applicant_room, staff_room, sockets = await open_room(first.url)
        for name, room in (("applicant", applicant_room), ("staff", staff_room)):
            clients.append(await RoomClient.connect(first.url, room["room_id"], room["token"],
                                                    name=name))
        for client in clients:
            await client.wait_for_video(1, timeout=20)
        media_from = time.time()
        await asyncio.sleep(6)
        killed_at = time.time()
        assert first.process is not None
        private_redis = children(first.process.pid)  # only the private redis-server
        await first.kill9()
        _kill(private_redis)
        for client in clients:
            await client.close()
        for sock in sockets:
            await sock.close()
        clients, sockets = [], []

        room_id = staff_room["room_id"]
        directory = data_dir / "recordings" / room_id
        timeline = json.loads((directory / "timeline.json").read_text(encoding="utf-8"))
        assert timeline["complete"] is False and "recovered" not in timeline

        # The adopted room waits this long for its participants (external).
        second = ServerProcess(redis_url, data_dir, YUNZHEN_MEDIA_EMPTY_ROOM_TIMEOUT="3")
        await second.start()

        async def listed() -> dict[str, Any] | None:
            return next((r for r in await _recordings(second.url)
                         if r["recording_id"] == room_id), None)

        entry = await wait_until(listed, 60, interval=0.5, what="the recovered recording")
        assert entry["complete"] is (redis_kind == "external")
        assert entry["department"] == "tax"
        assert entry["tracks"] == 4
        assert entry["duration"] >= 4

        timeline = json.loads((directory / "timeline.json").read_text(encoding="utf-8"))
        if redis_kind == "external":
            assert "recovered" not in timeline and timeline["complete"] is True
            [gap] = [e for e in timeline["events"] if e["type"] == "gap"]
            assert gap["reason"] == "node_lost" and gap["until"] is None
            assert gap["t"] >= killed_at - 5
            assert [len(p["tracks"]) for p in timeline["parts"]] == [4, 0]
        else:
            assert timeline["recovered"] is True and timeline["complete"] is False
            assert timeline["ended_at"] >= killed_at - 5
        assert {p["role"] for p in timeline["participants"]} == {"staff", "applicant"}
        videos = [t for t in timeline["tracks"] if t["kind"] == "video"]
        assert len(videos) == 2
        for track in videos:
            seconds = _decoded_seconds(directory / track["file"])
            # Media flowed from about media_from (and a little before) until the kill.
            assert seconds >= (killed_at - media_from) - 5, (track["file"], seconds)

        env = {**os.environ, "YUNZHEN_DATA_DIR": str(data_dir), "YUNZHEN_REDIS_URL": redis_url}
        verify = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "server", "verify", room_id], cwd=ROOT,
            env=env, capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "OK" in verify.stdout
        assert not second.errors(), second.tail()
    finally:
        for client in clients:
            await client.close()
        for sock in sockets:
            await sock.close()
        await first.kill9()
        _kill(private_redis)
        if second is not None:
            await second.stop()
        if redis_kind == "external":
            await redis.stop()


async def test_only_recordings_of_dead_or_gone_rooms_are_recovered(
        redis_client: Any, tmp_path: Path) -> None:
    """The liveness rule on a shared Redis: a room hosted by a live node is left alone, one whose
    node was swept (gone from yz:nodes) is recovered, one whose room key is gone waits until its
    files have been quiet for QUIET_S; open rooms of this process and complete recordings never
    are. (A node past its deadline but not swept yet: tests/recordings/test_parts.py.)"""
    archive = Archive(redis_client, tmp_path / "recordings", Audit(redis_client, AUDIT_KEY))
    archive.root.mkdir()
    now = time.time()
    for name in ("alive", "dead", "gone-old", "gone-new", "mine"):
        directory = await make_recording(archive, f"r-{name}", complete=False, index=False)
        timeline = json.loads((directory / "timeline.json").read_text(encoding="utf-8"))
        timeline.update(ended_at=None, duration=None, tracks=[], participants=[])
        (directory / "timeline.json").write_text(json.dumps(timeline), encoding="utf-8")
        if name == "gone-old":
            for entry in directory.iterdir():
                os.utime(entry, (now - 60, now - 60))
    await make_recording(archive, "r-done", index=False)
    await redis_client.zadd("yz:nodes", {"n-alive": now + 10})
    await redis_client.hset("yz:room:r-alive", "node", "n-alive")
    await redis_client.hset("yz:room:r-dead", "node", "n-dead")
    try:
        found = await recovery.orphans(archive, ["r-mine"], now)
        assert sorted(d.name for d in found) == ["r-dead", "r-gone-old"]
        done = await recovery.recover(archive, lambda: ["r-mine"], lambda: now)
        assert sorted(done) == ["r-dead", "r-gone-old"]
        recovered = await archive.entry("r-dead")
        assert recovered is not None and recovered["complete"] is False
        # Recovered once: a second pass finds nothing more.
        assert await recovery.orphans(archive, ["r-mine"], now) == []
    finally:
        await redis_client.delete("yz:room:r-alive", "yz:room:r-dead", "yz:nodes")
