"""Sign-in over the API, as an attacker and as a new colleague would try it: lockout and the
address throttle, unknown usernames, the forced password change and its rules, the second factor
(codes from pyotp, replays refused, recovery codes once), idle and absolute session expiry, and
sessions whose end closes the live desk socket."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import aiohttp
import pyotp
import redis.asyncio as aioredis

from recordings.audit import AUDIT
from server.config import Config
from server.keys import ACCOUNTS, SESSIONS
from signaling import keys
from tests.support.desks import closed_by_server, desk_socket
from tests.support.http import client_session, login
from tests.support.room_sockets import Sockets, open_room, token
from tests.support.server import LiveServer, start_server
from tests.support.streams import stream_entries

STRONG = "Window-Seven-2026"


async def _only_session(redis_client: aioredis.Redis, username: str) -> str:
    [sha] = await redis_client.smembers(keys.USER_SESSIONS(username))  # type: ignore[misc]
    return str(sha)


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    return await response.json()  # type: ignore[no-any-return]


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]
                ) -> tuple[int, dict[str, Any]]:
    response = await session.post(url, json=body)
    return response.status, await _json(response)


async def test_five_failures_lock_an_account_for_fifteen_minutes_and_are_audited(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    async with client_session() as http:
        for attempt in range(4):
            response = await login(http, server.url, "tax01", f"wrong{attempt}")
            assert response.status == 401
            assert (await _json(response))["error"]["code"] == "bad_credentials"
        response = await login(http, server.url, "tax01", "wrong4")
        assert response.status == 429
        error = (await _json(response))["error"]
        assert error["code"] == "locked"
        assert 890 <= error["retry_after"] <= 900
        assert "15 分钟" in error["message"]
        # The right password changes nothing while locked.
        response = await login(http, server.url, "tax01")
        assert response.status == 429
        await server.app[ACCOUNTS].unlock("tax01")
        assert (await login(http, server.url, "tax01")).status == 200
    actions = [(e["action"], e["target"], e["detail"])
               for e in await stream_entries(redis_client, AUDIT)]
    assert actions == [*[("login_failed", "tax01", "bad_credentials")] * 4,
                       ("locked", "tax01", "locked"), ("login_failed", "tax01", "locked"),
                       ("login", "tax01", "")]


async def test_unknown_usernames_answer_like_wrong_passwords_and_one_address_is_throttled(
        config: Config, redis_client: aioredis.Redis) -> None:
    live = await start_server(replace(config, address_failures=3))
    try:
        async with client_session() as http:
            for username in ("nobody", "tax01", "admin"):
                response = await login(http, live.url, username, "not-the-password")
                assert response.status == 401
                assert (await _json(response))["error"]["code"] == "bad_credentials"
            # A fourth try from the same address, whichever account, waits.
            response = await login(http, live.url, "market01")
            assert response.status == 429
            error = (await _json(response))["error"]
            assert error["code"] == "throttled" and error["retry_after"] > 0
        # Nothing was locked: the throttle is the address's, not the accounts'.
        assert not await redis_client.exists(keys.LOCKED("tax01"))
    finally:
        await live.runner.cleanup()


async def test_a_new_account_must_change_its_password_and_the_rules_hold(
        server: LiveServer) -> None:
    _, temporary = await server.app[ACCOUNTS].create(
        "wangfang", display_name="王芳", role="staff", departments=("tax",))
    async with client_session() as http:
        status, body = await _post(http, f"{server.url}/api/login",
                                   {"username": "wangfang", "password": temporary})
        assert status == 200 and body["next"] == "password"
        # Nothing else until the password is changed.
        response = await http.get(f"{server.url}/api/wallboard")
        assert response.status == 403
        assert (await _json(response))["error"]["code"] == "password_change_required"
        url = f"{server.url}/api/password"
        for new, code in (("Short-1", "weak_password"), ("alllowercase-letters", "weak_password"),
                          ("Wangfang-2026!", "weak_password"), (temporary, "weak_password")):
            status, body = await _post(http, url, {"current": temporary, "new": new})
            assert (status, body["error"]["code"]) == (400, code), new
        status, body = await _post(http, url, {"current": "wrong", "new": STRONG})
        assert (status, body["error"]["code"]) == (400, "bad_credentials")
        status, body = await _post(http, url, {"current": temporary, "new": STRONG})
        assert status == 200 and body["next"] is None
        # None of the last five: the first one again is refused.
        status, _ = await _post(http, url, {"current": STRONG, "new": "Second-Pass-2026"})
        assert status == 200
        status, body = await _post(http, url, {"current": "Second-Pass-2026", "new": STRONG})
        assert (status, body["error"]["code"]) == (400, "weak_password")
        assert "5" in body["error"]["message"]
    user = await server.app[ACCOUNTS].user("wangfang")
    assert user is not None and not user.must_change


async def test_an_expired_password_must_be_changed(server: LiveServer,
                                                   redis_client: aioredis.Redis) -> None:
    _, temporary = await server.app[ACCOUNTS].create(
        "zhaolei", display_name="赵磊", role="guide", departments=())
    await redis_client.hset(keys.USER("zhaolei"), mapping={
        "must_change": "", "password_changed_at": time.time() - 91 * 86400})
    async with client_session() as http:
        status, body = await _post(http, f"{server.url}/api/login",
                                   {"username": "zhaolei", "password": temporary})
        assert status == 200 and body["next"] == "password"


async def _enrolled_supervisor(server: LiveServer, http: aiohttp.ClientSession) -> pyotp.TOTP:
    _, temporary = await server.app[ACCOUNTS].create(
        "chenjing", display_name="陈静", role="supervisor", departments=("tax",))
    status, body = await _post(http, f"{server.url}/api/login",
                               {"username": "chenjing", "password": temporary})
    assert body["next"] == "password"
    status, body = await _post(http, f"{server.url}/api/password",
                               {"current": temporary, "new": STRONG})
    assert (status, body["next"]) == (200, "enroll")
    response = await http.get(f"{server.url}/api/wallboard")
    assert (await _json(response))["error"]["code"] == "totp_enrollment_required"
    status, setup = await _post(http, f"{server.url}/api/totp/setup", {})
    assert status == 200 and setup["qr_svg"].startswith("<svg")
    assert setup["secret"] not in str(await server.app[ACCOUNTS].redis.hgetall(
        keys.USER("chenjing")))
    assert setup["uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(setup["secret"])
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    status, body = await _post(http, f"{server.url}/api/totp/enroll", {"code": wrong})
    assert (status, body["error"]["code"]) == (401, "bad_totp")
    status, body = await _post(http, f"{server.url}/api/totp/enroll", {"code": totp.now()})
    assert status == 200 and len(body["recovery_codes"]) == 10
    # Stored sealed with the server's key, never as the secret itself.
    stored = await server.app[ACCOUNTS].redis.hget(keys.USER("chenjing"), "totp_secret")
    assert stored.startswith("v1:") and setup["secret"] not in stored
    assert (await http.get(f"{server.url}/api/wallboard")).status == 200
    http.cookie_jar.clear()
    return totp


async def test_supervisors_enrol_a_second_factor_and_codes_work_once(server: LiveServer) -> None:
    async with client_session() as http:
        totp = await _enrolled_supervisor(server, http)
        url = f"{server.url}/api/login"
        status, body = await _post(http, url, {"username": "chenjing", "password": STRONG})
        assert (status, body["error"]["code"]) == (401, "totp_required")
        # The code the enrolment used is spent.
        status, body = await _post(http, url, {"username": "chenjing", "password": STRONG,
                                               "code": totp.now()})
        assert (status, body["error"]["code"]) == (401, "bad_totp")
        code = totp.at(time.time() + 30)
        status, body = await _post(http, url, {"username": "chenjing", "password": STRONG,
                                               "code": code})
        assert status == 200 and body["next"] is None
        status, body = await _post(http, url, {"username": "chenjing", "password": STRONG,
                                               "code": code})
        assert (status, body["error"]["code"]) == (401, "bad_totp")


async def test_a_recovery_code_signs_in_once(server: LiveServer) -> None:
    async with client_session() as http:
        _, temporary = await server.app[ACCOUNTS].create(
            "sunli", display_name="孙丽", role="auditor", departments=())
        await _post(http, f"{server.url}/api/login", {"username": "sunli", "password": temporary})
        await _post(http, f"{server.url}/api/password", {"current": temporary, "new": STRONG})
        _, setup = await _post(http, f"{server.url}/api/totp/setup", {})
        _, body = await _post(http, f"{server.url}/api/totp/enroll",
                              {"code": pyotp.TOTP(setup["secret"]).now()})
        recovery = body["recovery_codes"][3]
        http.cookie_jar.clear()
        url = f"{server.url}/api/login"
        status, _ = await _post(http, url, {"username": "sunli", "password": STRONG,
                                            "code": recovery})
        assert status == 200
        status, body = await _post(http, url, {"username": "sunli", "password": STRONG,
                                               "code": recovery})
        assert (status, body["error"]["code"]) == (401, "bad_totp")


async def test_sessions_expire_when_idle_and_after_their_lifetime(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    async with client_session() as http:
        assert (await login(http, server.url, "supervisor")).status == 200
        assert (await http.get(f"{server.url}/api/wallboard")).status == 200
        sha = await _only_session(redis_client, "supervisor")
        # The idle timeout is the key's expiry, moved on by activity.
        ttl = await redis_client.ttl(keys.SESSION(sha))
        assert 1700 < ttl <= 1800
        status, body = await _post(http, f"{server.url}/api/session/touch", {})
        assert status == 200 and 1790 <= body["idle_left"] <= 1800
        # Past the absolute lifetime (12 h), activity or not.
        await redis_client.hset(keys.SESSION(sha), "created_at", time.time() - 12 * 3600 - 1)
        response = await http.get(f"{server.url}/api/wallboard")
        assert response.status == 401
        assert (await _json(response))["error"]["code"] == "session_expired"
        assert not await redis_client.exists(keys.SESSION(sha))
        # Idle: the key ran out.
        assert (await login(http, server.url, "supervisor")).status == 200
        sha = await _only_session(redis_client, "supervisor")
        await redis_client.pexpire(keys.SESSION(sha), 1)
        await asyncio.sleep(0.05)
        response = await http.get(f"{server.url}/api/me")
        assert (await _json(response))["error"]["code"] == "session_expired"


async def test_signing_out_closes_the_desk_socket_of_that_session(server: LiveServer) -> None:
    desk, cookie = await desk_socket(server)
    other, _ = await desk_socket(server)  # the same person in another browser
    try:
        async with aiohttp.ClientSession() as http:
            response = await http.post(f"{server.url}/api/logout", headers={"Cookie": cookie})
            assert response.status == 200
        assert (await desk.next("session:ended"))["reason"] == "logout"
        await closed_by_server(desk)
        # The other session goes on.
        answer = await other.call("presence:set", {"state": "available"})
        assert answer["ok"] is True
    finally:
        await desk.close()
        await other.close()


async def test_a_disabled_account_loses_its_desk_and_cannot_sign_in(server: LiveServer) -> None:
    desk, _ = await desk_socket(server)
    try:
        accounts, sessions = server.app[ACCOUNTS], server.app[SESSIONS]
        await accounts.set_disabled("tax01", True)
        await sessions.end_user("tax01", "disabled")
        assert (await desk.next("session:ended"))["reason"] == "disabled"
        await closed_by_server(desk)
        async with client_session() as http:
            response = await login(http, server.url, "tax01")
            assert response.status == 401
            assert (await _json(response))["error"]["code"] == "bad_credentials"
    finally:
        await desk.close()


async def test_a_desk_event_after_the_session_ended_is_refused(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    desk, _ = await desk_socket(server)
    try:
        sha = await _only_session(redis_client, "tax01")
        await redis_client.delete(keys.SESSION(sha))  # ran out, no announcement
        answer = await desk.call("presence:set", {"state": "available"})
        assert answer["ok"] is False and answer["error"]["code"] == "session_expired"
    finally:
        await desk.close()


async def test_a_disabled_account_is_taken_out_of_its_room_and_its_token_refused(
        server: LiveServer) -> None:
    """Signaling-only participants (tests/signaling/test_room_socket_errors.py's way): the
    staff member of a room is disabled; the applicant's own place is untouched."""
    room = open_room(server, "rcut")
    sockets = Sockets(server)
    try:
        applicant, _ = await sockets.joined("rcut", "a-t-rcut", role="applicant")
        staff, _ = await sockets.joined("rcut", "s-tax01")
        assert {p["participant_id"] for p in room.participants_info()} == {"a-t-rcut", "s-tax01"}
        await server.app[ACCOUNTS].set_disabled("tax01", True)
        await server.app[SESSIONS].end_user("tax01", "disabled")
        assert (await staff.next("room:ended"))["reason"] == "disabled"
        await closed_by_server(staff)
        assert {p["participant_id"] for p in room.participants_info()} == {"a-t-rcut"}
        assert applicant.sio.connected
        again = await sockets.socket()
        answer = await again.call("room:join", {
            "room_id": "rcut", "token": await token(server, "rcut", "s-tax01")})
        assert answer["ok"] is False and answer["error"]["code"] == "forbidden"
    finally:
        for client in sockets.clients:
            await client.close()


async def test_behind_a_trusted_proxy_the_client_address_is_audited_and_the_cookie_secure(
        config: Config, redis_client: aioredis.Redis) -> None:
    live = await start_server(replace(config, trusted_proxies=("127.0.0.1",)))
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    try:
        async with aiohttp.ClientSession() as http:
            response = await http.post(f"{live.url}/api/login", headers=forwarded,
                                       json={"username": "tax01", "password": "demo12345"})
            assert response.status == 200
            cookie = response.headers["Set-Cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            response = await http.post(f"{live.url}/api/login", headers=forwarded,
                                       json={"username": "tax01", "password": "wrong"})
            assert response.status == 401
    finally:
        await live.runner.cleanup()
    entries = await stream_entries(redis_client, AUDIT)
    assert [(e["action"], e["remote"]) for e in entries] == [
        ("login", "203.0.113.9"), ("login_failed", "203.0.113.9")]
    # The throttle counts the client's address, not the proxy's.
    assert await redis_client.get(keys.ADDRESS_FAILURES("203.0.113.9")) == "1"
    assert not await redis_client.exists(keys.ADDRESS_FAILURES("127.0.0.1"))


async def test_without_trust_forwarded_headers_change_nothing(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{server.url}/api/login", json={"username": "tax01", "password": "demo12345"},
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
        assert response.status == 200
        assert "Secure" not in response.headers["Set-Cookie"]
    [entry] = await stream_entries(redis_client, AUDIT)
    assert entry["remote"] == "127.0.0.1"
