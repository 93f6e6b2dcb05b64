"""HTTP requests the fuzzer (tests/fuzz/) found answered with a 500 or a traceback in the log, one
test each: JSON nested thousands deep, time ranges before 1970 and after 9999, digits int()
refuses, a static file name too long for the file system, over-long URLs."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from server.http.payload import MAX_EPOCH
from signaling.errors import SignalError
from signaling.schema import MAX_NESTING
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


async def test_a_body_nested_too_deeply_is_refused_not_a_500(
        server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    too_deep = SignalError("invalid_payload.too_deep", max=MAX_NESTING)
    async with client_session() as session:
        # Past the interpreter's recursion limit (json.loads raised RecursionError), and past
        # the service's own limit while still decodable.
        for body in ("[" * 2000 + "]" * 2000, '{"username":' + "[" * 40 + "]" * 40 + "}"):
            answer = await session.post(f"{server.url}/api/login", data=body,
                                        headers={"Content-Type": "application/json"})
            assert answer.status == 400
            assert await answer.json() == too_deep.to_dict()
        # Within it, a body is read as before.
        answer = await session.post(f"{server.url}/api/login", json={
            "username": "tax01", "password": [[["x"]]]})
        assert answer.status in (400, 401)
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("query", [
    "from=1970-01-01", "from=0001-01-01&to=1969-12-31", "from=9999-12-31",
    "to=9999-12-31", f"from={int(MAX_EPOCH)}", "from=1970-01-01&to=1970-01-02"])
async def test_time_ranges_at_the_ends_of_time_answer(server: LiveServer, query: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A date before 1970 counts from 0 (it was a negative stream id, a 500), one past 9999 up
    to the end (it overflowed)."""
    async with client_session() as session:
        await logged_in(session, server.url, "auditor")
        answer = await session.get(f"{server.url}/api/audit?{query}")
        assert answer.status == 200, await answer.text()
        assert (await answer.json())["ok"] is True
        await logged_in(session, server.url, "supervisor")
        answer = await session.get(f"{server.url}/api/recordings?{query}")
        assert answer.status == 200, await answer.text()
    assert tracebacks(caplog) == []


async def test_epochs_past_the_end_and_odd_digits_are_refused(server: LiveServer) -> None:
    async with client_session() as session:
        await logged_in(session, server.url, "auditor")
        for query, name in ((f"from={int(MAX_EPOCH) + 1}", "invalid_payload.time"),
                            ("to=1e300", "invalid_payload.time"),
                            ("limit=²", "invalid_payload.limit"),
                            ("limit=１２", "invalid_payload.limit")):
            answer = await session.get(f"{server.url}/api/audit?{query}")
            assert answer.status == 400, query
            assert (await answer.json())["error"]["code"] == name.partition(".")[0], query


async def test_the_queue_log_export_takes_the_last_day_there_is(server: LiveServer) -> None:
    async with client_session() as session:
        await logged_in(session, server.url, "admin")
        for query in ("from=9999-12-31", "from=1970-01-01&to=1970-01-01"):
            answer = await session.get(f"{server.url}/api/admin/queue-log.csv?{query}")
            assert answer.status == 200, (query, await answer.text())


async def test_a_static_name_too_long_for_the_file_system_is_not_found(
        server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    async with client_session() as session:
        answer = await session.get(f"{server.url}/static/{'a' * 300}.js")
        assert answer.status == 404
    assert tracebacks(caplog) == []


async def test_an_over_long_url_is_refused_and_logged_in_one_line(
        server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.server")
    async with aiohttp.ClientSession() as session:
        for url in (f"{server.url}/{'a' * 10_000}", f"{server.url}/api/departments?x={'a' * 9000}"):
            async with session.get(url) as answer:
                assert answer.status == 400
        # The service goes on answering.
        async with session.get(f"{server.url}/api/departments") as answer:
            assert answer.status == 200
    assert tracebacks(caplog) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.server"]
    assert len(lines) == 2 and all("Got more than" in line for line in lines), lines
