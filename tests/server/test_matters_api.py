"""The matter catalogue's HTTP API: anyone reads it (the kiosk too), only an admin writes it, and
every write is audited with the matter before and after; bad input answers 400 with the reason
in both languages, unknown ids 404; the kiosk's department list carries the catalogue's names."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from recordings.audit import AUDIT
from server.seed import DEMO_MATTERS
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

NEW = {"department": "tax", "name": "跨区域涉税事项报告",
       "materials": [{"name": "跨区域涉税事项报告表", "form": "original", "count": 2,
                      "notes": "加盖公章"},
                     {"name": "外出经营合同", "form": "copy", "count": 1, "notes": ""}],
       "legal_basis": "《国家税务总局关于创新跨区域涉税事项报验管理制度的通知》",
       "fee": "不收费", "time_limit": "即时办结", "online": True}


async def _call(http: aiohttp.ClientSession, method: str, url: str,
                body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    response = await http.request(method, url, json=body)
    return response.status, await response.json()


async def _audit(redis_client: aioredis.Redis, action: str) -> list[dict[str, Any]]:
    entries = [e for e in await stream_entries(redis_client, AUDIT) if e["action"] == action]
    return [{**e, "before": json.loads(e["before"] or "null"),
             "after": json.loads(e["after"] or "null")} for e in entries]


async def test_anyone_reads_the_catalogue_by_department_or_whole(server: LiveServer) -> None:
    async with client_session() as anonymous:
        status, body = await _call(anonymous, "GET", f"{server.url}/api/matters?department=fund")
        assert status == 200
        assert body["matters"] == [m.to_dict() for m in DEMO_MATTERS if m.department == "fund"]
        status, body = await _call(anonymous, "GET", f"{server.url}/api/matters")
        assert status == 200 and len(body["matters"]) == len(DEMO_MATTERS)
        status, body = await _call(anonymous, "GET", f"{server.url}/api/matters/estate-transfer")
        assert status == 200 and body["matter"]["name"] == "二手房转移登记"
        assert body["matter"]["materials"][0]["form"] in ("original", "copy", "either")
        # The kiosk's department list finds a department by its catalogue's names.
        status, body = await _call(anonymous, "GET", f"{server.url}/api/departments")
        market = next(d for d in body["departments"] if d["id"] == "market")
        assert "个体工商户设立登记" in market["matters"]
    async with client_session() as staff:
        await logged_in(staff, server.url, "tax01")
        status, body = await _call(staff, "GET", f"{server.url}/api/matters?department=tax")
        assert status == 200 and body["matters"][0]["id"] == "tax-invoice"


@pytest.mark.parametrize(("query", "status", "code"), [
    ("department=nope", 404, "not_found"),
    ("department=a%2Fb", 400, "invalid_payload"),
    ("department=", 400, "invalid_payload"),
])
async def test_a_bad_department_query_is_refused(server: LiveServer, query: str, status: int,
                                                 code: str) -> None:
    async with client_session() as anonymous:
        got, body = await _call(anonymous, "GET", f"{server.url}/api/matters?{query}")
    assert (got, body["error"]["code"]) == (status, code)


async def test_an_admin_creates_changes_and_deletes_a_matter_each_audited(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    url = f"{server.url}/api/admin/matters/tax-cross-region"
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        status, body = await _call(admin, "PUT", url, NEW)
        assert status == 201 and body["created"] is True
        assert body["matter"] == {**NEW, "id": "tax-cross-region"}
        status, body = await _call(admin, "GET",
                                   f"{server.url}/api/matters?department=tax")
        assert body["matters"][-1]["id"] == "tax-cross-region"

        changed = {**NEW, "id": "tax-cross-region", "fee": "每份 5 元", "materials": []}
        status, body = await _call(admin, "PUT", url, changed)
        assert status == 200 and body["created"] is False and body["matter"] == changed

        status, body = await _call(admin, "DELETE", url)
        assert status == 200 and body["matter"] == changed
        status, body = await _call(admin, "GET", f"{server.url}/api/matters/tax-cross-region")
        assert (status, body["error"]["code"]) == (404, "not_found")
        status, body = await _call(admin, "DELETE", url)
        assert (status, body["error"]["code"]) == (404, "not_found")

    saves = await _audit(redis_client, "matter_save")
    assert [(e["who"], e["target"], e["department"]) for e in saves] == \
        [("admin", "tax-cross-region", "tax")] * 2
    assert saves[0]["before"] is None and saves[0]["after"]["fee"] == "不收费"
    assert saves[1]["before"]["fee"] == "不收费" and saves[1]["after"]["fee"] == "每份 5 元"
    assert saves[1]["remote"] == "127.0.0.1"
    deletes = await _audit(redis_client, "matter_delete")
    assert len(deletes) == 1 and deletes[0]["before"] == changed and deletes[0]["after"] is None


@pytest.mark.parametrize(("who", "status", "code"), [
    ("", 401, "unauthenticated"),
    ("tax01", 403, "forbidden"),
    ("supervisor", 403, "forbidden"),
    ("auditor", 403, "forbidden"),
])
async def test_only_an_admin_writes_the_catalogue(server: LiveServer, redis_client: aioredis.Redis,
                                                  who: str, status: int, code: str) -> None:
    async with client_session() as http:
        if who:
            await logged_in(http, server.url, who)
        for method, path, body in (("PUT", "tax-invoice", {**NEW, "fee": "1 元"}),
                                   ("PUT", "tax-new", NEW), ("DELETE", "tax-invoice", None)):
            got, answer = await _call(http, method, f"{server.url}/api/admin/matters/{path}",
                                      body)
            assert (got, answer["error"]["code"]) == (status, code), (method, path)
    async with client_session() as anonymous:
        _, answer = await _call(anonymous, "GET", f"{server.url}/api/matters/tax-invoice")
        assert answer["matter"] == DEMO_MATTERS[0].to_dict()
        got, _ = await _call(anonymous, "GET", f"{server.url}/api/matters/tax-new")
        assert got == 404
    assert not await _audit(redis_client, "matter_save")
    assert not await _audit(redis_client, "matter_delete")


@pytest.mark.parametrize(("path", "body", "name", "reason"), [
    ("tax-x", {**NEW, "name": ""}, "matter", "事项名称应为 1 到 64 个字"),
    ("tax-x", {**NEW, "department": "nope"}, "matter", "没有这个部门"),
    ("tax-x", {**NEW, "materials": [{"name": "证", "form": "scan"}]}, "matter", "材料形式"),
    ("tax-x", {**NEW, "online": "true"}, "matter", "是否可网办"),
    ("tax-x", {**NEW, "id": "tax-y"}, "matter_id_differs", "事项编号与地址不一致"),
    ("Tax_X", NEW, "matter", "事项编号"),
])
async def test_a_bad_matter_is_refused_with_the_reason(
        server: LiveServer, redis_client: aioredis.Redis, path: str, body: dict[str, Any],
        name: str, reason: str) -> None:
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        status, answer = await _call(admin, "PUT", f"{server.url}/api/admin/matters/{path}", body)
        assert status == 400 and answer["error"]["code"] == "invalid_payload"
        assert reason in answer["error"]["message"]
        if name == "matter":
            assert answer["error"]["message_en"].startswith("Invalid matter: ")
        status, _ = await _call(admin, "GET", f"{server.url}/api/matters/{path}")
        assert status == 404
    assert not await _audit(redis_client, "matter_save")


async def test_a_body_that_is_not_json_is_refused(server: LiveServer) -> None:
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        response = await admin.put(f"{server.url}/api/admin/matters/tax-x", data=b"name=1",
                                   headers={"Content-Type": "application/json"})
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_payload"
