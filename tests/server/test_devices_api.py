"""The admin's registered-kiosk API and the enrolment URL: an admin enrols a device and gets its
token once (only its hash is stored), lists and revokes devices; nobody else may; bad input and
unknown devices are refused with their codes; enrolment and revocation are audited with the
device's state. Opening the enrolment URL keeps the token as an HttpOnly cookie and leaves the
URL; a revoked token sets nothing and its cookie is dropped."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from recordings.audit import AUDIT
from server.http.devices import HideDeviceTokens
from signaling import keys
from signaling.devices import DEVICE_COOKIE
from tests.support.http import client_session, logged_in
from tests.support.kiosks import DEVICES_URL, HALL, enrol
from tests.support.server import LiveServer
from tests.support.streams import stream_entries


async def _call(http: aiohttp.ClientSession, method: str, url: str,
                body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    response = await http.request(method, url, json={} if body is None else body)
    return response.status, await response.json()


async def _audit(redis_client: aioredis.Redis, action: str) -> list[dict[str, Any]]:
    entries = [e for e in await stream_entries(redis_client, AUDIT) if e["action"] == action]
    return [{**e, "before": json.loads(e["before"] or "null"),
             "after": json.loads(e["after"] or "null")} for e in entries]


def _boot(page: str) -> dict[str, Any]:
    """A page's boot data (the JSON the page module reads)."""
    data: dict[str, Any] = json.loads(page.split('id="yz-boot">', 1)[1].split("</script>", 1)[0])
    return data


async def _everything_in(redis_client: aioredis.Redis) -> str:
    """Every key and value of the service's Redis, as one text (to look for a secret)."""
    client: Any = redis_client  # decode_responses: every reply is text
    parts: list[str] = []
    async for key in client.scan_iter("*"):
        kind = await client.type(key)
        parts.append(key)
        if kind == "string":
            parts.append(str(await client.get(key)))
        elif kind == "hash":
            parts += [f"{k}={v}" for k, v in (await client.hgetall(key)).items()]
        elif kind == "zset":
            parts += [str(m) for m in await client.zrange(key, 0, -1)]
        elif kind == "stream":
            parts += [json.dumps(fields, ensure_ascii=False) for _, fields in
                      await client.xrange(key)]
    return "\n".join(parts)


