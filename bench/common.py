"""What every benchmark shares: the machine description, the results file, starting and stopping
the real server as a subprocess, reading a process's CPU time from /proc, and the ticket flow
that gives a bench a room (kiosk ticket → staff accepts → two room tokens)."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice

from signaling.client import SignalingClient, login_cookie
from signaling.config import NO_LIMITS
from tests.support.browser import CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "call_setup.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- machine and results -----------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _chromium_version() -> str | None:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True,
                             timeout=20, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out or None


def machine() -> dict[str, Any]:
    import aiortc
    import av

    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiortc": aiortc.__version__,
        "av": av.__version__,
        "chromium": _chromium_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def merge_results(section: str, figures: dict[str, Any], path: Path = RESULTS) -> dict[str, Any]:
    """Read the results file, update it with ``figures``, write it back. ``machine`` is the
    machine of the latest run; ``machines[section]`` the one each bench last ran on."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            data = {}
    desc = machine()
    data.update(figures)
    data["machine"] = desc
    data.setdefault("machines", {})[section] = desc
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return data


# --- processes -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except OSError:
        pass
    return out


def announce_loopback() -> None:
    """aioice leaves 127.0.0.1 out of its host candidates; in a private network namespace that is
    the only address there is. Bench peers (and the transcoding server) announce exactly it."""
    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = host_addresses


NO_LIMITS_ENV = {f"YUNZHEN_{name.upper()}": "0" for name in NO_LIMITS}


class ServerProcess:
    """A server (``python -m ...``) as a child process on a free loopback port, its data in a
    temporary directory; ``stop()`` ends it and anything it started that outlived it."""

    def __init__(self, module_args: Sequence[str], *, name: str, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.name = name
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tempfile.TemporaryDirectory(prefix=f"yunzhen-bench-{name}-")
        self.data_dir = Path(self.tmp.name)
        self.log_path = self.data_dir / "server.log"
        self._args = [sys.executable, "-m", *module_args, "--port", str(self.port)]
        # A benchmark's clients all come from 127.0.0.1: the abuse limits are off.
        self._env = {**os.environ, "YUNZHEN_DATA_DIR": str(self.data_dir / "data"),
                     "PYTHONUNBUFFERED": "1", **NO_LIMITS_ENV, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self._descendants: set[int] = set()
        # Where to copy the server's log when it stops (the temporary directory goes away).
        self.keep_log: Path | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("wb") as log:
            return subprocess.Popen(self._args, cwd=ROOT, env=self._env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def start(self, timeout: float = 30.0) -> None:
        self.process = self._spawn()
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                       + self.log_tail())
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeError(f"{self.name} did not answer within {timeout} s:\n"
                                       + self.log_tail())
                await asyncio.sleep(0.1)
        self._descendants.update(children(self.pid))

    def children_cpu_seconds(self) -> float:
        total = 0.0
        for pid in children(self.pid):
            self._descendants.add(pid)
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
        return total

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self._descendants.update(children(self.pid))
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.process.wait, timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
        # The server stops its private redis-server; make sure, by the ids we saw.
        for pid in self._descendants:
            try:
                os.kill(pid, 0)
            except OSError:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        if self.keep_log is not None and self.log_path.exists():
            self.keep_log.parent.mkdir(parents=True, exist_ok=True)
            self.keep_log.write_bytes(self.log_path.read_bytes())
        self.tmp.cleanup()


# --- the ticket flow -----------------------------------------------------------------------------

async def open_room(base_url: str, department: str = "tax", staff_user: str = "tax01",
                    cookie: str | None = None
                    ) -> tuple[dict[str, str], dict[str, str], list[SignalingClient]]:
    """A kiosk ticket accepted by a staff member: (applicant room, staff room, sockets to close
    when the call is over). ``cookie``: the staff member's session (a bench that made its own
    accounts); otherwise ``staff_user`` logs in with the demo password."""
    kiosk = await SignalingClient.connect(base_url, "/kiosk")
    if cookie is None:
        cookie = await login_cookie(base_url, staff_user, "demo12345")
    staff = await SignalingClient.connect(base_url, "/staff", cookie)
    await staff.next("staff:state")
    ticket = (await kiosk.request("ticket:create",
                                  {"department": department, "consent": True}))["ticket"]
    await staff.request("presence:set", {"state": "available"})
    await staff.next("call:incoming", timeout=15)
    accepted = await staff.request("call:accept", {"ticket_id": ticket["ticket_id"]})
    update = await kiosk.next("ticket:update", timeout=15, status="connected")
    return update["room"], accepted["room"], [kiosk, staff]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
