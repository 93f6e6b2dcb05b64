"""Helpers for the ACD tests that run the service as real processes (tests/test_acd_stress.py,
tests/test_acd_restart.py): `python -m server serve` subprocesses on a shared redis-server, and a
checker that reads the queue log (yz:log) back and finds every broken dispatch rule."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from signaling import keys
from signaling.config import NO_LIMITS
from signaling.store import Store

ROOT = Path(__file__).resolve().parents[2]
NO_LIMITS_ENV = {f"YUNZHEN_{name.upper()}": "0" for name in NO_LIMITS}
TERMINAL = {"COMPLETE": "ended", "CANCEL": "cancelled", "ABANDON": "abandoned"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`python -m server serve --demo --port P` against an external Redis; output in a file.
    ``prefix``: a command the server runs under (e.g. `unshare -m …` for a namespace of its
    own), which must end by exec'ing the arguments it is given."""

    def __init__(self, redis_url: str, data_dir: Path, prefix: Sequence[str] = (),
                 **env: str) -> None:
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.prefix = list(prefix)
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-{self.port}.log"
        self.process: asyncio.subprocess.Process | None = None
        self._log: TextIO | None = None

    async def start(self, timeout: float = 30.0) -> None:
        # Every client of these tests comes from 127.0.0.1: the abuse limits are off.
        environ = {**os.environ, "YUNZHEN_DATA_DIR": str(self.data_dir),
                   "YUNZHEN_REDIS_URL": self.redis_url, **NO_LIMITS_ENV, **self.env}
        self._log = self.log_path.open("a", encoding="utf-8")
        self.process = await asyncio.create_subprocess_exec(
            *self.prefix, sys.executable, "-m", "server", "serve", "--demo", "--port",
            str(self.port),
            cwd=ROOT, env=environ, stdin=asyncio.subprocess.DEVNULL, stdout=self._log,
            stderr=asyncio.subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}:\n"
                                       + self.tail())
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not answer /healthz:\n" + self.tail())
                await asyncio.sleep(0.1)

    def tail(self, lines: int = 60) -> str:
        if self._log is not None:
            self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def errors(self) -> list[str]:
        """Tracebacks and ERROR lines the process logged."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines()
                if " ERROR " in line or line.startswith("Traceback")]

    async def kill9(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        self._close_log()

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


async def redis_pid(store: Store) -> int:
    return int((await store.redis.info("server"))["process_id"])


async def wait_until(predicate: Any, timeout: float, interval: float = 0.1,
                     what: str = "condition") -> Any:
    """Poll an async predicate until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


# The queue log checker ------------------------------------------------------------------------

@dataclass
class LogReport:
    problems: list[str] = field(default_factory=list)
    events: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # ticket -> entries
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)


async def all_log_entries(store: Store) -> list[dict[str, str]]:
    rows = await store.redis.xrange(keys.LOG, min="-", max="+")
    return [fields for _, fields in rows]


