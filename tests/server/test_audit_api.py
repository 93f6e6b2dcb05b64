"""The audit log over HTTP is the auditor's alone (三权分立): everybody else is refused, the
admin included; the auditor filters it, exports it as CSV and checks its chain, and each of
those is itself audited. The audit key is made at the first start, under the data directory."""

from __future__ import annotations

import csv
import io
import stat
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from recordings.audit import AUDIT as AUDIT_STREAM
from server.app import create_app
from server.config import Config, ConfigError
from server.data_keys import audit_key
from server.keys import AUDIT
from tests.support.audit import audit_rows
from tests.support.http import client_session, logged_in, login
from tests.support.server import LiveServer

PATHS = (("GET", "/api/audit"), ("GET", "/api/audit.csv"), ("POST", "/api/audit/verify"))
REFUSAL = "Only the security auditor may read the audit log."


async def test_only_the_auditor_may_read_export_or_verify_the_audit(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    async with client_session() as anonymous:
        for method, path in PATHS:
            response = await anonymous.request(method, server.url + path, json={})
            assert response.status == 401, path
            assert (await response.json())["error"]["code"] == "unauthenticated"
    for username in ("admin", "supervisor", "tax01", "guide01"):
        async with client_session() as session:
            await logged_in(session, server.url, username)
            for method, path in PATHS:
                response = await session.request(method, server.url + path, json={})
                assert response.status == 403, (username, path)
                error = (await response.json())["error"]
                assert error["code"] == "forbidden" and error["message_en"] == REFUSAL
    # The refusals read nothing and are not audit reads; only the sign-ins are in the log.
    assert {f["action"] for _, f in await audit_rows(redis_client)} == {"login"}
    async with client_session() as auditor:
        await logged_in(auditor, server.url, "auditor")
        for method, path in PATHS:
            response = await auditor.request(method, server.url + path, json={})
            assert response.status == 200, path
            await response.read()


async def test_the_auditor_filters_the_log_and_every_read_is_audited(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
    async with client_session() as stranger:
        assert (await login(stranger, server.url, "admin", "wrong-password")).status == 401
    async with client_session() as auditor:
        await logged_in(auditor, server.url, "auditor")
        body = await (await auditor.get(f"{server.url}/api/audit?who=admin")).json()
        assert [(e["who"], e["action"], e["target"]) for e in body["entries"]] == [
            ("admin", "login_failed", "admin"), ("admin", "login", "admin")]
        assert body["more"] is False
        newest = body["entries"][1]
        assert newest["remote"] == "127.0.0.1" and newest["seq"] >= 1
        body = await (await auditor.get(
            f"{server.url}/api/audit?who=admin&action=login&limit=5")).json()
        assert [e["action"] for e in body["entries"]] == ["login"]
        # Newest first, with a limit; `more` says there are older ones.
        body = await (await auditor.get(f"{server.url}/api/audit?limit=2")).json()
        assert [e["action"] for e in body["entries"]] == ["audit_read", "audit_read"]
        assert body["more"] is True
        seqs = [e["seq"] for e in body["entries"]]
        assert seqs == sorted(seqs, reverse=True)
        # Dates are the hall's local days; epoch seconds work too.
        body = await (await auditor.get(f"{server.url}/api/audit?from=2020-01-01&to=2020-12-31"
                                        )).json()
        assert body["entries"] == []
        body = await (await auditor.get(f"{server.url}/api/audit?from=0&action=login")).json()
        assert {e["who"] for e in body["entries"]} == {"admin", "auditor"}
        for bad in ("limit=0", "limit=5001", "limit=x", "colour=red", "from=yesterday",
                    "from=2026-03-05&to=2026-03-01", f"who={'x' * 65}"):
            response = await auditor.get(f"{server.url}/api/audit?{bad}")
            assert response.status == 400, bad
            assert (await response.json())["error"]["code"] == "invalid_payload"
    reads = [f for _, f in await audit_rows(redis_client) if f["action"] == "audit_read"]
    assert [f["detail"] for f in reads] == [
        "who=admin", "who=admin&action=login&limit=5", "limit=2",
        "from=2020-01-01&to=2020-12-31", "from=0&action=login"]
    assert all(f["who"] == "auditor" and f["remote"] == "127.0.0.1" for f in reads)


async def test_the_csv_export_has_every_field_and_defuses_formulas(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    await server.app[AUDIT].append("admin", "account_update", target="tax02",
                                   before={"roles": "staff"}, after={"roles": "guide", "名": "李"},
                                   remote="10.0.0.9")
    async with client_session() as stranger:
        # A username typed on the sign-in form lands in the log: a spreadsheet must not run it.
        await login(stranger, server.url, "=HYPERLINK(\"http://evil\")", "whatever-pass")
    async with client_session() as auditor:
        await logged_in(auditor, server.url, "auditor")
        response = await auditor.get(f"{server.url}/api/audit.csv?from=0")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0]) == ["id", "seq", "time", "epoch", "who", "action", "target",
                             "recording_id", "department", "remote", "detail", "before",
                             "after", "prev", "mac"]
    # Its own export is the newest entry: recorded before the rows were read.
    assert (rows[0]["who"], rows[0]["action"], rows[0]["detail"]) == \
        ("auditor", "audit_export", "from=0")
    change = next(r for r in rows if r["action"] == "account_update")
    assert change["target"] == "tax02" and change["remote"] == "10.0.0.9"
    assert change["before"] == '{"roles": "staff"}'
    assert change["after"] == '{"roles": "guide", "名": "李"}'
    by_seq = {r["seq"]: r for r in rows}
    earlier = by_seq.get(str(int(change["seq"]) - 1))
    assert change["prev"] == (earlier["mac"] if earlier else "") and len(change["mac"]) == 64
    assert change["time"].startswith("20") and change["time"].endswith("+08:00")
    failed = next(r for r in rows if r["action"] == "login_failed")
    assert failed["who"] == "'=HYPERLINK(\"http://evil\")"
    stored = {f["seq"]: f for _, f in await audit_rows(redis_client)}
    assert stored[failed["seq"]]["who"] == "=HYPERLINK(\"http://evil\")"  # the log is as it was
    assert [int(r["seq"]) for r in rows] == sorted((int(s) for s in stored), reverse=True)


async def test_the_auditor_verifies_the_chain_and_the_check_is_audited(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    async with client_session() as auditor:
        await logged_in(auditor, server.url, "auditor")
        body = await (await auditor.post(f"{server.url}/api/audit/verify", json={})).json()
        assert body["ok"] is True
        assert body["report"]["ok"] is True and body["report"]["first"] is None
        rows = await audit_rows(redis_client)
        await redis_client.xdel(AUDIT_STREAM, rows[0][0])  # the auditor's own sign-in
        body = await (await auditor.post(f"{server.url}/api/audit/verify", json={})).json()
    report = body["report"]
    assert report["ok"] is False and report["problems"] == 1
    assert report["first"]["kind"] == "missing" and report["first"]["entry_id"] == rows[1][0]
    assert report["first"]["seq"] == 2 and "seq 1 missing" in report["first"]["message"]
    checks = [f for _, f in await audit_rows(redis_client) if f["action"] == "audit_verify"]
    assert [(f["who"], f["detail"]) for f in checks] == [
        ("auditor", "ok"), ("auditor", f"missing at seq 2 ({rows[1][0]}); 1 break(s)")]


def test_the_audit_key_is_made_at_the_first_start_and_a_bad_setting_stops_it(
        tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "data")
    # A tool that only checks the log does not make a key (it would verify nothing).
    with pytest.raises(ConfigError, match="no audit key"):
        audit_key(config, create=False)
    create_app(config)
    path = tmp_path / "data" / "keys" / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = audit_key(config, create=False)
    assert len(key) == 32 and audit_key(config) == key
    # The setting (env YUNZHEN_AUDIT_KEY) wins over the file.
    assert audit_key(replace(config, audit_key="ab" * 32), create=False) == b"\xab" * 32
    for bad in ("not hex", "ab" * 16):
        with pytest.raises(ConfigError, match="audit key"):
            create_app(replace(config, audit_key=bad))
