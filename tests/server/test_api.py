"""The HTTP API of the real app: logins, roles, and refusals as JSON 4xx."""


from server.keys import NODE
from tests.support.http import client_session, login
from tests.support.server import LiveServer


async def test_login_sets_an_httponly_session_and_me_answers(server: LiveServer) -> None:
    async with client_session() as session:
        response = await login(session, server.url, "tax01")
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
    async with client_session() as session:
        response = await login(session, server.url, "tax01", "wrong")
        assert response.status == 401
        body = await response.json()
        assert body == {"ok": False, "error": {"code": "bad_credentials",
                                               "message": "用户名或密码错误。",
                                               "message_en": "Wrong username or password."}}
        assert "yz_session" not in response.cookies
        response = await login(session, server.url, "nobody", "demo12345")
        assert response.status == 401


async def test_malformed_login_bodies_are_refused(server: LiveServer) -> None:
    async with client_session() as session:
        for body in (b"not json", b"[1,2]", b'{"username": 5, "password": "x"}',
                     b'{"username": "' + b"x" * 5000 + b'"}'):
            response = await session.post(f"{server.url}/api/login", data=body,
                                          headers={"Content-Type": "application/json"})
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "invalid_payload"


async def test_departments_are_public_and_seeded(server: LiveServer) -> None:
    async with client_session() as session:
        body = await (await session.get(f"{server.url}/api/departments")).json()
    assert {d["id"]: (d["name_zh"], d["skill"]) for d in body["departments"]} == {
        "tax": ("税务", None), "market": ("市场监管", None), "hrss": ("人社", None),
        "fund": ("公积金", None), "estate": ("不动产登记", None),
        # the interpreter pools of the demo (signaling/skills.py)
        "interp-sign": ("手语翻译", "sign"), "interp-ko": ("朝鲜语翻译", "ko"),
        "interp-mn": ("蒙古语翻译", "mn"), "interp-en": ("英语翻译", "en")}


async def test_recordings_are_for_supervisors_only(server: LiveServer) -> None:
    async with client_session() as anonymous:
        response = await anonymous.get(f"{server.url}/api/recordings")
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthenticated"
    async with client_session() as staff:
        await login(staff, server.url, "tax01")
        response = await staff.get(f"{server.url}/api/recordings")
        assert response.status == 403
        assert (await response.json())["error"]["message"] == "只有督查人员可以查看录像。"
    async with client_session() as supervisor:
        await login(supervisor, server.url, "supervisor")
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
    async with client_session() as session:
        for path in ("/", "/staff", "/supervisor", "/admin", "/?lang=en"):
            response = await session.get(server.url + path)
            assert response.status == 200, path
            assert "text/html" in response.headers["Content-Type"]
        health = await (await session.get(f"{server.url}/healthz")).json()
        assert health == {"ok": True, "redis": "ok", "status": "ok"}


async def test_admins_change_a_department_without_a_restart(server: LiveServer) -> None:
    async with client_session() as admin:
        await login(admin, server.url, "admin")
        body = await (await admin.get(f"{server.url}/api/admin/departments/tax")).json()
        dept = body["department"]
        assert dept["ring_timeout"] == 15 and dept["hours"] == {"mon-sun": ["00:00-24:00"]}
        dept.update(ring_timeout=20, hours={"mon-fri": ["09:00-12:00", "13:30-17:00"]},
                    backups=[{"group": "market", "after": 90}])
        response = await admin.put(f"{server.url}/api/admin/departments/tax", json=dept)
        assert response.status == 200
        departments = await (await admin.get(f"{server.url}/api/departments")).json()
        tax = next(d for d in departments["departments"] if d["id"] == "tax")
        assert tax["hours"] == "mon-fri 09:00-12:00,13:30-17:00"
        # Bad settings are refused with the field named, and change nothing.
        for bad in ({**dept, "ring_timeout": 0}, {**dept, "hours": {"mon": ["25:00-26:00"]}},
                    {**dept, "backups": [{"group": "tax", "after": 5}]}, {**dept, "colour": 1}):
            response = await admin.put(f"{server.url}/api/admin/departments/tax", json=bad)
            assert response.status == 400
            assert "部门设置有误" in (await response.json())["error"]["message"]
        saved = await (await admin.get(f"{server.url}/api/admin/departments/tax")).json()
        assert saved["department"]["ring_timeout"] == 20