async def test_an_admin_enrols_lists_and_revokes_a_kiosk_and_each_change_is_audited(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    answer = await enrol(server, "1号机", HALL, "东侧入口")
    device, token = answer["device"], answer["token"]
    assert (device["name"], device["hall"], device["location"], device["state"]) == \
        ("1号机", HALL, "东侧入口", "active")
    assert device["created_by"] == "admin" and device["last_seen"] is None
    assert answer["url"] == f"{server.url}/?device={token}"
    assert answer["qr_svg"].startswith("<svg") and "</svg>" in answer["qr_svg"]
    assert len(token) >= 40
    # Only the token's hash is kept, never the token itself.
    stored = await _everything_in(redis_client)
    assert token not in stored and keys.hash_token(token) in stored
    assert not {"token", "token_sha"} & set(device)

    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        status, listing = await _call(admin, "GET", server.url + DEVICES_URL)
        assert status == 200 and [d["device_id"] for d in listing["devices"]] == \
            [device["device_id"]]
        assert "token" not in json.dumps(listing)
        url = f"{server.url}{DEVICES_URL}/{device['device_id']}/revoke"
        status, body = await _call(admin, "POST", url)
        assert status == 200 and body["device"]["state"] == "revoked"
        assert body["device"]["revoked_by"] == "admin" and body["device"]["revoked_at"]
        # Revoked once: a second revocation is refused and audited nowhere.
        status, body = await _call(admin, "POST", url)
        assert (status, body["error"]["code"]) == (409, "bad_state")
        status, listing = await _call(admin, "GET", server.url + DEVICES_URL)
        assert listing["devices"][0]["state"] == "revoked"
    # The token stops working: its key is gone.
    assert await redis_client.exists(keys.DEVICE_TOKEN(keys.hash_token(token))) == 0

    [created] = await _audit(redis_client, "device_create")
    assert (created["who"], created["target"], created["before"], created["remote"]) == \
        ("admin", device["device_id"], None, "127.0.0.1")
    assert created["after"] == {"name": "1号机", "hall": HALL, "location": "东侧入口",
                                "state": "active"}
    [revoked] = await _audit(redis_client, "device_revoke")
    assert (revoked["who"], revoked["target"]) == ("admin", device["device_id"])
    assert revoked["before"]["state"] == "active" and revoked["after"]["state"] == "revoked"
    assert token not in json.dumps(await stream_entries(redis_client, AUDIT))


@pytest.mark.parametrize(("body", "reason"), [
    ({"hall": HALL}, "name"),
    ({"name": "  ", "hall": HALL}, "name"),
    ({"name": "1号机"}, "hall"),
    ({"name": "1号机", "hall": 7}, "hall"),
    ({"name": "x" * 65, "hall": HALL}, "name"),
    ({"name": "1号机", "hall": HALL, "location": "y" * 129}, "location"),
    ({"name": "1号\u202e机", "hall": HALL}, "name"),
])
async def test_bad_device_input_is_refused_and_enrols_nothing(
        server: LiveServer, redis_client: aioredis.Redis, body: dict[str, Any],
        reason: str) -> None:
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        status, answer = await _call(admin, "POST", server.url + DEVICES_URL, body)
    assert (status, answer["error"]["code"]) == (400, "invalid_payload")
    assert answer["error"]["message"].startswith("设备信息有误：")
    assert reason in answer["error"]["message"]
    assert await redis_client.zcard(keys.DEVICES) == 0
    assert await _audit(redis_client, "device_create") == []


async def test_only_admins_administer_kiosks(server: LiveServer,
                                             redis_client: aioredis.Redis) -> None:
    device_id = (await enrol(server))["device"]["device_id"]
    calls = [("GET", DEVICES_URL), ("POST", DEVICES_URL),
             ("POST", f"{DEVICES_URL}/{device_id}/revoke")]
    body = {"name": "2号机", "hall": HALL}
    async with client_session() as anonymous:
        for method, path in calls:
            status, answer = await _call(anonymous, method, server.url + path, body)
            assert (status, answer["error"]["code"]) == (401, "unauthenticated"), path
    for username in ("tax01", "supervisor", "auditor", "guide01"):
        async with client_session() as http:
            await logged_in(http, server.url, username)
            for method, path in calls:
                status, answer = await _call(http, method, server.url + path, body)
                assert (status, answer["error"]["code"]) == (403, "forbidden"), \
                    (username, path)
    assert await redis_client.zcard(keys.DEVICES) == 1
    assert await redis_client.hget(keys.DEVICE(device_id), "revoked_at") is None


async def test_unknown_devices_are_not_found(server: LiveServer) -> None:
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        for device_id in ("nosuchdevice", "bad%20id"):
            status, answer = await _call(
                admin, "POST", f"{server.url}{DEVICES_URL}/{device_id}/revoke")
            assert (status, answer["error"]["code"]) == (404, "not_found"), device_id
            assert answer["error"]["message"] == "没有这台设备。"


async def test_the_enrolment_url_keeps_the_token_as_a_cookie_and_leaves_the_url(
        server: LiveServer) -> None:
    answer = await enrol(server)
    token = answer["token"]
    async with client_session() as screen:
        response = await screen.get(answer["url"], allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/"
        cookie = response.cookies[DEVICE_COOKIE]
        assert cookie.value == token
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert not cookie["secure"]  # plain HTTP here; Secure over HTTPS
        assert int(cookie["max-age"]) > 300 * 86400
        # The kiosk page then knows it is a registered kiosk.
        response = await screen.get(server.url + "/")
        assert _boot(await response.text())["device"] == {"name": "1号机", "hall": HALL}


async def test_an_unknown_or_revoked_token_registers_nothing(server: LiveServer) -> None:
    answer = await enrol(server)
    async with client_session() as screen:
        response = await screen.get(f"{server.url}/?device=not-a-token", allow_redirects=False)
        assert response.status == 303 and DEVICE_COOKIE not in response.cookies
        await screen.get(answer["url"], allow_redirects=False)
        async with client_session() as admin:
            await logged_in(admin, server.url, "admin")
            status, _ = await _call(admin, "POST", f"{server.url}{DEVICES_URL}/"
                                                   f"{answer['device']['device_id']}/revoke")
            assert status == 200
        # The screen's cookie of the revoked device is dropped at the next page load...
        response = await screen.get(server.url + "/")
        assert response.status == 200 and _boot(await response.text())["device"] is None
        assert response.cookies[DEVICE_COOKIE].value == ""
        # ... and its enrolment URL no longer enrols anyone.
    async with client_session() as other:
        response = await other.get(answer["url"], allow_redirects=False)
        assert response.status == 303 and DEVICE_COOKIE not in response.cookies


def test_the_access_log_does_not_keep_device_tokens() -> None:
    record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1,
                               '127.0.0.1 "GET /?device=SECRET-token_1&lang=en HTTP/1.1" 303',
                               None, None)
    assert HideDeviceTokens().filter(record)
    assert record.getMessage() == '127.0.0.1 "GET /?device=…&lang=en HTTP/1.1" 303'