def check_log(entries: list[dict[str, str]], tickets: dict[str, dict[str, str]]) -> LogReport:
    """Check the dispatch rules on the queue log, for the tickets given (ticket_id -> its Redis
    hash). Staff states are followed for every staff member the log mentions.

    - every ticket entered once, ended exactly once (COMPLETE after one CONNECT, CANCEL or
      ABANDON) and nothing happened to it after that; its final status matches its end;
    - a ticket is rung for at most one staff member at a time (RING .. its outcome);
    - a staff member is rung for at most one ticket at a time, and never while in a call
      (CONNECT .. COMPLETE);
    - first come, first served within a department's lane: a ticket that was rung exactly once
      and then connected (never declined, timed out, passed on or cancelled, so it waited in the
      queue and every available staff member was eligible for it from ENTER to its RING) is rung
      before every later ticket of its department and lane.
    """
    report = LogReport()
    per_ticket: dict[str, list[dict[str, str]]] = defaultdict(list)
    ringing: dict[str, str] = {}        # ticket -> staff being rung for it
    staff_state: dict[str, tuple[str, str]] = {}   # staff -> ("ringing"|"in_call", ticket)
    enter_index: dict[str, int] = {}
    first_ring: dict[str, int] = {}
    ended: dict[str, str] = {}
    counts: dict[str, int] = defaultdict(int)

    for index, entry in enumerate(entries):
        event, tid, staff = entry["event"], entry.get("ticket", ""), entry.get("staff", "")
        counts[event] += 1
        if tid:
            if tid not in tickets:
                continue
            per_ticket[tid].append(entry)
            if tid in ended and event not in ("OVERFLOW",):
                report.add(f"{tid}: {event} at #{index} after its end ({ended[tid]})")
        where = f"#{index} {event} ticket={tid} staff={staff}"
        if event == "ENTER":
            if tid in enter_index:
                report.add(f"{where}: entered twice")
            enter_index[tid] = index
        elif event == "RING":
            if tid not in enter_index:
                report.add(f"{where}: rung before it entered")
            if tid in ringing:
                report.add(f"{where}: rung while {ringing[tid]} is being rung for it")
            if staff in staff_state:
                report.add(f"{where}: staff rung while {staff_state[staff]}")
            ringing[tid] = staff
            staff_state[staff] = ("ringing", tid)
            first_ring.setdefault(tid, index)
        elif event in ("NOANSWER", "DECLINE", "GONE"):
            if ringing.get(tid) != staff:
                report.add(f"{where}: outcome of a ring that was not on "
                           f"(ringing: {ringing.get(tid)})")
            ringing.pop(tid, None)
            if staff_state.get(staff) == ("ringing", tid):
                del staff_state[staff]
            else:
                report.add(f"{where}: staff state was {staff_state.get(staff)}")
        elif event == "CONNECT":
            if ringing.get(tid) != staff:
                report.add(f"{where}: connected without being rung for it "
                           f"(ringing: {ringing.get(tid)})")
            ringing.pop(tid, None)
            if staff_state.get(staff) != ("ringing", tid):
                report.add(f"{where}: staff state was {staff_state.get(staff)}")
            staff_state[staff] = ("in_call", tid)
        elif event == "COMPLETE" or (event == "ABANDON" and entry.get("detail")):
            # COMPLETE, or a call whose server process died (ABANDON with a reason)
            if staff_state.get(staff) != ("in_call", tid):
                report.add(f"{where}: staff state was {staff_state.get(staff)}")
            staff_state.pop(staff, None)
        elif event in ("CANCEL", "ABANDON"):
            # The ticket was waiting (staff '') or ringing (staff: whoever was rung).
            if ringing.get(tid, "") != staff:
                report.add(f"{where}: ringing was {ringing.get(tid)}")
            ringing.pop(tid, None)
            if staff:
                if staff_state.get(staff) == ("ringing", tid):
                    del staff_state[staff]
                else:
                    report.add(f"{where}: staff state was {staff_state.get(staff)}")
        if tid and event in TERMINAL:
            if tid in ended:
                report.add(f"{where}: ended a second time")
            ended.setdefault(tid, event)

    for tid, row in tickets.items():
        events = [e["event"] for e in per_ticket.get(tid, [])]
        if not events or events[0] != "ENTER":
            report.add(f"{tid}: no ENTER first ({events})")
        ends = [e for e in events if e in TERMINAL]
        if len(ends) != 1:
            report.add(f"{tid}: {len(ends)} ends {events}")
            continue
        if ends[0] == "COMPLETE" and events.count("CONNECT") != 1:
            report.add(f"{tid}: completed with {events.count('CONNECT')} CONNECTs {events}")
        if ends[0] != "COMPLETE" and "CONNECT" in events:
            report.add(f"{tid}: connected, then {ends[0]} {events}")
        expected = TERMINAL[ends[0]]
        if row.get("status") != expected:
            report.add(f"{tid}: ended with {ends[0]} but its status is {row.get('status')}")

    # First come, first served within department + lane.
    clean = {tid for tid in tickets
             if [e["event"] for e in per_ticket.get(tid, [])] == ["ENTER", "RING", "CONNECT",
                                                                   "COMPLETE"]}
    lanes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for tid in sorted(enter_index, key=enter_index.__getitem__):
        row = tickets[tid]
        lanes[(row.get("department", ""), row.get("priority", "0"))].append(tid)
    for lane, order in lanes.items():
        for position, tid in enumerate(order):
            if tid not in clean:
                continue
            for later in order[position + 1:]:
                if later in first_ring and first_ring[later] < first_ring[tid]:
                    report.add(f"lane {lane}: {later} (entered #{enter_index[later]}) rung at "
                               f"#{first_ring[later]} before {tid} (entered "
                               f"#{enter_index[tid]}, rung #{first_ring[tid]})")
    counts["clean_tickets"] = len(clean)
    report.events = dict(per_ticket)
    report.counts = dict(counts)
    return report
