"""The integrity chain: every recording sealed in manifest.json when indexed, each link naming
the previous one; `python -m server verify` names every change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis

from recordings import manifest
from recordings.archive import HEAD, Archive
from recordings.audit import Audit
from tests.support.audit import AUDIT_KEY
from tests.support.recordings import make_recording
from tests.support.streams import stream_entries

ROOT = Path(__file__).resolve().parents[2]


async def _archive(redis_client: aioredis.Redis, tmp_path: Path) -> Archive:
    archive = Archive(redis_client, tmp_path / "recordings", Audit(redis_client, AUDIT_KEY))
    archive.root.mkdir()
    for n in range(1, 4):
        await make_recording(archive, f"r00{n}", started_at=1_700_000_000.0 + n)
    return archive


def _problems(archive: Archive, recording_id: str | None = None) -> list[str]:
    head = None
    return [str(p) for p in manifest.verify(archive.root, recording_id, head).problems]


async def test_indexing_seals_every_file_into_a_chain(redis_client: aioredis.Redis,
                                                      tmp_path: Path) -> None:
    archive = await _archive(redis_client, tmp_path)
    links = [json.loads((archive.root / f"r00{n}" / "manifest.json").read_text())["links"]
             for n in range(1, 4)]
    assert [x[0]["seq"] for x in links] == [1, 2, 3]
    assert links[0][0]["prev"] == ""
    assert links[1][0]["prev"] == links[0][0]["hash"]
    assert links[2][0]["prev"] == links[1][0]["hash"]
    assert set(links[0][0]["files"]) == {"timeline.json", "a-r001-audio-1.webm"}
    head = await redis_client.hgetall(HEAD)
    assert head == {"seq": "3", "hash": links[2][0]["hash"], "recording_id": "r003"}
    report = await archive.verify()
    assert report.ok and report.recordings == 3 and report.links == 3


async def test_a_late_rating_is_its_own_sealed_file_and_link(redis_client: aioredis.Redis,
                                                             tmp_path: Path) -> None:
    archive = await _archive(redis_client, tmp_path)
    before = (archive.root / "r002" / "timeline.json").read_bytes()
    ratings = [{"department": "tax", "score": 2, "reasons": ["long_wait"], "comment": "慢",
                "staff": "tax01"},
               {"department": "market", "score": 5, "reasons": [], "comment": "",
                "staff": "market01"}]
    await archive.set_rating("r002", 2, 1_700_000_100.0, ratings)
    assert (archive.root / "r002" / "timeline.json").read_bytes() == before
    sealed = json.loads((archive.root / "r002" / "rating.json").read_text(encoding="utf-8"))
    assert sealed["rating"] == 2 and sealed["ratings"] == ratings  # one entry per department
    links = json.loads((archive.root / "r002" / "manifest.json").read_text())["links"]
    assert [(x["seq"], x["kind"], list(x["files"])) for x in links][1] == (
        4, "rating", ["rating.json"])
    assert (await archive.verify()).ok
    found = await archive.get("r002")
    assert found is not None
    entry, timeline = found
    assert entry["rating"] == 2 and timeline["rating"] == 2 and timeline["ratings"] == ratings
    assert timeline["events"][-1] == {"t": 1_700_000_100.0, "type": "rating", "rating": 2,
                                      "ratings": ratings}
    # A second rating changes nothing sealed.
    await archive.set_rating("r002", 5, 1_700_000_200.0, [])
    assert json.loads((archive.root / "r002" / "rating.json").read_text())["ratings"] == ratings
    assert (await archive.verify()).ok


async def test_one_changed_byte_is_named(redis_client: aioredis.Redis, tmp_path: Path) -> None:
    archive = await _archive(redis_client, tmp_path)
    path = archive.root / "r002" / "a-r002-audio-1.webm"
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    assert _problems(archive) == ["r002: changed: a-r002-audio-1.webm"]
    assert _problems(archive, "r002") == ["r002: changed: a-r002-audio-1.webm"]
    assert _problems(archive, "r001") == []


async def test_a_deleted_and_an_added_file_are_named(redis_client: aioredis.Redis,
                                                     tmp_path: Path) -> None:
    archive = await _archive(redis_client, tmp_path)
    (archive.root / "r001" / "timeline.json").unlink()
    (archive.root / "r003" / "extra.webm").write_bytes(b"x")
    assert _problems(archive) == ["r001: removed: timeline.json", "r003: added: extra.webm"]


async def test_a_broken_chain_is_named(redis_client: aioredis.Redis, tmp_path: Path) -> None:
    archive = await _archive(redis_client, tmp_path)
    # A link edited by hand no longer matches its own hash.
    path = archive.root / "r002" / "manifest.json"
    data = json.loads(path.read_text())
    data["links"][0]["prev"] = "0" * 64
    path.write_text(json.dumps(data))
    assert _problems(archive) == ["r002: link_altered: link 2 does not match its own hash",
                                  "r002: chain: link 2 does not follow link 1 (r001)"]
    # Re-hashed to hide the edit: the chain still does not hold.
    data["links"][0]["hash"] = manifest.link_hash(data["links"][0])
    path.write_text(json.dumps(data))
    assert _problems(archive) == ["r002: chain: link 2 does not follow link 1 (r001)",
                                  "r003: chain: link 3 does not follow link 2 (r002)"]


async def test_a_whole_recording_removed_breaks_the_chain(redis_client: aioredis.Redis,
                                                          tmp_path: Path) -> None:
    archive = await _archive(redis_client, tmp_path)
    import shutil

    shutil.rmtree(archive.root / "r002")
    assert _problems(archive) == [
        "r003: chain: links 2..2 are missing before link 3 (after r001)"]
    shutil.rmtree(archive.root / "r003")
    assert _problems(archive) == []  # the files alone cannot tell the newest is gone...
    problems = [str(p) for p in (await archive.verify()).problems]
    assert problems == ["r003: head: the head in Redis is link 3 of r003, the files end at "
                        "link 1 (r001)"]  # ...but the head in Redis can


async def test_the_verify_command_names_problems_and_exits_1(redis_client: aioredis.Redis,
                                                             redis_url: str,
                                                             tmp_path: Path) -> None:
    archive = await _archive(redis_client, tmp_path)
    env = {**os.environ, "YUNZHEN_DATA_DIR": str(tmp_path), "YUNZHEN_REDIS_URL": redis_url,
           "YUNZHEN_AUDIT_KEY": AUDIT_KEY.hex()}
    env.pop("YUNZHEN_CONFIG", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server", "verify", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)

    result = run()
    assert result.returncode == 0, result.stderr
    assert "OK: 3 recording(s), 3 chain link(s), 0 problem(s)" in result.stdout
    (archive.root / "r001" / "a-r001-audio-1.webm").write_bytes(b"tampered")
    result = run("r001")
    assert result.returncode == 1
    assert "r001: changed: a-r001-audio-1.webm" in result.stdout
    assert run("r002").returncode == 0
    # From the files alone (no Redis configured) it checks the same.
    env.pop("YUNZHEN_REDIS_URL")
    result = run()
    assert result.returncode == 1 and "r001: changed" in result.stdout
    audit = await stream_entries(redis_client, "yz:audit")
    assert [(f["action"], f["recording_id"], f["detail"]) for f in audit] == [
        ("verify", "", "ok"), ("verify", "r001", "1 problem(s)"), ("verify", "r002", "ok")]
