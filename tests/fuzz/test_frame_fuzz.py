"""Fuzzing below the events: raw Engine.IO frames and Socket.IO packets (broken JSON, JSON nested
thousands deep, unknown and server-only packet types, events without a name, binary attachments,
over-long ack ids, empty and untyped frames, binary frames), over a websocket and over HTTP
long-polling, each on a fresh connection that may first join a namespace.

After its frames every connection must either still answer (a namespace handshake, the probe) or
have been closed by the server; the server must log no traceback; at the end no connection is
left behind and the healthy kiosk and desk opened first still answer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
from hypothesis import strategies as st

from tests.fuzz.harness import Healthy, LogTally, Tally, budget, queue_rules, write_report
from tests.fuzz.runner import run_batches
from tests.fuzz.strategies import NAMESPACES, frame_batch
from tests.support.server import LiveServer, established

INPUTS = budget(2_500)
# /staff refuses a connection without a sign-in, so it is never open and always answers this,
# with CONNECT_ERROR.
PROBE = "40/staff,"
PROBE_ANSWER = "44/staff,"
PROBE_WAIT = 3.0


def sendable(frame: str) -> str:
    """A text frame as a client can send it: UTF-8 (lone surrogates become '?')."""
    return frame.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class FrameInput:
    transport: str  # websocket or polling
    namespace: str | None  # joined first, if any
    frames: tuple[str | bytes, ...]


frame_input = st.builds(FrameInput, st.sampled_from(["websocket", "websocket", "websocket",
                                                     "polling"]),
                        st.none() | st.sampled_from(NAMESPACES), frame_batch.map(tuple))


async def over_websocket(session: aiohttp.ClientSession, url: str, case: FrameInput) -> str:
    async with session.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket") as ws:
        await ws.receive(timeout=5)  # the open packet
        if case.namespace:
            await ws.send_str(f"40{case.namespace},")
            await ws.receive(timeout=5)
        for frame in case.frames:
            if ws.closed:
                break
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(sendable(frame))
        if ws.closed:
            return "closed"
        await ws.send_str(PROBE)
        deadline = time.monotonic() + PROBE_WAIT
        while time.monotonic() < deadline:
            try:
                message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                return "closed"
            if message.type == aiohttp.WSMsgType.TEXT and message.data == "1":
                return "closed"  # Engine.IO's close packet
            if message.type == aiohttp.WSMsgType.TEXT and message.data.startswith(PROBE_ANSWER):
                return "answered"
        return "silent"


async def over_polling(session: aiohttp.ClientSession, url: str, case: FrameInput) -> str:
    base = f"{url}/socket.io/?EIO=4&transport=polling"
    async with session.get(base) as response:
        opened = await response.text()
    sid = opened[opened.index('"sid":"') + 7:].split('"', 1)[0]
    base += f"&sid={sid}"

    async def post(body: str | bytes) -> int:
        async with session.post(base, data=body,
                                headers={"Content-Type": "text/plain;charset=UTF-8"}) as answer:
            await answer.read()
            return answer.status

    if case.namespace:
        await post(f"40{case.namespace},")
    text = [sendable(f) for f in case.frames if isinstance(f, str)]
    binary = [f for f in case.frames if isinstance(f, bytes)]
    statuses = [await post("\x1e".join(text))] if text else []
    statuses += [await post(f) for f in binary]
    if any(s >= 500 for s in statuses):
        return f"post answered {statuses}"
    if await post(PROBE) != 200:
        return "closed"
    outcome = "silent"
    deadline = time.monotonic() + PROBE_WAIT
    while time.monotonic() < deadline:
        async with session.get(base, timeout=aiohttp.ClientTimeout(total=PROBE_WAIT)) as answer:
            if answer.status != 200:
                return "closed"
            packets = (await answer.text()).split("\x1e")
        if "1" in packets:
            return "closed"
        if any(p.startswith(PROBE_ANSWER) for p in packets):
            outcome = "answered"
            break
    await post("1")  # Engine.IO's close, as a client leaving says it
    return outcome


async def test_raw_frames_survive_fuzzing(server: LiveServer, log_tally: LogTally,
                                          redis_url: str) -> None:
    tally = Tally("socket_frames")
    healthy = await Healthy.open(server)
    baseline = established(server.port)  # the healthy kiosk's and desk's
    bad: list[str] = []

    async def batch(cases: list[FrameInput]) -> bool:
        for case in cases:
            send = over_websocket if case.transport == "websocket" else over_polling
            try:
                outcome = await asyncio.wait_for(send(session, server.url, case), 15)
            except TimeoutError:
                outcome = "hung"
            except aiohttp.ClientError as exc:
                outcome = f"client error {type(exc).__name__}"
            tally.count(f"frames:{case.transport}", outcome)
            if outcome not in ("answered", "closed"):
                bad.append(f"{outcome}: {case}"[:500])
        tally.batches += 1
        return len(log_tally.tracebacks) < 20 and tally.total < INPUTS

    try:
        async with aiohttp.ClientSession() as session:
            await run_batches(st.lists(frame_input, min_size=20, max_size=20), batch)
        healthy_problems = await healthy.problems()
        broken = queue_rules(redis_url, set())
        # Every fuzz connection is closed, by the client or by the server (the client's pool
        # closed its own with the session).
        for _ in range(50):
            left = established(server.port)
            if left <= baseline:
                break
            await asyncio.sleep(0.1)
    finally:
        await healthy.close()
        write_report(tally, log_tally)
    print(f"frame fuzz: {tally.total} inputs, outcomes {tally.outcomes.most_common()}")
    assert log_tally.tracebacks == []
    assert bad == []
    assert healthy_problems == []
    assert broken == []
    assert left <= baseline, f"{left - baseline} connections left open"
    assert tally.total >= INPUTS
