"""What every fuzz test shares: the server's log watched for tracebacks (a logging handler in the
process that runs the server), the tally of inputs and their outcomes (written to
$YUNZHEN_FUZZ_REPORT for bench/resilience.py), the healthy clients opened before the fuzz and
checked after it, and the queue's rules read back from Redis after every batch."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from signaling.client import SignalingClient
from tests.fuzz.strategies import HEALTHY_DEPARTMENT, HEALTHY_STAFF
from tests.support.desks import desk_socket
from tests.support.queue_state import queue_problems, read_view
from tests.support.server import LiveServer

REPORT_ENV = "YUNZHEN_FUZZ_REPORT"
# Inputs each fuzz test sends at least (10,000 in all, the floor per run);
# YUNZHEN_FUZZ_SCALE multiplies them for a longer run.
SCALE = float(os.environ.get("YUNZHEN_FUZZ_SCALE", "1"))


def budget(inputs: int) -> int:
    return max(1, round(inputs * SCALE))


class LogTally(logging.Handler):
    """Every log record with a traceback (exc_info or stack_info), formatted, and every other
    record at ERROR or above."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tracebacks: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.stack_info:
            self.tracebacks.append(self.format(record))
        elif record.levelno >= logging.ERROR:
            self.errors.append(f"{record.name}: {record.getMessage()}")


@dataclass
class Tally:
    """One fuzz test's inputs and what came of them."""

    name: str
    inputs: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # 5xx answers, `internal` refusals
    unanswered: list[str] = field(default_factory=list)
    batches: int = 0

    def count(self, kind: str, outcome: str) -> None:
        self.inputs[kind] += 1
        self.outcomes[outcome] += 1

    @property
    def total(self) -> int:
        return sum(self.inputs.values())


def write_report(tally: Tally, log: LogTally) -> None:
    """Merge this test's figures into $YUNZHEN_FUZZ_REPORT (a JSON object keyed by test)."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    report_path = Path(path)
    data: dict[str, Any] = {}
    if report_path.exists():
        data = json.loads(report_path.read_text(encoding="utf-8"))
    data[tally.name] = {
        "inputs": tally.total, "by_kind": dict(tally.inputs), "outcomes": dict(tally.outcomes),
        "server_errors": len(tally.server_errors), "unanswered": len(tally.unanswered),
        "tracebacks": len(log.tracebacks), "error_lines": len(log.errors),
        "batches": tally.batches,
        "examples": {"server_errors": tally.server_errors[:5],
                     "tracebacks": [t[-1500:] for t in log.tracebacks[:3]]}}
    report_path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n",
                           encoding="utf-8")


class Healthy:
    """A kiosk socket with a waiting ticket and a desk socket, in a department and account the
    fuzzer never names, opened before the fuzz: after it they must still be connected and
    answer, and the ticket still be waiting."""

    def __init__(self, kiosk: SignalingClient, desk: SignalingClient,
                 ticket: dict[str, Any]) -> None:
        self.kiosk, self.desk, self.ticket = kiosk, desk, ticket

    @classmethod
    async def open(cls, server: LiveServer) -> Healthy:
        desk, _cookie = await desk_socket(server, HEALTHY_STAFF)
        await desk.request("presence:set", {"state": "away", "reason": "fuzz"})
        kiosk = await SignalingClient.connect(server.url, "/kiosk")
        answer = await kiosk.request("ticket:create", {"department": HEALTHY_DEPARTMENT,
                                                       "consent": True})
        return cls(kiosk, desk, answer["ticket"])

    async def problems(self) -> list[str]:
        out = []
        if not self.kiosk.sio.connected:
            out.append("the healthy kiosk socket was dropped")
        else:
            answer = await self.kiosk.call("ticket:resume", {
                "ticket_id": self.ticket["ticket_id"], "token": self.ticket["token"]})
            status = answer.get("ticket", {}).get("status")
            if not answer.get("ok") or status != "waiting":
                out.append(f"the healthy ticket: {answer}")
        if not self.desk.sio.connected:
            out.append("the healthy desk socket was dropped")
        else:
            answer = await self.desk.call("callback:list", {})
            if not answer.get("ok"):
                out.append(f"the healthy desk: {answer}")
        return out

    async def close(self) -> None:
        for client in (self.kiosk, self.desk):
            if client.sio.connected:
                await client.close()


def queue_rules(redis_url: str, tickets: set[str]) -> list[str]:
    """The queue's rules on a snapshot of Redis (read while nothing else runs on this thread's
    event loop: the server is in this process, so the snapshot is consistent), and every ticket
    the fuzz made still there."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        view = read_view(client)
    finally:
        client.close()
    lost = sorted(tickets - set(view.tickets))
    return queue_problems(view) + [f"ticket {t} lost" for t in lost[:10]]
