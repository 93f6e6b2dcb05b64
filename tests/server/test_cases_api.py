"""差评 cases over HTTP: who sees a case (its department's supervisors; one with no departments
all of them; nobody else), the steps walked to closed with every refusal on the way, each step
audited with before/after and kept in the history, and the near-due/overdue alerts."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import aiohttp

from recordings.audit import AUDIT
from server.keys import ACCOUNTS, ARCHIVE, CASES, CONFIG, STORE, TICKETS
from signaling import keys
from signaling.accounts import hash_password
from signaling.cases import Cases
from signaling.privacy import CONSENT_NOTICE_VERSION
from signaling.ratings import Rating
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer
from tests.support.streams import stream_entries


async def _case(server: LiveServer) -> str:
    """A tax ticket served by tax01 with market in a 会商, rated tax 2 and market 5."""
    store = server.app[STORE]
    # Real times: the server's own queue tick runs meanwhile, and would take a ring whose
    # deadline lies in 1970 for a missed one.
    now = time.time()
    code, ticket, _, _ = await store.create_ticket("tax", now,
                                                   consent_version=CONSENT_NOTICE_VERSION)
    assert code == "ok" and ticket is not None
    await store.connection("staff", "tax01", "n1", 1, now)
    await store.set_presence("tax01", "available", now)
    await store.connection("ticket", ticket.ticket_id, "n1", 1, now)
    await store.dispatch("tax", now + 0.1)
    assert await store.accept(ticket.ticket_id, "tax01", now + 0.2) == "ok"
    await store.set_ticket_joined(ticket.ticket_id, "market", "market01")
    await store.finish_ticket(ticket.ticket_id, now + 0.3)
    fresh = await store.ticket(ticket.ticket_id)
    assert fresh is not None
    opened = await server.app[TICKETS].rate(fresh, [Rating("tax", 2, ("attitude",), "态度差"),
                                                   Rating("market", 5)])
    assert len(opened) == 1
    for username, depts in (("taxsup", ("tax",)), ("taxsup2", ("tax",)),
                            ("marketsup", ("market",))):
        await server.app[ACCOUNTS].put(username, display_name=username, role="supervisor",
                                       departments=depts,
                                       password_hash=hash_password("demo12345"))
    return opened[0]


async def _json(response: aiohttp.ClientResponse) -> Any:
    return await response.json()


async def _step(session: aiohttp.ClientSession, base: str, case_id: str, step: str,
                text: str = "说明", decision: str = "") -> aiohttp.ClientResponse:
    body = {"step": step, "text": text, **({"decision": decision} if decision else {})}
    return await session.post(f"{base}/api/cases/{case_id}/steps", json=body)


async def test_only_the_departments_supervisors_see_a_case(server: LiveServer) -> None:
    case_id = await _case(server)
    base = server.url
    async with client_session() as other:
        await logged_in(other, base, "marketsup")
        assert (await _json(await other.get(f"{base}/api/cases")))["cases"] == []
        assert (await _json(await other.get(f"{base}/api/cases?department=tax")))["cases"] == []
        for query in ("state=open", "overdue=1", "state=open&department=tax"):
            assert (await _json(await other.get(f"{base}/api/cases?{query}")))["cases"] == []
        missing = await other.get(f"{base}/api/cases/20260101-99999")
        response = await other.get(f"{base}/api/cases/{case_id}")
        assert response.status == 404 and await response.json() == await missing.json()
        response = await _step(other, base, case_id, "callback")
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    for username in ("admin", "auditor", "tax01", "guide01"):
        async with client_session() as session:
            await logged_in(session, base, username)
            for response in (await session.get(f"{base}/api/cases"),
                             await session.get(f"{base}/api/cases/{case_id}"),
                             await _step(session, base, case_id, "callback")):
                assert response.status == 403, username
    async with client_session() as anonymous:
        assert (await anonymous.get(f"{base}/api/cases")).status == 401
    async with client_session() as everyone:
        await logged_in(everyone, base, "supervisor")  # no departments: all cases
        found = (await _json(await everyone.get(f"{base}/api/cases")))["cases"]
        assert [(c["id"], c["department"], c["score"]) for c in found] == [(case_id, "tax", 2)]
    async with client_session() as tax:
        await logged_in(tax, base, "taxsup")
        found = (await _json(await tax.get(f"{base}/api/cases?state=open")))["cases"]
        assert [c["id"] for c in found] == [case_id]
        today = server.app[CASES].today()
        due = server.app[CONFIG].signaling.calendar().add_working_days(today, 15)
        assert found[0]["due"] == due.isoformat() and not found[0]["overdue"]
        assert (await _json(await tax.get(f"{base}/api/cases?overdue=1")))["cases"] == []
        assert (await _json(await tax.get(f"{base}/api/cases?state=closed")))["cases"] == []
        for query in ("state=nope", "overdue=maybe", "department=..", "page=2"):
            assert (await tax.get(f"{base}/api/cases?{query}")).status == 400, query


async def test_a_supervisor_walks_a_case_to_closed_and_every_step_is_audited(
        server: LiveServer) -> None:
    case_id = await _case(server)
    base = server.url
    async with client_session() as tax, client_session() as tax2:
        await logged_in(tax, base, "taxsup")
        await logged_in(tax2, base, "taxsup2")
        # Wrong step for the state, missing text, unknown step, a decision where none belongs.
        for step, text, decision, status in (("rectify", "x", "", 409), ("callback", " ", "", 400),
                                             ("close", "x", "", 400),
                                             ("callback", "x", "upheld", 400)):
            response = await _step(tax, base, case_id, step, text, decision)
            assert response.status == status, (step, await response.text())
        assert (await _step(tax, base, case_id, "callback", "已回访，属实")).status == 200
        assert (await _step(tax, base, case_id, "appeal", "评价与录像不符")).status == 200
        response = await _step(tax, base, case_id, "decide", "自己裁定", "upheld")
        assert response.status == 403
        assert (await response.json())["error"]["message"] == "申诉须由另一位督查人员裁定。"
        response = await _step(tax2, base, case_id, "decide", "录像显示态度确有问题", "rejected")
        assert (await response.json())["case"]["state"] == "verified"
        assert (await _step(tax, base, case_id, "appeal", "再次申诉")).status == 409
        for step in ("rectify", "feedback", "recheck"):
            response = await _step(tax, base, case_id, step, f"{step} 说明")
            assert response.status == 200, await response.text()
        case = (await response.json())["case"]
        assert (case["state"], case["resolution"], case["next_steps"]) == (
            "closed", "rectified", [])
        assert case["closed_at"] is not None and case["room_id"] == ""
        assert [(h["step"], h["who"], h["state"]) for h in case["history"]] == [
            ("open", "", "opened"), ("callback", "taxsup", "verified"),
            ("appeal", "taxsup", "appealed"), ("decide", "taxsup2", "verified"),
            ("rectify", "taxsup", "rectified"), ("feedback", "taxsup", "answered"),
            ("recheck", "taxsup", "closed")]
        assert (await _step(tax, base, case_id, "recheck", "again")).status == 409
    row = await server.app[STORE].redis.hgetall(keys.CASE(case_id))
    assert row["state"] == "closed" and float(row["closed_at"]) > 0
    assert case_id not in await server.app[STORE].redis.smembers(keys.OPEN_CASES)
    steps = [e for e in await stream_entries(server.app[STORE].redis, AUDIT)
             if e["action"] in ("case_open", "case_step")]
    assert [(e["who"], e["target"]) for e in steps][:2] == [("system", case_id),
                                                            ("taxsup", case_id)]
    assert len(steps) == 7 and all(e["department"] == "tax" for e in steps)
    last = steps[-1]
    assert json.loads(last["before"])["state"] == "answered"
    assert json.loads(last["after"])["state"] == "closed"


async def test_near_due_and_overdue_cases_raise_alerts_for_their_department(
        server: LiveServer) -> None:
    case_id = await _case(server)
    app = server.app
    due = dt.date.fromisoformat((await app[STORE].redis.hgetall(keys.CASE(case_id)))["due"])
    config = app[CONFIG].signaling
    zone = config.zone
    alerts = app[ARCHIVE].alerts

    def on(day: dt.date) -> Cases:
        moment = dt.datetime.combine(day, dt.time(10), zone).timestamp()
        return Cases(app[STORE].redis, config, config.calendar(), app[ARCHIVE].audit,
                     now=lambda: moment)

    assert await on(due - dt.timedelta(days=14)).raise_alerts(alerts) == 0
    assert await on(due).raise_alerts(alerts) == 1  # due today: within 3 working days
    assert await on(due).raise_alerts(alerts) == 0  # once
    assert await on(due + dt.timedelta(days=1)).raise_alerts(alerts) == 1
    # The overdue filter, on the day after the due date, for the tax supervisor only.
    taxsup, marketsup = (await app[ACCOUNTS].user("taxsup"), await app[ACCOUNTS].user("marketsup"))
    assert taxsup is not None and marketsup is not None
    late = on(due + dt.timedelta(days=1))
    assert [c["id"] for c in await late.list(taxsup, overdue=True)] == [case_id]
    assert [c["id"] for c in await late.list(taxsup, state="open", department="tax")] == [case_id]
    assert await late.list(taxsup, overdue=False) == []
    assert await late.list(marketsup, overdue=True) == []
    assert await on(due).list(taxsup, overdue=True) == []
    kinds = [(a["kind"], a["department"]) for a in await alerts.entries()]
    assert kinds == [("case_overdue", "tax"), ("case_due", "tax")]
    async with client_session() as other:
        await logged_in(other, server.url, "marketsup")
        found = (await (await other.get(f"{server.url}/api/alerts")).json())["alerts"]
        assert [a for a in found if a["kind"].startswith("case")] == []
    async with client_session() as tax:
        await logged_in(tax, server.url, "taxsup")
        found = (await (await tax.get(f"{server.url}/api/alerts")).json())["alerts"]
        assert [a["kind"] for a in found] == ["case_overdue", "case_due"]
