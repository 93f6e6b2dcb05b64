"""`python -m server reindex`: the recordings index in Redis rebuilt from the files on disk, with
legal holds and ratings, the chain head restored, idempotent; refused while the service's
private redis-server is running on the same data directory."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from recordings.archive import ENTRY, HEAD, INDEX
from server.keys import ARCHIVE, CONFIG
from server.redis_server import EmbeddedRedis
from tests.support.harness import ROOT
from tests.support.http import client_session, logged_in
from tests.support.recordings import make_recording
from tests.support.server import LiveServer

T0 = 1_772_400_000.0


async def _listed(server: LiveServer) -> list[dict[str, Any]]:
    async with client_session() as session:
        await logged_in(session, server.url, "supervisor")
        response = await session.get(f"{server.url}/api/recordings")
        assert response.status == 200
        recordings: list[dict[str, Any]] = (await response.json())["recordings"]
        return recordings


def _reindex(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server", "reindex"], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


async def test_reindex_rebuilds_the_index_with_holds_and_ratings_and_is_idempotent(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    archive = server.app[ARCHIVE]
    await make_recording(archive, "r-1", started_at=T0, duration=300)
    await make_recording(archive, "r-2", started_at=T0 + 100, duration=30, complete=False)
    await make_recording(archive, "r-3", department="fund", started_at=T0 + 200, duration=90,
                         staff="fund01", staff_name="公积金坐席01")
    # A room still recording (no end yet) is not an archive entry.
    await make_recording(archive, "r-open", started_at=T0 + 300, index=False)
    timeline = archive.root / "r-open" / "timeline.json"
    timeline.write_text(timeline.read_text(encoding="utf-8").replace(
        f'"ended_at": {T0 + 360}', '"ended_at": null'), encoding="utf-8")
    await archive.set_rating("r-1", 4, T0 + 400)
    await archive.set_hold("r-3", True)
    await archive.set_hold("r-2", True)
    await archive.set_hold("r-2", False)
    before = await _listed(server)
    assert [r["recording_id"] for r in before] == ["r-3", "r-2", "r-1"]
    head = await redis_client.hgetall(HEAD)  # type: ignore[misc]
    assert head["seq"] == "4"  # three closes and the rating

    # Redis loses the index (and the chain head): only the files remain.
    await redis_client.delete(INDEX, HEAD, *(ENTRY.format(r) for r in ("r-1", "r-2", "r-3")))
    assert await _listed(server) == []

    config = server.app[CONFIG]
    env = {"YUNZHEN_DATA_DIR": str(config.data_dir), "YUNZHEN_REDIS_URL": config.redis_url}
    first = await asyncio.to_thread(_reindex, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "OK: 3 recording(s) indexed" in first.stdout
    assert "1 rated, 1 on legal hold" in first.stdout
    assert "1 skipped" in first.stdout and "chain head restored" in first.stdout
    after = await _listed(server)
    assert after == before
    assert {r["recording_id"]: (r["hold"], r["rating"], r["complete"]) for r in after} == {
        "r-1": (False, 4, True), "r-2": (False, None, False), "r-3": (True, None, True)}
    assert await redis_client.hgetall(HEAD) == head  # type: ignore[misc]

    # Again: nothing changes.
    second = await asyncio.to_thread(_reindex, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "OK: 3 recording(s) indexed" in second.stdout
    assert "chain head restored" not in second.stdout
    assert await _listed(server) == before

    # An entry whose directory is gone is dropped; the others stay.
    shutil.rmtree(archive.root / "r-2")
    third = await asyncio.to_thread(_reindex, env)
    assert third.returncode == 0 and "1 entry without files removed" in third.stdout
    assert [r["recording_id"] for r in await _listed(server)] == ["r-3", "r-1"]


async def test_reindex_refuses_while_the_services_private_redis_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    running = EmbeddedRedis(data / "redis")
    await running.start()
    try:
        result = await asyncio.to_thread(_reindex, {"YUNZHEN_DATA_DIR": str(data),
                                                     "YUNZHEN_REDIS_URL": ""})
    finally:
        await running.stop()
    assert result.returncode == 2
    assert "the service is running" in result.stderr
    # Stopped: the command starts the private Redis itself, and finds nothing to index.
    result = await asyncio.to_thread(_reindex, {"YUNZHEN_DATA_DIR": str(data),
                                                 "YUNZHEN_REDIS_URL": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 0 recording(s) indexed" in result.stdout
