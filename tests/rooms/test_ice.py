"""Time-limited TURN credentials (coturn's use-auth-secret): the settings, the credential function
against values computed here independently, and the credentials each participant gets on
room:join."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from rooms.ice import ice_servers_for, turn_credentials
from server.config import Config, ConfigError, IceServer, MediaConfig, load_config
from signaling.client import SignalingClient, login_cookie
from tests.support.server import LiveServer, start_server

TURN_URLS = ["turn:turn.example:3478?transport=udp", "turn:turn.example:3478?transport=tcp",
             "turns:turn.example:443?transport=tcp"]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "yunzhen.toml"
    path.write_text(text)
    return path


# --- settings ---

def test_turn_is_off_by_default() -> None:
    media = load_config(env={}).media
    assert (media.turn_urls, media.turn_secret, media.turn_ttl) == ((), "", 3600)
    assert ice_servers_for(media, "a-1", time.time()) == []


def test_turn_settings_come_from_the_file_and_the_secret_from_the_environment(
        tmp_path: Path) -> None:
    path = _toml(tmp_path, '[media]\nturn_urls = [' + ", ".join(f'"{u}"' for u in TURN_URLS)
                 + ']\nturn_secret = "from-the-file"\nturn_ttl = 600\n')
    media = load_config(path, env={}).media
    assert media.turn_urls == tuple(TURN_URLS)
    assert (media.turn_secret, media.turn_ttl) == ("from-the-file", 600)

    media = load_config(path, env={"YUNZHEN_TURN_SECRET": "from-env",
                                   "YUNZHEN_MEDIA_TURN_TTL": "7200"}).media
    assert (media.turn_secret, media.turn_ttl) == ("from-env", 7200)
    # The secret stays out of logs that print the configuration.
    assert "from-env" not in repr(load_config(path, env={"YUNZHEN_TURN_SECRET": "from-env"}))


def test_a_single_url_may_be_a_string(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[media]\nturn_urls = "turn:10.0.0.7:3478"\nturn_secret = "s"\n')
    assert load_config(path, env={}).media.turn_urls == ("turn:10.0.0.7:3478",)


@pytest.mark.parametrize(("text", "env", "setting"), [
    ('turn_urls = ["stun:turn.example:3478"]\nturn_secret = "s"', {}, "media.turn_urls"),
    ('turn_urls = ["https://turn.example"]\nturn_secret = "s"', {}, "media.turn_urls"),
    ('turn_urls = [3478]\nturn_secret = "s"', {}, "media.turn_urls"),
    ('turn_urls = {a = 1}\nturn_secret = "s"', {}, "media.turn_urls"),
    ('turn_urls = ["turn:turn.example:3478"]', {}, "media.turn_secret"),
    ('turn_urls = ["turn:turn.example:3478"]\nturn_secret = ""', {}, "media.turn_secret"),
    ('turn_urls = ["turn:turn.example:3478"]', {"YUNZHEN_TURN_SECRET": ""}, "media.turn_secret"),
    ("turn_secret = 12", {}, "media.turn_secret"),
    ('turn_urls = ["turn:t:3478"]\nturn_secret = "s"\nturn_ttl = 59', {}, "media.turn_ttl"),
    ('turn_urls = ["turn:t:3478"]\nturn_secret = "s"\nturn_ttl = 86401', {}, "media.turn_ttl"),
    ('turn_urls = ["turn:t:3478"]\nturn_secret = "s"\nturn_ttl = "soon"', {}, "media.turn_ttl"),
    ('turn_urls = ["turn:t:3478"]\nturn_secret = "s"', {"YUNZHEN_MEDIA_TURN_TTL": "0"},
     "media.turn_ttl"),
])
def test_bad_turn_settings_stop_the_start_naming_the_setting(
        tmp_path: Path, text: str, env: dict[str, str], setting: str) -> None:
    path = _toml(tmp_path, "[media]\n" + text + "\n")
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
        load_config(path, env=env)


def test_the_ttl_bounds_are_inclusive() -> None:
    for ttl in (60, 86400):
        assert MediaConfig(turn_urls=("turn:t:3478",), turn_secret="s", turn_ttl=ttl).turn_ttl \
            == ttl


# --- the credential ---

def _expected(secret: str, username: str) -> str:
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def test_credentials_follow_the_turn_rest_scheme() -> None:
    username, credential = turn_credentials("north-hall-secret", "a-7f3e", 1_700_000_000.9, 3600)
    assert username == "1700003600:a-7f3e"
    assert credential == _expected("north-hall-secret", "1700003600:a-7f3e")
    # A fixed vector, computed outside Python with
    # printf %s 1700003600:a-7f3e | openssl dgst -sha1 -hmac north-hall-secret -binary | base64
    assert credential == "8VGW2IicZU9Scm9+zQGUV6jeyHI="
    assert len(base64.b64decode(credential)) == 20


def test_credentials_expire_ttl_seconds_after_now_and_differ_per_user_and_secret() -> None:
    now = time.time()
    username, _ = turn_credentials("s", "s-1", now, 600)
    expiry, user = username.split(":", 1)
    assert user == "s-1"
    assert int(expiry) == int(now) + 600
    assert turn_credentials("s", "s-1", now, 600) == turn_credentials("s", "s-1", now, 600)
    assert turn_credentials("s", "s-1", now, 600)[1] != turn_credentials("s", "a-1", now, 600)[1]
    assert turn_credentials("s", "s-1", now, 600)[1] != turn_credentials("t", "s-1", now, 600)[1]
    assert turn_credentials("s", "s-1", now, 600)[0] != turn_credentials("s", "s-1", now, 601)[0]
    # A user id may itself hold the separator: coturn splits at the first colon only.
    assert turn_credentials("s", "x:y", 100, 60)[0] == "160:x:y"
    with pytest.raises(ValueError):
        turn_credentials("", "s-1", now, 600)
    with pytest.raises(ValueError):
        turn_credentials("s", "s-1", now, 0)


def test_ice_servers_are_the_static_ones_then_turn_with_a_credential_for_the_participant() -> None:
    media = MediaConfig(ice_servers=(IceServer(urls=("stun:stun.example:3478",)),),
                        turn_urls=tuple(TURN_URLS), turn_secret="sekrit", turn_ttl=900)
    servers = ice_servers_for(media, "a-42", 1_000_000.0)
    assert servers == [
        {"urls": ["stun:stun.example:3478"]},
        {"urls": TURN_URLS, "username": "1000900:a-42",
         "credential": _expected("sekrit", "1000900:a-42")},
    ]


# --- on room:join ---

@pytest.fixture
async def turn_server(config: Config, redis_client: aioredis.Redis) -> AsyncIterator[LiveServer]:
    media = replace(config.media, ice_servers=(IceServer(urls=("stun:127.0.0.1:3478",)),),
                    turn_urls=tuple(TURN_URLS), turn_secret="join-secret", turn_ttl=120)
    live = await start_server(replace(config, media=media))
    try:
        yield live
    finally:
        await live.runner.cleanup()


async def test_each_participant_gets_its_own_fresh_turn_credential_on_join(
        turn_server: LiveServer) -> None:
    url = turn_server.url
    kiosk = await SignalingClient.connect(url, "/kiosk")
    staff = await SignalingClient.connect(url, "/staff",
                                          await login_cookie(url, "tax01", "demo12345"))
    rooms: list[SignalingClient] = []
    try:
        await staff.next("staff:state")
        ticket = (await kiosk.request("ticket:create", {"department": "tax",
                                                         "consent": True}))["ticket"]
        await staff.request("presence:set", {"state": "available"})
        await staff.next("call:incoming")
        accepted = (await staff.request("call:accept", {"ticket_id": ticket["ticket_id"]}))
        room_id, staff_token = accepted["room"]["room_id"], accepted["room"]["token"]
        kiosk_token = (await kiosk.next("ticket:update", status="connected"))["room"]["token"]

        answers = {}
        for who, token in (("staff", staff_token), ("kiosk", kiosk_token)):
            room = await SignalingClient.connect(url, "/room")
            rooms.append(room)
            before = time.time()
            answers[who] = await room.request("room:join", {"room_id": room_id, "token": token})
            after = time.time()
            stun, turn = answers[who]["ice_servers"]
            assert stun == {"urls": ["stun:127.0.0.1:3478"]}
            assert turn["urls"] == TURN_URLS
            expiry, user = turn["username"].split(":", 1)
            assert user == answers[who]["participant_id"]
            assert int(before) + 120 <= int(expiry) <= int(after) + 120
            assert turn["credential"] == _expected("join-secret", turn["username"])
        assert answers["staff"]["participant_id"] != answers["kiosk"]["participant_id"]
    finally:
        for client in (*rooms, kiosk, staff):
            await client.close()
