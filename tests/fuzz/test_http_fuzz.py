"""Fuzzing every HTTP route of the app (`app.router.routes()`): odd methods, ids in the paths,
query strings (dates before 1970 and after 9999, epochs, unicode digits, unknown filters),
over-long URLs, JSON bodies broken or nested thousands deep, wrong content types and origins,
as nobody and as each role.

No answer may be a 5xx; an error under /api/ is the catalogue's JSON body; the server logs no
traceback; the queue's rules hold after every batch; the healthy kiosk and desk still answer."""

from __future__ import annotations

import json
import time

import aiohttp
import yarl
from hypothesis import strategies as st

from server.seed import DEMO_PASSWORD
from tests.fuzz.harness import Healthy, LogTally, Tally, budget, queue_rules, write_report
from tests.fuzz.runner import run_batches
from tests.fuzz.strategies import HttpRequest, http_request
from tests.support.server import LiveServer

INPUTS = budget(4_000)
# The accounts whose cookies go with the requests, by role (the healthy desk's is not one).
ACCOUNTS = {"admin": "admin", "supervisor": "supervisor", "auditor": "auditor",
            "staff": "market01", "guide": "guide01"}
MAX_URL = 8190  # aiohttp's request line limit: longer ones are refused 400 before any handler


def app_routes(server: LiveServer) -> list[tuple[str, str]]:
    """(method, path pattern) of every route; a static directory as a few of its files."""
    out: list[tuple[str, str]] = []
    for route in server.app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        pattern = resource.canonical
        if route.method == "HEAD":
            continue
        if type(resource).__name__ == "StaticResource":
            out += [(route.method, f"{pattern}/{name}") for name in (
                "css/app.css", "js/kiosk.js", "{file}", "..%2f..%2fpyproject.toml",
                "js/%00.js", "js/", "js/i18n.js/x")]
        else:
            out.append((route.method, pattern))
    return sorted(set(out))


class Cookies:
    """A login session per role, signed in again when the fuzz ended one (a logout, an account
    disabled or reset by the admin's requests)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.by_role: dict[str, str] = {}

    async def refresh(self, session: aiohttp.ClientSession) -> None:
        for role, username in ACCOUNTS.items():
            cookie = self.by_role.get(role)
            if cookie is not None:
                async with session.get(f"{self.url}/api/me",
                                       headers={"Cookie": cookie}) as answer:
                    if answer.status == 200:
                        continue
            async with session.post(f"{self.url}/api/login", json={
                    "username": username, "password": DEMO_PASSWORD}) as answer:
                if answer.status == 200:
                    self.by_role[role] = f"yz_session={answer.cookies['yz_session'].value}"
                else:
                    self.by_role.pop(role, None)


def url_of(base: str, request: HttpRequest) -> yarl.URL:
    raw = base + request.path + ("?" + request.query if request.query else "")
    return yarl.URL(raw)


async def test_http_routes_survive_fuzzing(server: LiveServer, log_tally: LogTally,
                                           redis_url: str) -> None:
    tally = Tally("http")
    routes = app_routes(server)
    assert len(routes) > 40
    healthy = await Healthy.open(server)
    cookies = Cookies(server.url)
    bad_api: list[str] = []
    problems: list[str] = []
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()
                                     ) as session:
        await cookies.refresh(session)

        async def send(request: HttpRequest) -> None:
            headers = {}
            if request.content_type is not None:
                headers["Content-Type"] = request.content_type
            cookie = cookies.by_role.get(request.who)
            if cookie:
                headers["Cookie"] = cookie
            url = url_of(server.url, request)
            what = f"{request.method} {str(url)[:200]} ({request.who or 'nobody'})"
            try:
                async with session.request(request.method, url, data=request.body,
                                           headers=headers, allow_redirects=False,
                                           timeout=aiohttp.ClientTimeout(total=30)) as answer:
                    body = await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, ValueError) as exc:
                # Nothing the server said: the client refused to send it, or the server closed
                # the connection on a request it would not read (counted, not judged).
                tally.count("http", f"client {type(exc).__name__}")
                return
            tally.count("http", str(status))
            if status >= 500:
                tally.server_errors.append(f"{what} → {status} {body[:300]!r}")
            elif (status >= 400 and request.path.startswith("/api/")
                  and request.method != "HEAD" and len(str(url)) < MAX_URL):
                try:
                    error = json.loads(body)["error"]
                    assert isinstance(error["code"], str) and isinstance(error["message"], str)
                except (ValueError, KeyError, TypeError, AssertionError):
                    bad_api.append(f"{what} → {status} {body[:200]!r}")

        async def batch(requests: list[HttpRequest]) -> bool:
            for request in requests:
                await send(request)
            tally.batches += 1
            broken = queue_rules(redis_url, set())
            if broken:
                problems.append(f"after batch {tally.batches}: {broken[:10]}")
            await cookies.refresh(session)
            return not broken and len(log_tally.tracebacks) < 20 and tally.total < INPUTS

        started = time.monotonic()
        try:
            await run_batches(st.lists(http_request(routes), min_size=40, max_size=40), batch)
            healthy_problems = await healthy.problems()
        finally:
            await healthy.close()
            write_report(tally, log_tally)
    print(f"http fuzz: {tally.total} requests in {time.monotonic() - started:.0f} s over "
          f"{len(routes)} routes, statuses {tally.outcomes.most_common()}")
    assert log_tally.tracebacks == []
    assert tally.server_errors == []
    assert bad_api == []
    assert problems == []
    assert healthy_problems == []
    assert tally.total >= INPUTS
