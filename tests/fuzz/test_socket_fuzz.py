"""Fuzzing every inbound socket event: batches of events on /kiosk, /staff and /room sockets (an
anonymous and a hall guide's kiosk, four desks signed in, room sockets joining with the grants the
run collects), built from the schemas and broken in every way `tests/fuzz/strategies.py` knows,
with replays, bursts of events at once, reloads and made-up handshakes between them.

Every event must be answered with `{ok: true}` or a catalogue error other than `internal`; the
server must log no traceback; after every batch the queue's rules hold and no ticket the run made
is gone; the healthy kiosk and desk opened first are still connected and answering at the end."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import socketio

from signaling.client import SignalingClient, login_cookie
from signaling.errors import CATALOGUE
from tests.fuzz.harness import Healthy, LogTally, Tally, budget, queue_rules, write_report
from tests.fuzz.runner import run_batches
from tests.fuzz.strategies import (
    Args,
    Burst,
    Emit,
    Handshake,
    Reconnect,
    Ref,
    Replay,
    socket_batch,
)
from tests.support.server import LiveServer

INPUTS = budget(4_000)
STAFF = ("tax01", "market01", "hrss01", "fund01")
CODES = {name.partition(".")[0] for name in CATALOGUE}
QUICK = 0.2  # seconds an answer is waited for before the run goes on
ANSWER_LIMIT = 30.0  # seconds within which every event must be answered


class SocketRun:
    """The run's sockets and what it has seen: tickets (id, token), rings per desk, room grants,
    callback ids, and the events sent (for replays)."""

    def __init__(self, server: LiveServer, tally: Tally) -> None:
        self.server, self.tally = server, tally
        self.cookies: dict[str, str] = {}
        self.sockets: dict[str, list[SignalingClient | None]] = {
            "/kiosk": [None] * 4, "/staff": [None] * len(STAFF), "/room": [None] * 3}
        self.tickets: list[tuple[str, str]] = []
        self.ticket_ids: set[str] = set()
        self.rung: dict[int, list[str]] = {}
        self.grants: list[tuple[str, str]] = []
        self.callbacks: list[str] = []
        self.sent: list[tuple[Emit, Any]] = []  # with the payload as it was sent
        self.problems: list[str] = []
        self.late: list[tuple[str, str, SignalingClient, Emit, asyncio.Future[Any]]] = []

    async def open(self) -> None:
        for username in (*STAFF, "guide01"):
            self.cookies[username] = await login_cookie(self.server.url, username, "demo12345")
        for namespace, sockets in self.sockets.items():
            for index in range(len(sockets)):
                await self._connect(namespace, index)

    def _cookie(self, namespace: str, index: int) -> str | None:
        if namespace == "/staff":
            return self.cookies[STAFF[index]]
        return self.cookies["guide01"] if namespace == "/kiosk" and index == 3 else None

    async def _connect(self, namespace: str, index: int) -> SignalingClient:
        client = await SignalingClient.connect(self.server.url, namespace,
                                               self._cookie(namespace, index))
        self.sockets[namespace][index] = client
        return client

    async def close(self) -> None:
        for sockets in self.sockets.values():
            for client in sockets:
                if client is not None and client.sio.connected:
                    await client.close()

    # --- what the run has seen ----------------------------------------------------------------
    def _harvest(self) -> None:
        for index, client in enumerate(self.sockets["/staff"]):
            if client is None:
                continue
            rings = self.rung.setdefault(index, [])
            queue = client.queue("call:incoming")
            while not queue.empty():
                rings.append(queue.get_nowait()["ticket_id"])
            del rings[:-20]
            for name in ("staff:state", "queue:update", "call:withdrawn", "callback:new",
                         "callback:done", "room:invite", "room:invite_closed"):
                drain(client.queue(name))
        for client in self.sockets["/kiosk"]:
            if client is None:
                continue
            queue = client.queue("ticket:update")
            while not queue.empty():
                room = queue.get_nowait().get("room")
                if isinstance(room, dict):
                    self.grants.append((room["room_id"], room["token"]))
        for client in self.sockets["/room"]:
            if client is not None:
                for queue in client.events.values():
                    drain(queue)
        del self.grants[:-20]

    def _resolve(self, value: Any, socket: int, name: str = "") -> Any:
        if isinstance(value, Ref):
            return self._ref(value, socket, name)
        if isinstance(value, dict):
            return {k: self._resolve(v, socket, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, socket, name) for v in value]
        if isinstance(value, Args):
            return Args(tuple(self._resolve(v, socket, name) for v in value.values))
        return value

    def _ref(self, ref: Ref, socket: int, name: str) -> str:
        if ref.kind == "ticket" and self.tickets:
            ticket_id, token = self.tickets[ref.pick % len(self.tickets)]
            return token if name == "token" else ticket_id
        if ref.kind == "rung":
            rings = self.rung.get(socket % len(STAFF)) or [t for t, _ in self.tickets[-5:]]
            return rings[ref.pick % len(rings)] if rings else "t-none"
        if ref.kind == "room" and self.grants:
            room_id, token = self.grants[ref.pick % len(self.grants)]
            return token if name == "token" else room_id
        if ref.kind == "callback" and self.callbacks:
            return self.callbacks[ref.pick % len(self.callbacks)]
        return "none"

    def _learn(self, emit: Emit, answer: dict[str, Any]) -> None:
        ticket = answer.get("ticket")
        if isinstance(ticket, dict) and "token" in ticket:
            self.tickets.append((ticket["ticket_id"], ticket["token"]))
            self.ticket_ids.add(ticket["ticket_id"])
        room = answer.get("room")
        if isinstance(room, dict) and "token" in room:
            self.grants.append((room["room_id"], room["token"]))
        if isinstance(answer.get("callback_id"), str):
            self.callbacks.append(answer["callback_id"])
        for entry in answer.get("callbacks") or []:
            self.callbacks.append(entry["callback_id"])
        del self.callbacks[:-20]

    # --- sending --------------------------------------------------------------------------------
    async def act(self, action: Any) -> None:
        if isinstance(action, Emit):
            await self.emit(action)
        elif isinstance(action, Replay):
            if self.sent:
                await self.emit(*self.sent[-min(action.back, len(self.sent))], replay=True)
        elif isinstance(action, Burst):
            await asyncio.gather(*(self.emit(e) for e in action.emits))
        elif isinstance(action, Reconnect):
            await self.reconnect(action)
        elif isinstance(action, Handshake):
            await self.handshake(action)

    async def emit(self, emit: Emit, payload: Any = None, replay: bool = False) -> None:
        self._harvest()
        sockets = self.sockets[emit.namespace]
        index = emit.socket % len(sockets)
        client = sockets[index]
        if client is None or not client.sio.connected:
            client = await self._connect(emit.namespace, index)
        if not replay:
            payload = self._resolve(emit.payload, index)
        data = payload.values if isinstance(payload, Args) else payload
        self.sent.append((emit, payload))
        del self.sent[:-50]
        what = f"{emit.namespace} {emit.event!r} {str(payload)[:300]}"
        kind = "replay" if replay else "event"
        call = asyncio.ensure_future(client.sio.call(emit.event, data, namespace=emit.namespace,
                                                     timeout=ANSWER_LIMIT))
        done, _ = await asyncio.wait({call}, timeout=QUICK)
        if done:
            self._judge(what, kind, client, emit, call)
        else:
            # Some answers wait for the participant's SDP answer, which the fuzz never gives
            # (a screen share waits up to 2 x 10 s): judged at the end, the run goes on.
            self.late.append((what, kind, client, emit, call))

    def _judge(self, what: str, kind: str, client: SignalingClient, emit: Emit,
               call: asyncio.Future[Any]) -> None:
        try:
            answer = call.result()
        except socketio.exceptions.TimeoutError:
            if client.sio.connected:
                self.tally.unanswered.append(what)
            self.tally.count(kind, "unanswered" if client.sio.connected else "dropped")
            return
        except socketio.exceptions.BadNamespaceError:
            self.tally.count(kind, "not connected")  # the server closed it meanwhile
            return
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            self.tally.server_errors.append(f"{what} answered {answer!r}")
            self.tally.count(kind, "malformed answer")
            return
        if answer["ok"]:
            self._learn(emit, answer)
            self.tally.count(kind, "ok")
            return
        code = answer.get("error", {}).get("code")
        if code == "internal" or code not in CODES:
            self.tally.server_errors.append(f"{what} answered {answer!r}")
        self.tally.count(kind, f"refused {code}")

    async def settle(self) -> None:
        """Wait for the late answers and judge them."""
        await asyncio.gather(*(call for *_, call in self.late), return_exceptions=True)
        for what, kind, client, emit, call in self.late:
            self._judge(what, kind, client, emit, call)
        self.late.clear()

    async def reconnect(self, action: Reconnect) -> None:
        sockets = self.sockets[action.namespace]
        index = action.socket % len(sockets)
        client = sockets[index]
        if client is not None and client.sio.connected:
            await client.close()
        await self._connect(action.namespace, index)
        self.tally.count("reconnect", "ok")

    async def handshake(self, action: Handshake) -> None:
        sio = socketio.AsyncClient(reconnection=False)
        try:
            await sio.connect(self.server.url, namespaces=[action.namespace],
                              headers={"Cookie": action.cookie}, auth=action.auth,
                              transports=["websocket"], wait_timeout=2)
            outcome = "accepted"
        except socketio.exceptions.ConnectionError:
            outcome = "refused"
        except (TypeError, ValueError):
            # The client itself refuses to send that auth (not JSON-encodable).
            outcome = "not sent"
        finally:
            with contextlib.suppress(Exception):
                await sio.disconnect()
        self.tally.count("handshake", outcome)


def drain(queue: asyncio.Queue[Any]) -> None:
    while not queue.empty():
        queue.get_nowait()


async def test_socket_events_survive_fuzzing(server: LiveServer, log_tally: LogTally,
                                             redis_url: str) -> None:
    tally = Tally("socket_events")
    healthy = await Healthy.open(server)
    run = SocketRun(server, tally)
    await run.open()

    async def batch(actions: list[Any]) -> bool:
        for action in actions:
            await run.act(action)
        tally.batches += 1
        # Let pushes and the clock's ticks settle, then read the queue back at one instant.
        await asyncio.sleep(0.05)
        broken = queue_rules(redis_url, run.ticket_ids)
        if broken:
            run.problems.append(f"after batch {tally.batches}: {broken[:10]}")
        return not broken and len(log_tally.tracebacks) < 20 and tally.total < INPUTS

    try:
        await run_batches(socket_batch, batch)
        await run.settle()
        healthy_problems = await healthy.problems()
    finally:
        await run.close()
        await healthy.close()
        write_report(tally, log_tally)
    print(f"socket fuzz: {tally.total} inputs {dict(tally.inputs)}, {len(run.tickets)} tickets, "
          f"{len(run.grants)} room grants; outcomes {tally.outcomes.most_common(12)}")
    assert run.problems == []
    assert log_tally.tracebacks == []
    assert tally.server_errors == []
    assert tally.unanswered == []
    assert healthy_problems == []
    assert tally.total >= INPUTS
