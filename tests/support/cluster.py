"""`python -m server serve --demo --workers 2` (real redis-server, real nginx) for tests: started
on a free port, stopped at the end of the test however it ends, with every process it started;
the processes below a pid, read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Cluster:
    process: subprocess.Popen[bytes]
    url: str
    redis: aioredis.Redis
    data_dir: Path


def launch(port: int, data_dir: Path, log: Path,
           extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The launcher (`serve --demo --workers 2`), its output (and its workers') in `log`."""
    env = {**os.environ, "YUNZHEN_DATA_DIR": str(data_dir), "YUNZHEN_SPEECH": "0",
           "YUNZHEN_ANNOUNCE_ADDRESSES": "127.0.0.1", **(extra_env or {})}
    env.pop("YUNZHEN_REDIS_URL", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--demo", "--workers", "2", "--port",
             str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@contextlib.asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Cluster]:
    port = free_port()
    data_dir, log = tmp_path / "data", tmp_path / "launcher.log"
    process = launch(port, data_dir, log)
    url = f"http://127.0.0.1:{port}"
    client: aioredis.Redis | None = None
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                assert process.poll() is None, log.read_text()
                try:
                    async with http.get(url + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the launcher did not come up")
        redis_url = (data_dir / "redis" / "url").read_text().strip()
        client = aioredis.from_url(redis_url, decode_responses=True)
        yield Cluster(process, url, client, data_dir)
    finally:
        if client is not None:
            await client.aclose()
        below = descendants(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in below:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


