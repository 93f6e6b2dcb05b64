"""The admin's accounts API, as an administrator and as everyone else would try it: a new account's
one-time password must be changed; bad input is refused with its code; only admins may; an admin
cannot disable themselves or change their own role; disabling, a password reset and a role change
end the account's live desk socket at once; every change is audited with before and after."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiohttp
import pyotp
import pytest
import redis.asyncio as aioredis

from recordings.audit import AUDIT
from server.keys import ACCOUNTS
from signaling import keys
from signaling.accounts import AccountPolicy, password_problem
from tests.support.desks import closed_by_server, desk_socket
from tests.support.http import client_session, logged_in, login
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

ACCOUNTS_URL = "/api/admin/accounts"
NEW_STAFF = {"username": "wangfang", "display_name": "王芳", "role": "staff",
             "departments": ["tax"]}
STRONG = "Window-Seven-2026"


async def _call(http: aiohttp.ClientSession, method: str, url: str,
                body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    response = await http.request(method, url, json={} if body is None else body)
    return response.status, await response.json()


async def _admin(server: LiveServer) -> aiohttp.ClientSession:
    http = client_session()
    await logged_in(http, server.url, "admin")
    return http


async def _audit(redis_client: aioredis.Redis, action: str) -> list[dict[str, Any]]:
    entries = [e for e in await stream_entries(redis_client, AUDIT) if e["action"] == action]
    return [{**e, "before": json.loads(e["before"] or "null"),
             "after": json.loads(e["after"] or "null")} for e in entries]


async def test_a_created_account_signs_in_with_its_one_time_password_and_must_change_it(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    async with await _admin(server) as admin:
        status, body = await _call(admin, "POST", server.url + ACCOUNTS_URL, NEW_STAFF)
        assert status == 201, body
        password = body["temporary_password"]
        assert password_problem(password, "wangfang", AccountPolicy()) is None
        account = body["account"]
        assert (account["username"], account["display_name"], account["role"],
                account["departments"]) == ("wangfang", "王芳", "staff", ["tax"])
        assert account["must_change"] is True and account["disabled"] is False
        assert not {"password", "totp_secret", "recovery"} & set(account)
        status, listing = await _call(admin, "GET", server.url + ACCOUNTS_URL)
        assert status == 200
        assert {a["username"] for a in listing["accounts"]} >= {"wangfang", "admin", "tax01"}
    async with client_session() as person:
        response = await login(person, server.url, "wangfang", password)
        answer = await response.json()
        assert response.status == 200 and answer["next"] == "password"
        # Only the change is open to it, and a weak new password is refused.
        status, body = await _call(person, "POST", f"{server.url}/api/password",
                                   {"current": password, "new": "weakpassword"})
        assert (status, body["error"]["code"]) == (400, "weak_password")
        status, body = await _call(person, "POST", f"{server.url}/api/password",
                                   {"current": password, "new": STRONG})
        assert status == 200 and body["next"] is None
    [entry] = await _audit(redis_client, "account_create")
    assert (entry["who"], entry["target"], entry["before"]) == ("admin", "wangfang", None)
    assert entry["after"] == {"display_name": "王芳", "role": "staff", "departments": ["tax"],
                              "disabled": False}
    assert entry["remote"] == "127.0.0.1"


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"username": "tax01"}, 409, "exists"),  # taken
    ({"username": "Wang Fang"}, 400, "invalid_payload"),
    ({"username": "w"}, 400, "invalid_payload"),
    ({"username": 7}, 400, "invalid_payload"),
    ({"display_name": "  "}, 400, "invalid_payload"),
    ({"display_name": "王" * 33}, 400, "invalid_payload"),
    ({"role": "root"}, 400, "invalid_payload"),
    ({"role": None}, 400, "invalid_payload"),
    ({"departments": ["tax", "nowhere"]}, 400, "invalid_payload"),
    ({"departments": []}, 400, "invalid_payload"),  # staff answer at least one queue
    ({"departments": "tax"}, 400, "invalid_payload"),
    ({"role": "auditor"}, 400, "invalid_payload"),  # an auditor belongs to no department
])
async def test_bad_account_input_is_refused_with_its_code(
        server: LiveServer, redis_client: aioredis.Redis, change: dict[str, Any], status: int,
        code: str) -> None:
    async with await _admin(server) as admin:
        answer_status, body = await _call(admin, "POST", server.url + ACCOUNTS_URL,
                                          {**NEW_STAFF, **change})
        assert (answer_status, body["error"]["code"]) == (status, code), body
        assert body["error"]["message"]  # shown on the page as it is
    assert await server.app[ACCOUNTS].user("wangfang") is None
    assert not await _audit(redis_client, "account_create")


async def test_supervisors_may_have_no_department_and_backup_groups_count_as_pools(
        server: LiveServer) -> None:
    async with await _admin(server) as admin:
        status, body = await _call(admin, "POST", server.url + ACCOUNTS_URL, {
            "username": "chenjing", "display_name": "陈静", "role": "supervisor",
            "departments": []})
        assert status == 201 and body["account"]["departments"] == []
        # A backup group (AB岗) named by a department is a pool a staff member may answer.
        _, dept = await _call(admin, "GET", f"{server.url}/api/admin/departments/tax")
        status, _ = await _call(admin, "PUT", f"{server.url}/api/admin/departments/tax", {
            **dept["department"], "backups": [{"group": "tax-backup", "after": 60}]})
        assert status == 200
        _, listing = await _call(admin, "GET", server.url + ACCOUNTS_URL)
        assert listing["groups"] == ["tax-backup"]
        status, body = await _call(admin, "POST", server.url + ACCOUNTS_URL, {
            **NEW_STAFF, "departments": ["market", "tax-backup"]})
        assert status == 201 and body["account"]["departments"] == ["market", "tax-backup"]


async def test_only_admins_administer_accounts(server: LiveServer) -> None:
    calls = [("GET", ACCOUNTS_URL), ("POST", ACCOUNTS_URL),
             ("PATCH", f"{ACCOUNTS_URL}/tax01"),
             *(("POST", f"{ACCOUNTS_URL}/tax01/{action}") for action in (
                 "disable", "enable", "unlock", "reset-password", "reset-2fa"))]
    async with client_session() as anonymous:
        for method, path in calls:
            status, body = await _call(anonymous, method, server.url + path, NEW_STAFF)
            assert (status, body["error"]["code"]) == (401, "unauthenticated"), path
    for username in ("tax01", "supervisor", "auditor", "guide01"):
        async with client_session() as http:
            await logged_in(http, server.url, username)
            for method, path in calls:
                status, body = await _call(http, method, server.url + path, NEW_STAFF)
                assert (status, body["error"]["code"]) == (403, "forbidden"), (username, path)
    user = await server.app[ACCOUNTS].user("tax01")
    assert user is not None and not user.disabled


async def test_an_admin_cannot_disable_themselves_or_change_their_own_role(
        server: LiveServer) -> None:
    async with await _admin(server) as admin:
        status, body = await _call(admin, "POST", f"{server.url}{ACCOUNTS_URL}/admin/disable")
        assert (status, body["error"]["code"]) == (403, "forbidden")
        assert body["error"]["message"] == "不能停用自己的账号或更改自己的角色。"
        status, body = await _call(admin, "PATCH", f"{server.url}{ACCOUNTS_URL}/admin",
                                   {"role": "supervisor"})
        assert (status, body["error"]["code"]) == (403, "forbidden")
        # Their own name is theirs to change.
        status, body = await _call(admin, "PATCH", f"{server.url}{ACCOUNTS_URL}/admin",
                                   {"display_name": "系统管理员甲"})
        assert status == 200 and body["account"]["role"] == "admin"
    user = await server.app[ACCOUNTS].user("admin")
    assert user is not None and not user.disabled and user.role == "admin"


async def test_unknown_accounts_are_not_found(server: LiveServer) -> None:
    async with await _admin(server) as admin:
        for name in ("nobody", "Bad%20Name", "x" * 40):
            for method, path in (("PATCH", ""), ("POST", "/disable"), ("POST", "/enable"),
                                 ("POST", "/unlock"), ("POST", "/reset-password"),
                                 ("POST", "/reset-2fa")):
                status, body = await _call(admin, method,
                                           f"{server.url}{ACCOUNTS_URL}/{name}{path}",
                                           {"display_name": "x"})
                assert (status, body["error"]["code"]) == (404, "not_found"), (name, path)


async def test_disabling_an_account_closes_its_live_desk_and_refuses_its_sign_in(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    desk, _ = await desk_socket(server)
    try:
        async with await _admin(server) as admin:
            status, body = await _call(admin, "POST", f"{server.url}{ACCOUNTS_URL}/tax01/disable")
            assert status == 200 and body["account"]["disabled"] is True
            assert (await desk.next("session:ended"))["reason"] == "disabled"
            await closed_by_server(desk)
            async with client_session() as person:
                response = await login(person, server.url, "tax01")
                assert response.status == 401
                assert (await response.json())["error"]["code"] == "bad_credentials"
                # Enabled again, the same password works.
                status, body = await _call(admin, "POST",
                                           f"{server.url}{ACCOUNTS_URL}/tax01/enable")
                assert status == 200 and body["account"]["disabled"] is False
                assert (await login(person, server.url, "tax01")).status == 200
    finally:
        await desk.close()
    [disabled] = await _audit(redis_client, "account_disable")
    assert (disabled["target"], disabled["before"]["disabled"], disabled["after"]["disabled"]) \
        == ("tax01", False, True)
    [enabled] = await _audit(redis_client, "account_enable")
    assert (enabled["before"]["disabled"], enabled["after"]["disabled"]) == (True, False)


async def test_a_password_reset_ends_the_sessions_and_forces_a_change(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    desk, _ = await desk_socket(server)
    try:
        async with client_session() as person, await _admin(server) as admin:
            await logged_in(person, server.url, "tax01")
            status, body = await _call(admin, "POST",
                                       f"{server.url}{ACCOUNTS_URL}/tax01/reset-password")
            assert status == 200 and body["account"]["must_change"] is True
            password = body["temporary_password"]
            assert (await desk.next("session:ended"))["reason"] == "password_reset"
            await closed_by_server(desk)
            # The signed-in browser's session is over; the old password is gone.
            status, body = await _call(person, "GET", f"{server.url}/api/me")
            assert (status, body["error"]["code"]) == (401, "session_expired")
            assert (await login(person, server.url, "tax01")).status == 401
            response = await login(person, server.url, "tax01", password)
            assert (await response.json())["next"] == "password"
    finally:
        await desk.close()
    [entry] = await _audit(redis_client, "password_reset")
    assert (entry["who"], entry["target"]) == ("admin", "tax01")
    assert password not in json.dumps(await stream_entries(redis_client, AUDIT))


async def test_a_role_or_department_change_ends_the_sessions_a_new_name_does_not(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    desk, _ = await desk_socket(server)
    try:
        async with await _admin(server) as admin:
            url = f"{server.url}{ACCOUNTS_URL}/tax01"
            status, body = await _call(admin, "PATCH", url, {"display_name": "税务 张三"})
            assert status == 200 and body["account"]["display_name"] == "税务 张三"
            answer = await desk.call("presence:set", {"state": "available"})
            assert answer["ok"] is True
            status, body = await _call(admin, "PATCH", url, {"departments": ["tax", "market"]})
            assert status == 200 and body["account"]["departments"] == ["tax", "market"]
            assert (await desk.next("session:ended"))["reason"] == "role_changed"
            await closed_by_server(desk)
            status, body = await _call(admin, "PATCH", url, {"role": "guide"})
            assert (status, body["error"]["code"]) == (400, "invalid_payload")  # departments
            status, body = await _call(admin, "PATCH", url, {"role": "guide", "departments": []})
            assert status == 200 and body["account"]["role"] == "guide"
    finally:
        await desk.close()
    updates = await _audit(redis_client, "account_update")
    assert [(e["before"], e["after"]) for e in updates] == [
        ({"display_name": "税务坐席01", "role": "staff", "departments": ["tax"],
          "disabled": False},
         {"display_name": "税务 张三", "role": "staff", "departments": ["tax"],
          "disabled": False}),
        ({"display_name": "税务 张三", "role": "staff", "departments": ["tax"],
          "disabled": False},
         {"display_name": "税务 张三", "role": "staff", "departments": ["tax", "market"],
          "disabled": False}),
        ({"display_name": "税务 张三", "role": "staff", "departments": ["tax", "market"],
          "disabled": False},
         {"display_name": "税务 张三", "role": "guide", "departments": [], "disabled": False}),
    ]
    # No longer staff: out of the queues' member sets too.
    assert not await redis_client.sismember(keys.STAFF_USERS, "tax01")  # type: ignore[misc]


async def test_an_admin_unlocks_a_locked_account(server: LiveServer,
                                                 redis_client: aioredis.Redis) -> None:
    async with client_session() as person, await _admin(server) as admin:
        for attempt in range(5):
            await login(person, server.url, "market01", f"wrong-{attempt}")
        assert (await login(person, server.url, "market01")).status == 429
        _, listing = await _call(admin, "GET", server.url + ACCOUNTS_URL)
        [row] = [a for a in listing["accounts"] if a["username"] == "market01"]
        assert 800 < row["locked_for"] <= 900
        status, body = await _call(admin, "POST", f"{server.url}{ACCOUNTS_URL}/market01/unlock")
        assert status == 200 and body["account"]["locked_for"] == 0
        assert (await login(person, server.url, "market01")).status == 200
    [entry] = await _audit(redis_client, "account_unlock")
    assert entry["target"] == "market01" and entry["detail"].startswith("locked for")


async def test_resetting_the_second_factor_makes_the_person_enrol_again(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    accounts = server.app[ACCOUNTS]
    _, password = await accounts.create("chenjing", display_name="陈静", role="supervisor",
                                        departments=())
    secret = pyotp.random_base32()
    await accounts.enroll_totp("chenjing", secret, pyotp.TOTP(secret).now())
    async with await _admin(server) as admin:
        _, listing = await _call(admin, "GET", server.url + ACCOUNTS_URL)
        assert [a["totp_enrolled"] for a in listing["accounts"]
                if a["username"] == "chenjing"] == [True]
        status, body = await _call(admin, "POST",
                                   f"{server.url}{ACCOUNTS_URL}/chenjing/reset-2fa")
        assert status == 200 and body["account"]["totp_enrolled"] is False
    async with client_session() as person:
        # The password alone signs in again (no code asked), and enrolment comes after the
        # forced change.
        response = await login(person, server.url, "chenjing", password)
        assert response.status == 200 and (await response.json())["next"] == "password"
        status, body = await _call(person, "POST", f"{server.url}/api/password",
                                   {"current": password, "new": STRONG})
        assert body["next"] == "enroll"
    [entry] = await _audit(redis_client, "totp_reset")
    assert (entry["who"], entry["target"], entry["detail"]) == ("admin", "chenjing", "enrolled")


async def test_department_saves_and_queue_log_exports_are_audited(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    async with await _admin(server) as admin:
        _, body = await _call(admin, "GET", f"{server.url}/api/admin/departments/tax")
        dept = body["department"]
        status, _ = await _call(admin, "PUT", f"{server.url}/api/admin/departments/tax",
                                {**dept, "ring_timeout": 25})
        assert status == 200
        response = await admin.get(
            f"{server.url}/api/admin/queue-log.csv?from=2026-01-01&to=2026-01-31")
        assert response.status == 200
        # A refused export reads nothing, and is no export.
        response = await admin.get(f"{server.url}/api/admin/queue-log.csv?from=yesterday")
        assert response.status == 400
    [save] = await _audit(redis_client, "department_save")
    assert (save["who"], save["target"], save["department"]) == ("admin", "tax", "tax")
    assert save["before"]["ring_timeout"] == dept["ring_timeout"] != 25
    assert save["after"]["ring_timeout"] == 25
    [export] = await _audit(redis_client, "queue_log_export")
    assert (export["who"], export["detail"]) == ("admin", "2026-01-01 to 2026-01-31")
    assert dt.date.fromisoformat(export["detail"].split()[0]) == dt.date(2026, 1, 1)
