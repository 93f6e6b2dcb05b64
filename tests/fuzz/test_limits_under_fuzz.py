"""The abuse limits at their defaults (the other fuzz tests turn them off, so that the fuzz reaches
the handlers), under fuzzed bursts: events sent all at once on the run's sockets, tickets and
call-backs asked for faster than an address may, more kiosk sockets than an address may open,
wrong passwords in a row. The limits answer with their structured refusal (`limit`, HTTP 429
`throttled`), nothing else: no `internal`, no 5xx, no traceback, the queue's rules hold, and the
healthy kiosk and desk opened first still answer."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import socketio
from hypothesis import strategies as st

from server.config import Config
from signaling.client import SignalingClient
from signaling.config import NO_LIMITS
from tests.fuzz.harness import Healthy, LogTally, Tally, queue_rules, write_report
from tests.fuzz.runner import run_batches
from tests.fuzz.strategies import Burst, Emit, emit, flow_step
from tests.fuzz.test_socket_fuzz import SocketRun
from tests.support.server import LiveServer

# The abuse limits and the sign-in lockouts at their defaults.
DEFAULTS: dict[str, Any] = {name: getattr(Config(), name) for name in (
    *NO_LIMITS, "address_failures", "lockout_failures")}
INPUTS = 600


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, **DEFAULTS)


# A burst: fuzzed events and tickets, call-backs and their cancels, all sent at once.
burst = st.lists(st.one_of(emit(), emit(), st.builds(
    flow_step, st.sampled_from(["create", "create", "callback", "cancel", "resume"]),
    st.integers(0, 3), st.integers(0, 11))), min_size=30, max_size=60).map(
    lambda emits: Burst(tuple(e for e in emits if isinstance(e, Emit))))


async def test_the_limits_answer_cleanly_under_fuzzed_bursts(
        server: LiveServer, log_tally: LogTally, redis_url: str) -> None:
    assert DEFAULTS["events_per_second"] > 0 and DEFAULTS["max_sockets_per_address"] > 0
    tally = Tally("limits")
    healthy = await Healthy.open(server)
    run = SocketRun(server, tally)
    await run.open()
    problems: list[str] = []

    async def batch(action: Burst) -> bool:
        await run.act(action)
        broken = queue_rules(redis_url, run.ticket_ids)
        if broken:
            problems.append(str(broken[:5]))
        return not broken and tally.total < INPUTS

    extra: list[SignalingClient] = []
    refused_sockets = 0
    throttled = []
    try:
        await run_batches(burst, batch)
        await run.settle()
        # More kiosk sockets than one address may open: the rest are refused at the handshake.
        for _ in range(int(DEFAULTS["max_sockets_per_address"]) + 5):
            try:
                extra.append(await SignalingClient.connect(server.url, "/kiosk"))
            except socketio.exceptions.ConnectionError:
                refused_sockets += 1
        # Wrong passwords in a row from one address: 401 each, then 429 `throttled`.
        async with aiohttp.ClientSession() as session:
            for n in range(int(DEFAULTS["address_failures"]) + 5):
                async with session.post(f"{server.url}/api/login", json={
                        "username": f"nobody{n}", "password": "wrong"}) as answer:
                    body = await answer.json()
                    assert answer.status in (401, 429), (answer.status, body)
                    if answer.status == 429:
                        throttled.append(body["error"]["code"])
        await asyncio.sleep(0.1)
        healthy_problems = await healthy.problems()
    finally:
        for client in extra:
            await client.close()
        await run.close()
        await healthy.close()
        write_report(tally, log_tally)
    limited = sum(n for outcome, n in tally.outcomes.items() if outcome == "refused limit")
    print(f"limits: {tally.total} inputs, {limited} refused by a limit, {refused_sockets} "
          f"sockets refused, {len(throttled)} logins throttled; {tally.outcomes.most_common(8)}")
    assert log_tally.tracebacks == []
    assert tally.server_errors == [] and tally.unanswered == []
    assert problems == []
    assert healthy_problems == []
    assert limited > 0
    assert refused_sockets > 0
    assert throttled and set(throttled) == {"throttled"}
