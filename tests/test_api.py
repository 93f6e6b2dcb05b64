"""The HTTP API of the real app: logins, roles, and refusals as JSON 4xx."""

import aiohttp

from tests.conftest import LiveServer


def _session() -> aiohttp.ClientSession:
    # Cookies for an IP address (127.0.0.1) are kept only by an "unsafe" jar.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(session: aiohttp.ClientSession, base: str, username: str,
                 password: str = "demo12345") -> aiohttp.ClientResponse:
    return await session.post(f"{base}/api/login",
                              json={"username": username, "password": password})


async def test_login_sets_an_httponly_session_and_me_answers(server: LiveServer) -> None:
    async with _session() as session:
        response = await _login(session, server.url, "tax01")
        assert response.status == 200
        body = await response.json()
        assert body["user"] == {"username": "tax01", "display_name": "税务坐席01",
                                "role": "staff", "departments": ["tax"]}
        assert "httponly" in response.headers["Set-Cookie"].lower()
        me = await (await session.get(f"{server.url}/api/me")).json()
        assert me["user"]["username"] == "tax01"
        await session.post(f"{server.url}/api/logout")
        assert (await session.get(f"{server.url}/api/me")).status == 401


async def test_a_wrong_password_gets_a_clear_json_error(server: LiveServer) -> None:
    async with _session() as session:
        response = await _login(session, server.url, "tax01", "wrong")
        assert response.status == 401
        body = await response.json()
        assert body == {"ok": False, "error": {"code": "bad_credentials",
                                               "message": "用户名或密码错误。",
                                               "message_en": "Wrong username or password."}}
        assert "yz_session" not in response.cookies
        response = await _login(session, server.url, "nobody", "demo12345")
        assert response.status == 401


async def test_malformed_login_bodies_are_refused(server: LiveServer) -> None:
    async with _session() as session:
        for body in (b"not json", b"[1,2]", b'{"username": 5, "password": "x"}',
                     b'{"username": "' + b"x" * 5000 + b'"}'):
            response = await session.post(f"{server.url}/api/login", data=body,
                                          headers={"Content-Type": "application/json"})
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "invalid_payload"


async def test_departments_are_public_and_seeded(server: LiveServer) -> None:
    async with _session() as session:
        body = await (await session.get(f"{server.url}/api/departments")).json()
    assert {d["id"]: d["name_zh"] for d in body["departments"]} == {
        "tax": "税务", "market": "市场监管", "hrss": "人社", "fund": "公积金",
        "estate": "不动产登记"}


async def test_recordings_are_for_supervisors_only(server: LiveServer) -> None:
    async with _session() as anonymous:
        response = await anonymous.get(f"{server.url}/api/recordings")
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthenticated"
    async with _session() as staff:
        await _login(staff, server.url, "tax01")
        response = await staff.get(f"{server.url}/api/recordings")
        assert response.status == 403
        assert (await response.json())["error"]["message"] == "只有督查人员可以查看录像。"
    async with _session() as supervisor:
        await _login(supervisor, server.url, "supervisor")
        response = await supervisor.get(f"{server.url}/api/recordings")
        assert response.status == 200
        assert (await response.json()) == {"ok": True, "recordings": []}
        for path in ("/api/recordings/..%2F..%2Fetc", "/api/recordings/nope",
                     "/api/recordings/nope/files/..%2F..%2Fredis%2Fappendonly.aof",
                     "/api/recordings/x/files/timeline.json"):
            response = await supervisor.get(server.url + path)
            assert response.status == 404
            assert (await response.json())["ok"] is False


async def test_pages_render_for_everyone(server: LiveServer) -> None:
    async with _session() as session:
        for path in ("/", "/staff", "/supervisor", "/?lang=en"):
            response = await session.get(server.url + path)
            assert response.status == 200, path
            assert "text/html" in response.headers["Content-Type"]
        health = await (await session.get(f"{server.url}/healthz")).json()
        assert health == {"ok": True, "redis": True}
