"""The recording archive over HTTP: supervisors scoped to departments, every access audited (and
read by the auditor), legal hold and retention, and list filters."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import redis.asyncio as aioredis

from recordings.archive import INDEX, Archive
from recordings.audit import AUDIT as AUDIT_STREAM
from recordings.audit import Audit
from server.keys import ACCOUNTS, ARCHIVE, AUDIT
from signaling.accounts import SESSION_COOKIE, hash_password
from signaling.client import SignalingClient
from tests.support.audit import AUDIT_KEY
from tests.support.http import client_session, logged_in
from tests.support.recordings import make_recording
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

DAY = 86400.0
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


async def _seed(server: LiveServer) -> Archive:
    archive = server.app[ARCHIVE]
    await make_recording(archive, "r-tax-001", department="tax", started_at=T0, duration=300)
    await make_recording(archive, "r-tax-002", department="tax", started_at=T0 + DAY,
                         duration=30, complete=False)
    await make_recording(archive, "r-fund-001", department="fund", started_at=T0 + 2 * DAY,
                         duration=120, staff="fund01", staff_name="公积金坐席01")
    await archive.set_rating("r-tax-001", 2, T0 + 400)
    await server.app[ACCOUNTS].put("taxsup", display_name="税务督查", role="supervisor",
                                     departments=("tax",),
                                     password_hash=hash_password("demo12345"))
    return archive


async def test_a_scoped_supervisor_sees_only_their_departments(server: LiveServer) -> None:
    await _seed(server)
    async with client_session() as sup:
        await logged_in(sup, server.url, "taxsup")
        body = await (await sup.get(f"{server.url}/api/recordings")).json()
        assert [r["recording_id"] for r in body["recordings"]] == ["r-tax-002", "r-tax-001"]
        # Another department's recording answers exactly like one that does not exist.
        missing = await sup.get(f"{server.url}/api/recordings/nope")
        for path in ("/api/recordings/r-fund-001",
                     "/api/recordings/r-fund-001/files/a-r-fund-001-audio-1.webm"):
            response = await sup.get(server.url + path)
            assert response.status == 404, path
            assert await response.json() == await missing.json()
        body = await (await sup.get(f"{server.url}/api/recordings?department=fund")).json()
        assert body["recordings"] == []
        response = await sup.get(f"{server.url}/api/recordings/r-tax-001")
        assert response.status == 200
        response = await sup.get(
            f"{server.url}/api/recordings/r-tax-001/files/a-r-tax-001-audio-1.webm")
        assert response.status == 200 and await response.read() == b"r-tax-001" * 100
    async with client_session() as sup:
        await logged_in(sup, server.url, "supervisor")  # no departments: all of them
        body = await (await sup.get(f"{server.url}/api/recordings")).json()
        assert len(body["recordings"]) == 3
        assert (await sup.get(f"{server.url}/api/recordings/r-fund-001")).status == 200


async def test_every_access_is_audited_and_listed(server: LiveServer,
                                                  redis_client: aioredis.Redis) -> None:
    await _seed(server)
    async with client_session() as sup:
        await logged_in(sup, server.url, "taxsup")
        await sup.get(f"{server.url}/api/recordings?department=tax")
        await sup.get(f"{server.url}/api/recordings/r-tax-001")
        await sup.get(f"{server.url}/api/recordings/r-tax-001/files/a-r-tax-001-audio-1.webm")
        await sup.get(f"{server.url}/api/recordings/r-tax-001/files/a-r-tax-001-audio-1.webm",
                      headers={"Range": "bytes=100-"})  # a seek: not a new download
    async with client_session() as sup:
        await logged_in(sup, server.url, "supervisor")
        await sup.get(f"{server.url}/api/recordings/r-fund-001")
        # Supervisors no longer read the audit (三权分立): the auditor does.
        response = await sup.get(f"{server.url}/api/audit")
        assert response.status == 403
        assert (await response.json())["error"]["message_en"] == \
            "Only the security auditor may read the audit log."
    async with client_session() as auditor:
        await logged_in(auditor, server.url, "auditor")
        body = await (await auditor.get(f"{server.url}/api/audit")).json()
        access = [e for e in body["entries"] if e["action"] not in ("login", "audit_read")]
        rows = [(e["who"], e["action"], e["recording_id"]) for e in access]
        assert rows == [("supervisor", "view", "r-fund-001"),
                        ("taxsup", "file", "r-tax-001"), ("taxsup", "view", "r-tax-001"),
                        ("taxsup", "list", "")]
        assert access[0]["remote"] == "127.0.0.1"
        assert access[0]["department"] == "fund"
        assert access[3]["detail"] == "department=tax"
        today = dt.date.today()
        later = (await auditor.get(f"{server.url}/api/audit?from={today + dt.timedelta(days=2)}"
                                     f"&to={today + dt.timedelta(days=3)}")).json()
        assert (await later)["entries"] == []
        for bad in ("from=yesterday", "from=2026-03-05&to=2026-03-01", "to=-5"):
            response = await auditor.get(f"{server.url}/api/audit?{bad}")
            assert response.status == 400, bad
            assert (await response.json())["error"]["code"] == "invalid_payload"
    async with client_session() as staff:
        await logged_in(staff, server.url, "tax01")
        assert (await staff.get(f"{server.url}/api/audit")).status == 403
    entries = await stream_entries(redis_client, AUDIT_STREAM)
    # Reading recordings' audit is audited too, now: the auditor's two good reads.
    assert [f["action"] for f in entries if f["action"] not in ("login",)] == [
        "list", "view", "file", "view", "audit_read", "audit_read"]
    # The stream is trimmed by age (190 days), never by length.
    audit = server.app[AUDIT]
    audit.clock = lambda: time.time() + 189 * DAY
    await audit.append("x", "list")
    assert await redis_client.xlen(AUDIT_STREAM) == len(entries) + 1
    # 191 days on, every entry written today is older than the window (ids are server time);
    # what is left to verify is the anchor, and it still checks out.
    audit.clock = lambda: time.time() + 191 * DAY
    await audit.append("x", "list")
    assert await redis_client.xlen(AUDIT_STREAM) == 0
    report = await audit.verify()
    assert report.ok and report.anchor_seq == report.head_seq == len(entries) + 2


async def test_retention_purges_old_recordings_except_those_on_hold(
        redis_client: aioredis.Redis, tmp_path: Path) -> None:
    now = [T0]
    archive = Archive(redis_client, tmp_path, Audit(redis_client, AUDIT_KEY),
                      clock=lambda: now[0], retention_days=30)
    await make_recording(archive, "r-old-1", started_at=T0 - 40 * DAY)
    await make_recording(archive, "r-old-2", started_at=T0 - 31 * DAY)
    await make_recording(archive, "r-new-1", started_at=T0 - 29 * DAY)
    assert await archive.set_hold("r-old-2", True) is not None
    assert await archive.purge_expired() == ["r-old-1"]
    assert not (tmp_path / "r-old-1").exists()
    assert await redis_client.exists("yz:recording:r-old-1") == 0
    assert await redis_client.zrange(INDEX, 0, -1) == ["r-old-2", "r-new-1"]
    audit = await stream_entries(redis_client, AUDIT_STREAM)
    assert [(f["who"], f["action"], f["recording_id"]) for f in audit] == [
        ("system", "purge", "r-old-1")]
    # The chain still verifies through the purged recording's links.
    assert (await archive.verify()).ok
    now[0] += 2 * DAY
    assert await archive.purge_expired() == ["r-new-1"]
    await archive.set_hold("r-old-2", False)
    assert await archive.purge_expired() == ["r-old-2"]
    assert await redis_client.zcard(INDEX) == 0
    report = await archive.verify()
    assert report.ok and report.links == 3


async def test_the_retention_job_runs_in_the_background(redis_client: aioredis.Redis,
                                                        tmp_path: Path) -> None:
    import asyncio

    archive = Archive(redis_client, tmp_path, Audit(redis_client, AUDIT_KEY), clock=lambda: T0,
                      retention_days=1)
    await make_recording(archive, "r-old-1", started_at=T0 - 2 * DAY)
    archive.start(interval=0.05)
    for _ in range(100):
        if not (tmp_path / "r-old-1").exists():
            break
        await asyncio.sleep(0.05)
    await archive.close()
    assert not (tmp_path / "r-old-1").exists()
    assert archive._purger is None


async def test_legal_hold_is_for_admins(server: LiveServer,
                                        redis_client: aioredis.Redis) -> None:
    await _seed(server)
    async with client_session() as sup:
        await logged_in(sup, server.url, "supervisor")
        response = await sup.post(f"{server.url}/api/recordings/r-tax-001/hold",
                                  json={"hold": True})
        assert response.status == 403
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        response = await admin.post(f"{server.url}/api/recordings/r-tax-001/hold",
                                    json={"hold": True})
        assert response.status == 200
        assert (await response.json())["recording"]["hold"] is True
        assert await redis_client.hget("yz:recording:r-tax-001", "hold") == "1"
        for body in ({"hold": "yes"}, {}):
            response = await admin.post(f"{server.url}/api/recordings/r-tax-001/hold",
                                        json=body)
            assert response.status == 400
        response = await admin.post(f"{server.url}/api/recordings/nope/hold",
                                    json={"hold": True})
        assert response.status == 404
        # An admin does not review recordings (三权分立): a supervisor sees the hold.
        assert (await admin.get(f"{server.url}/api/recordings")).status == 403
    async with client_session() as sup:
        await logged_in(sup, server.url, "supervisor")
        listed = await (await sup.get(f"{server.url}/api/recordings")).json()
        assert {r["recording_id"]: r["hold"] for r in listed["recordings"]}["r-tax-001"]


async def test_recordings_are_filtered_and_bad_filters_refused(server: LiveServer) -> None:
    await _seed(server)
    async with client_session() as sup:
        await logged_in(sup, server.url, "supervisor")

        async def ids(query: str) -> list[str]:
            response = await sup.get(f"{server.url}/api/recordings?{query}")
            assert response.status == 200, (query, await response.text())
            return [r["recording_id"] for r in (await response.json())["recordings"]]

        assert await ids("") == ["r-fund-001", "r-tax-002", "r-tax-001"]
        assert await ids("from=2026-03-03") == ["r-fund-001", "r-tax-002"]
        assert await ids("from=2026-03-02&to=2026-03-03") == ["r-tax-002", "r-tax-001"]
        assert await ids(f"from={T0 + 1}&to={T0 + DAY}") == ["r-tax-002"]
        assert await ids("department=tax") == ["r-tax-002", "r-tax-001"]
        assert await ids("staff=fund01") == ["r-fund-001"]
        assert await ids("staff=税务坐席") == ["r-tax-002", "r-tax-001"]
        assert await ids("rating=2") == ["r-tax-001"]
        assert await ids("rating=none") == ["r-fund-001", "r-tax-002"]
        assert await ids("min_duration=100") == ["r-fund-001", "r-tax-001"]
        assert await ids("min_duration=100&max_duration=200") == ["r-fund-001"]
        assert await ids("incomplete=1") == ["r-tax-002"]
        assert await ids("incomplete=0&department=tax") == ["r-tax-001"]
        for bad in ("from=tomorrow", "to=2026-13-01", "from=2026-03-05&to=2026-03-01",
                    "department=../x", "rating=6", "rating=2.5", "min_duration=-1",
                    "max_duration=abc", "min_duration=50&max_duration=10", "incomplete=maybe",
                    "colour=red", "min_duration=nan"):
            response = await sup.get(f"{server.url}/api/recordings?{bad}")
            assert response.status == 400, bad
            body = await response.json()
            assert body["ok"] is False and body["error"]["code"] == "invalid_payload"


def test_retention_days_is_validated() -> None:
    import pytest

    from server.config import Config, ConfigError, load_config

    assert Config().retention_days == 180
    assert load_config(env={"YUNZHEN_RETENTION_DAYS": "365"}).retention_days == 365
    for bad in ("0", "-3", "abc", "40000"):
        with pytest.raises(ConfigError, match="retention_days"):
            load_config(env={"YUNZHEN_RETENTION_DAYS": bad})


async def test_an_applicants_ticket_token_opens_no_recording(server: LiveServer) -> None:
    """The kiosk's ticket token authorizes that ticket only: as a session cookie, a bearer
    header or a query parameter it gets no recording, list or export."""
    await _seed(server)
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    try:
        created = await kiosk.request("ticket:create", {"department": "tax", "consent": True})
        token = created["ticket"]["token"]
    finally:
        await kiosk.close()
    paths = ("/api/recordings", "/api/recordings/r-tax-001",
             "/api/recordings/r-tax-001/files/a-r-tax-001-audio-1.webm",
             "/api/recordings/r-tax-001/export", "/api/audit")
    async with client_session() as applicant:
        applicant.cookie_jar.update_cookies({SESSION_COOKIE: token})
        for path in paths:
            for query, headers in (("", {}), (f"?token={token}", {}),
                                   ("", {"Authorization": f"Bearer {token}"})):
                response = await applicant.get(server.url + path + query, headers=headers)
                assert response.status == 401, (path, query, headers)
                # The cookie is no login session: to the server, one that has ended.
                assert (await response.json())["error"]["code"] == "session_expired"
