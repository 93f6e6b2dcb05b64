"""Personal data (PIPL) over real sockets to the real app and a real Redis: a call-back request
needs consent, its number is masked everywhere but on its department's desks, every desk read is
audited, old requests are deleted, and a recording's timeline carries the applicant's consent."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import socketio

from recordings.archive import Archive
from recordings.audit import Audit
from rooms.close_reason import CloseReason
from server.config import Config, ConfigError
from server.keys import AUDIT, CONFIG, ROOMS
from signaling.accounts import AccountPolicy, Accounts
from signaling.cases import Cases
from signaling.client import SignalingClient, login_cookie
from signaling.config import SignalingConfig
from signaling.fanout import Fanout
from signaling.privacy import CONSENT_NOTICE_VERSION, mask_phone
from signaling.snapshots import Snapshots
from signaling.store import Store
from signaling.tickets import Tickets
from tests.support.audit import AUDIT_KEY
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer, start_server

PHONE = "138 1234 5678"
MASKED = "138****5678"
DAY = 86400.0


async def _staff(server: LiveServer, username: str) -> SignalingClient:
    client = await SignalingClient.connect(server.url, "/staff",
                                           await login_cookie(server.url, username, "demo12345"))
    await client.next("staff:state")
    return client


def _request(**changes: Any) -> dict[str, Any]:
    return {"department": "estate", "name": "张三", "phone": PHONE, "note": "过户",
            "consent": True, **changes}


# the masking rule ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("phone", "masked"), [
    ("13812345678", "138****5678"),
    ("138 1234-5678", "138****5678"),
    ("+86 138 1234 5678", "861******5678"),
    ("010 6512 3456", "010****3456"),
    ("65123456", "******56"),
    ("12345", "***45"),
])
def test_a_number_keeps_its_first_3_and_last_4_digits_or_a_short_one_its_last_2(
        phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_the_keep_days_are_checked_at_start() -> None:
    assert SignalingConfig(callback_keep_days=1).callback_keep_days == 1
    for bad in (0, 3651):
        with pytest.raises(ConfigError, match="callback_keep_days"):
            Config(callback_keep_days=bad)


# the kiosk ----------------------------------------------------------------------------------------
async def test_a_callback_request_without_consent_is_refused_and_stores_nothing(
        server: LiveServer, store: Store) -> None:
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    try:
        for payload in (_request(consent=False), {k: v for k, v in _request().items()
                                                  if k != "consent"}):
            refused = await kiosk.call("callback:request", payload)
            assert refused["error"]["code"] == "consent_required"
            assert refused["error"]["message"] == "请先勾选同意：您的电话号码仅用于本次回电。"
        assert (await kiosk.call("callback:request", _request(consent="yes")))["error"][
            "code"] == "invalid_payload"
        assert await store.callbacks(("estate",)) == []
    finally:
        await kiosk.close()


async def test_the_number_is_masked_for_the_kiosk_the_logs_and_the_queue_log_csv(
        server: LiveServer, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    try:
        answer = await kiosk.call("callback:request", _request())
    finally:
        await kiosk.close()
    assert answer["ok"] is True and answer["phone"] == MASKED
    # Stored in full (for the desks), with the notice consented to.
    [entry] = await store.callbacks(("estate",))
    assert (entry["phone"], entry["consent_version"]) == (PHONE, CONSENT_NOTICE_VERSION)

    log = [e for e in await store.log_entries(0, 2e10) if e["event"] == "CALLBACK"]
    assert [(e["department"], e["detail"]) for e in log] == [
        ("estate", f"{answer['callback_id']} {MASKED}")]
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        # The server's local date (Asia/Shanghai), not this machine's: they differ after 16:00 UTC.
        today = server.app[CONFIG].signaling.local_time(time.time()).date().isoformat()
        async with admin.get(f"{server.url}/api/admin/queue-log.csv",
                             params={"from": today}) as response:
            assert response.status == 200
            csv = (await response.read()).decode("utf-8-sig")
    assert MASKED in csv
    assert PHONE not in csv and "13812345678" not in csv
    assert MASKED in caplog.text
    assert PHONE not in caplog.text and "13812345678" not in caplog.text


# the desks ----------------------------------------------------------------------------------------
async def test_desks_hear_of_a_request_without_its_data_and_every_list_read_is_audited(
        server: LiveServer) -> None:
    estate = await _staff(server, "estate01")
    other = await _staff(server, "tax01")
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    try:
        callback_id = (await kiosk.call("callback:request", _request()))["callback_id"]
        new = await estate.next("callback:new")
        assert set(new) == {"callback_id", "department", "created_at"}
        assert (new["callback_id"], new["department"]) == (callback_id, "estate")

        listed = (await estate.call("callback:list", {}))["callbacks"]
        assert [(c["callback_id"], c["name"], c["phone"]) for c in listed] == [
            (callback_id, "张三", PHONE)]
        audit: Audit = server.app[AUDIT]
        reads = [e for e in await audit.entries(0, 2e10) if e["action"] == "callback_read"]
        assert [(e["who"], e["department"], e["detail"], e["remote"]) for e in reads] == [
            ("estate01", "estate", f"1 request(s): {callback_id}", "127.0.0.1")]

        # Another department's staff neither see it nor can mark it done; nothing read by them
        # is audited, and the request stays.
        assert (await other.call("callback:list", {}))["callbacks"] == []
        refused = await other.call("callback:done", {"callback_id": callback_id})
        assert refused["error"]["code"] == "not_found"
        reads = [e for e in await audit.entries(0, 2e10) if e["action"] == "callback_read"]
        assert [e["who"] for e in reads] == ["estate01"]
        assert [c["callback_id"] for c in (await estate.call("callback:list", {}))["callbacks"]
                ] == [callback_id]
        assert (await estate.call("callback:done", {"callback_id": callback_id}))["ok"]
    finally:
        for client in (estate, other, kiosk):
            await client.close()


# deletion -----------------------------------------------------------------------------------------
async def test_requests_older_than_the_keep_days_are_deleted_and_the_count_logged(
        store: Store, tmp_path: Path) -> None:
    now = [1_900_000_000.0]
    archive = Archive(store.redis, tmp_path, Audit(store.redis, AUDIT_KEY))
    fanout = Fanout(socketio.AsyncServer(), store, Snapshots(store),
                    Accounts(store.redis, AccountPolicy()))
    config = SignalingConfig(callback_keep_days=30)
    cases = Cases(store.redis, config, config.calendar(), archive.audit)
    tickets = Tickets(config, store, fanout, archive, archive.audit, cases, "n1",
                      now=lambda: now[0])
    request = {"name": "张三", "phone": PHONE, "note": "", "consent_version": "v"}
    first = await tickets.request_callback("estate", request)
    now[0] += 20 * DAY
    second = await tickets.request_callback("estate", request)
    done = await tickets.request_callback("tax", request)
    assert await store.remove_callback(("tax",), done["callback_id"], "tax01")

    now[0] += 10 * DAY - 1                       # the first is exactly 30 days old less 1 s
    assert await tickets.purge_callbacks() == 0
    now[0] += 2
    assert await tickets.purge_callbacks() == 1
    assert [c["callback_id"] for c in await store.callbacks(("estate", "tax"))] == [
        second["callback_id"]]
    assert await tickets.purge_callbacks() == 0  # nothing twice
    now[0] += 20 * DAY
    assert await tickets.purge_callbacks() == 1
    assert await store.callbacks(("estate",)) == []

    purges = [e for e in await store.log_entries(0, 2e10) if e["event"] == "CALLBACK_PURGE"]
    assert [(e["department"], e["detail"]) for e in purges] == [
        ("estate", "1 older than 30 days"), ("estate", "1 older than 30 days")]
    assert first["callback_id"] not in json.dumps(purges)


async def test_the_server_deletes_old_requests_at_start_with_its_keep_days(
        config: Config, store: Store) -> None:
    old = await store.add_callback("estate", {"name": "张三", "phone": PHONE, "note": "",
                                              "created_at": time.time() - 2 * DAY})
    fresh = await store.add_callback("estate", {"name": "李四", "phone": PHONE, "note": "",
                                                "created_at": time.time() - 0.5 * DAY})
    live = await start_server(replace(config, callback_keep_days=1))
    try:
        assert [c["callback_id"] for c in await store.callbacks(("estate",))] == [
            fresh["callback_id"]]
        assert old["callback_id"] != fresh["callback_id"]
        purges = [e for e in await store.log_entries(0, 2e10) if e["event"] == "CALLBACK_PURGE"]
        assert [e["detail"] for e in purges] == ["1 older than 1 days"]
        # The kiosk page says how long a request is kept, and which notice it agrees to.
        async with client_session() as session, session.get(f"{live.url}/") as response:
            page = await response.text()
        assert '"callback_keep_days": 1' in page
        assert f'"consent_notice_version": "{CONSENT_NOTICE_VERSION}"' in page
    finally:
        await live.runner.cleanup()


# the recording consent ----------------------------------------------------------------------------
async def test_a_calls_timeline_records_the_consent_the_ticket_carries(
        server: LiveServer, store: Store, config: Config) -> None:
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    staff = await _staff(server, "tax01")
    try:
        before = time.time()
        ticket = (await kiosk.call("ticket:create", {"department": "tax", "consent": True})
                  )["ticket"]
        stored = await store.ticket(ticket["ticket_id"])
        assert stored is not None and stored.consent_version == CONSENT_NOTICE_VERSION
        assert stored.consent_at is not None and before <= stored.consent_at <= time.time()

        await staff.call("presence:set", {"state": "available"})
        await staff.next("call:incoming", ticket_id=ticket["ticket_id"])
        room_id = (await staff.call("call:accept", {"ticket_id": ticket["ticket_id"]})
                   )["room"]["room_id"]
        room = server.app[ROOMS].get(room_id)
        assert room is not None
        await room.close(CloseReason.HANGUP)
    finally:
        await kiosk.close()
        await staff.close()

    path = config.recordings_dir / room_id / "timeline.json"
    for _ in range(100):  # the room's closing writes it
        if path.exists() and json.loads(path.read_text())["ended_at"] is not None:
            break
        await asyncio.sleep(0.1)
    events = json.loads(path.read_text())["events"]
    assert [e["type"] for e in events][:2] == ["open", "consent"]
    consent = events[1]
    assert (consent["version"], consent["at"]) == (CONSENT_NOTICE_VERSION, stored.consent_at)
