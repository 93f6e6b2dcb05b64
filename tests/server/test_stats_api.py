"""/api/stats and /api/stats.csv on the real service: supervisors only, a scoped supervisor sees
only their departments, bad parameters answer JSON 400, the CSV has a BOM and is audited."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from server.keys import ACCOUNTS, REDIS
from signaling import keys
from signaling.accounts import hash_password
from signaling.stats_store import StatsConsumer
from tests.support.http import client_session, logged_in, login
from tests.support.server import LiveServer


async def _history(client: aioredis.Redis, zone_name: str = "Asia/Shanghai") -> str:
    """Two tickets today (tax in 东区, market anonymous), counted; returns today's date."""
    import datetime as dt
    import zoneinfo

    zone = zoneinfo.ZoneInfo(zone_name)
    redis: Any = client  # redis-py's stubs do not take a dict[str, str] for XADD
    now = time.time()
    for item in ({"event": "ENTER", "ticket": "t1", "department": "tax", "hall": "东区"},
                 {"event": "CONNECT", "ticket": "t1", "department": "tax", "detail": "30"},
                 {"event": "RATE", "ticket": "t1", "department": "tax", "detail": "5"},
                 {"event": "ENTER", "ticket": "t2", "department": "market"},
                 {"event": "CANCEL", "ticket": "t2", "department": "market"}):
        await redis.xadd(keys.LOG, {"time": str(now), "staff": "", "detail": "", **item})
    await StatsConsumer(redis, zone, "test").catch_up()
    return dt.datetime.fromtimestamp(now, zone).date().isoformat()


async def test_supervisors_get_rows_and_totals(server: LiveServer) -> None:
    today = await _history(server.app[REDIS])
    async with client_session() as session:
        await logged_in(session, server.url, "supervisor")
        response = await session.get(f"{server.url}/api/stats",
                                     params={"from": today, "to": today})
        assert response.status == 200
        body = await response.json()
    assert body["totals"]["consultations"] == 2
    assert body["totals"]["abandoned"] == 1
    assert body["totals"]["satisfaction"] == 1.0
    assert [r["period"] for r in body["rows"]] == [today]
    assert {d["department"] for d in body["departments"]} == {"tax", "market"}
    assert body["hall_names"] == ["", "东区"]


async def test_a_scoped_supervisor_sees_only_their_departments(server: LiveServer) -> None:
    today = await _history(server.app[REDIS])
    await server.app[ACCOUNTS].put("taxsup", display_name="税务督查", role="supervisor",
                                   departments=("tax",), password_hash=hash_password("demo12345"))
    async with client_session() as session:
        await logged_in(session, server.url, "taxsup")
        body = await (await session.get(f"{server.url}/api/stats",
                                        params={"from": today, "to": today})).json()
        assert body["totals"]["consultations"] == 1
        assert [d["department"] for d in body["departments"]] == ["tax"]
        for path in ("/api/stats", "/api/stats.csv"):
            refused = await session.get(f"{server.url}{path}", params={"department": "market"})
            assert refused.status == 403
            assert (await refused.json())["error"]["code"] == "forbidden"


async def test_other_roles_and_strangers_are_refused(server: LiveServer) -> None:
    async with client_session() as anonymous:
        assert (await anonymous.get(f"{server.url}/api/stats")).status == 401
    for username in ("tax01", "admin", "auditor", "guide01"):
        async with client_session() as session:
            await logged_in(session, server.url, username)
            for path in ("/api/stats", "/api/stats.csv"):
                assert (await session.get(f"{server.url}{path}")).status == 403, username


async def test_bad_parameters_answer_json_400(server: LiveServer) -> None:
    async with client_session() as session:
        await logged_in(session, server.url, "supervisor")
        for params in ({"from": "2026-13-01"}, {"from": "yesterday"},
                       {"from": "2025-01-01", "to": "2026-03-01"},  # over 400 days
                       {"from": "2026-03-02", "to": "2026-03-01"}, {"group": "year"},
                       {"department": "../x"}, {"hall": "x" * 65}, {"limit": "5"}):
            response = await session.get(f"{server.url}/api/stats", params=params)
            assert response.status == 400, params
            body = await response.json()
            assert body["ok"] is False and body["error"]["code"] == "invalid_payload", params
        year = await session.get(f"{server.url}/api/stats", params={
            "from": "2025-03-01", "to": "2026-02-28", "group": "month"})
        assert year.status == 200
        assert len((await year.json())["rows"]) == 12


async def test_the_csv_export_has_a_bom_chinese_headers_and_is_audited(
        server: LiveServer) -> None:
    today = await _history(server.app[REDIS])
    async with client_session() as session:
        await logged_in(session, server.url, "supervisor")
        response = await session.get(f"{server.url}/api/stats.csv",
                                     params={"from": today, "to": today})
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        raw = await response.read()
    assert raw.startswith("\ufeff".encode())
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("周期,咨询量,接通,放弃")
    assert lines[1].startswith(f"{today},2,1,1")
    assert lines[-1].startswith("合计,2,1,1")
    redis: Any = server.app[REDIS]
    entries = await redis.xrange(keys.PREFIX + "audit")
    assert any(f.get("action") == "stats_export" and f.get("who") == "supervisor"
               for _, f in entries)


async def test_the_csv_is_refused_without_signing_in(server: LiveServer) -> None:
    async with client_session() as session:
        response = await login(session, server.url, "supervisor", "wrong-password")
        assert response.status != 200
        assert (await session.get(f"{server.url}/api/stats.csv")).status == 401