async def test_admin_endpoints_refuse_everyone_else(server: LiveServer) -> None:
    async with client_session() as supervisor:
        await login(supervisor, server.url, "supervisor")
        for method, path in (("GET", "/api/admin/departments/tax"),
                             ("PUT", "/api/admin/departments/tax"),
                             ("GET", "/api/admin/queue-log.csv?from=2026-01-01&to=2026-01-02")):
            response = await supervisor.request(method, server.url + path, json={})
            assert response.status == 403, path
    async with client_session() as anonymous:
        response = await anonymous.get(f"{server.url}/api/wallboard")
        assert response.status == 401


async def test_the_queue_log_downloads_as_csv_for_a_date_range(server: LiveServer) -> None:
    import csv
    import datetime as dt
    import io

    from signaling.client import SignalingClient

    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    ticket = (await kiosk.request("ticket:create", {"department": "fund", "consent": True}))
    await kiosk.request("ticket:cancel", {"ticket_id": ticket["ticket"]["ticket_id"],
                                          "token": ticket["ticket"]["token"]})
    await kiosk.close()
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    async with client_session() as admin:
        await login(admin, server.url, "admin")
        url = f"{server.url}/api/admin/queue-log.csv?from={today - dt.timedelta(days=1)}&to={today}"
        response = await admin.get(url)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))
        events = [(r["event"], r["department"]) for r in rows if r["ticket"]]
        assert events == [("ENTER", "fund"), ("CANCEL", "fund")]
        response = await admin.get(f"{server.url}/api/admin/queue-log.csv?from=yesterday")
        assert response.status == 400


async def test_the_wallboard_shows_queues_and_staff(server: LiveServer) -> None:
    from signaling.client import SignalingClient

    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    await kiosk.request("ticket:create", {"department": "market", "consent": True})
    async with client_session() as supervisor:
        await login(supervisor, server.url, "supervisor")
        body = await (await supervisor.get(f"{server.url}/api/wallboard")).json()
    await kiosk.close()
    market = next(q for q in body["queues"] if q["department"] == "market")
    assert market["waiting"] == 1 and market["longest_since"] is not None
    assert {s["username"]: s["presence"] for s in body["staff"]}["market01"] == "offline"


async def test_a_supervisor_scoped_to_departments_sees_only_theirs_on_the_wallboard(
        server: LiveServer) -> None:
    from server.keys import ACCOUNTS
    from signaling.accounts import hash_password

    await server.app[ACCOUNTS].put("taxsup", display_name="税务督查", role="supervisor",
                                   departments=("tax",), password_hash=hash_password("demo12345"))
    async with client_session() as supervisor:
        await login(supervisor, server.url, "taxsup")
        body = await (await supervisor.get(f"{server.url}/api/wallboard")).json()
    assert [q["department"] for q in body["queues"]] == ["tax"]
    assert {s["username"] for s in body["staff"]} == {"tax01"}
    async with client_session() as admin:
        # An admin runs the system, not the service (三权分立).
        await login(admin, server.url, "admin")
        assert (await admin.get(f"{server.url}/api/wallboard")).status == 403


async def test_the_health_check_says_whether_a_node_is_still_registered(
        server: LiveServer) -> None:
    # What a process cut off from Redis asks the others (signaling/nodes.py): is it still in the
    # heartbeat set, or was it swept (taken for dead, its rooms moved)?
    node = server.app[NODE]
    async with client_session() as session:
        health = await (await session.get(f"{server.url}/healthz",
                                          params={"node": node})).json()
        assert health == {"ok": True, "redis": "ok", "status": "ok", "node_registered": True}
        health = await (await session.get(f"{server.url}/healthz",
                                          params={"node": "0badc0de"})).json()
        assert health["node_registered"] is False
        response = await session.get(f"{server.url}/healthz", params={"node": "x" * 65})
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_payload"
