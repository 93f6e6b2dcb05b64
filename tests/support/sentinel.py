"""A real Redis Sentinel deployment on 127.0.0.1 for tests and benchmarks: a master, a replica and
three sentinels (Debian's redis-server; `redis-server sentinel.conf --sentinel`), with a short
down-after-milliseconds so that a killed master is replaced within a few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tests.support.harness import free_port

MASTER_NAME = "yunzhen"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class RedisProcess:
    """One redis-server (data node or sentinel) child process on a loopback port."""

    def __init__(self, port: int, directory: Path, args: list[str]) -> None:
        self.port, self.directory, self.args = port, directory, args
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            binary, *self.args, cwd=self.directory, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        client = aioredis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            deadline = time.monotonic() + 10
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"redis-server {self.args} exited with "
                                       f"{self.process.returncode}")
                with contextlib.suppress(OSError, aioredis.RedisError):
                    if await client.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not answer")
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signum)

    async def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        if self.process is not None:
            await self.process.wait()

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a test may have stopped it
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


class SentinelSet:
    """Master + replica + 3 sentinels. ``nodes`` by port; ``env`` is what the service needs."""

    def __init__(self, directory: Path, wait_timeout_ms: int = 200) -> None:
        self.directory = directory
        self.wait_timeout_ms = wait_timeout_ms
        master_port, replica_port = free_port(), free_port()
        self.nodes: dict[int, RedisProcess] = {}
        for port, role in ((master_port, "master"), (replica_port, "replica")):
            args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "yes", "--appendfsync", "everysec",
                    "--logfile", f"redis-{port}.log"]
            if role == "replica":
                args += ["--replicaof", "127.0.0.1", str(master_port)]
            self.nodes[port] = RedisProcess(port, directory / f"{role}-{port}", args)
        self.first_master = master_port
        self.sentinels: list[RedisProcess] = []
        for _ in range(3):
            port = free_port()
            folder = directory / f"sentinel-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "sentinel.conf").write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", "daemonize no", f"dir {folder}",
                f"logfile sentinel-{port}.log",
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {MASTER_NAME} 1", ""]))
            self.sentinels.append(RedisProcess(port, folder, ["sentinel.conf", "--sentinel"]))

    @property
    def env(self) -> dict[str, str]:
        return {"YUNZHEN_REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}"
                                                    for s in self.sentinels),
                "YUNZHEN_REDIS_MASTER": MASTER_NAME,
                "YUNZHEN_REDIS_WAIT_TIMEOUT_MS": str(self.wait_timeout_ms)}

    async def start(self) -> None:
        for node in self.nodes.values():
            await node.start()
        await self._until(self._replica_in_sync, "the replica in sync")
        for sentinel in self.sentinels:
            await sentinel.start()
        await self._until(self._sentinels_ready, "the sentinels seeing each other and the replica")

    async def stop(self) -> None:
        for process in [*self.sentinels, *self.nodes.values()]:
            await process.stop()

    def client(self, port: int) -> aioredis.Redis:
        return aioredis.Redis(port=port, decode_responses=True, socket_timeout=2,
                              socket_connect_timeout=1)

    async def master_port(self) -> int:
        """The master the sentinels name now (the first one until they run)."""
        if not any(sentinel.alive for sentinel in self.sentinels):
            return self.first_master
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            client = self.client(sentinel.port)
            try:
                _, port = await client.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                return int(port)
            except (OSError, aioredis.RedisError):
                continue
            finally:
                await client.aclose()
        raise RuntimeError("no sentinel answers")

    async def replica_port(self) -> int:
        master = await self.master_port()
        return next(port for port in self.nodes if port != master)

    async def _replica_in_sync(self) -> bool:
        client = self.client(await self.replica_port())
        try:
            info: dict[str, Any] = await client.info("replication")
            return bool(info.get("master_link_status") == "up")
        finally:
            await client.aclose()

    async def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            client = self.client(sentinel.port)
            try:
                state = await client.execute_command("SENTINEL", "MASTER", MASTER_NAME)
            finally:
                await client.aclose()
            fields = dict(zip(state[::2], state[1::2], strict=True)) \
                if isinstance(state, list) else state
            if int(fields["num-slaves"]) < 1 or int(fields["num-other-sentinels"]) < 2:
                return False
        return True

    async def _until(self, check: Any, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)

    async def kill_master(self) -> int:
        """``kill -9`` the current master; returns its port."""
        port = await self.master_port()
        await self.nodes[port].kill9()
        return port

    async def wait_promoted(self, old_master: int, timeout: float = 30.0) -> float:
        """Seconds until the sentinels name another master than ``old_master``, and it says it
        is one."""
        started = time.monotonic()

        async def promoted() -> bool:
            port = await self.master_port()
            if port == old_master:
                return False
            client = self.client(port)
            try:
                return bool((await client.info("replication")).get("role") == "master")
            finally:
                await client.aclose()
        await self._until(promoted, "the replica's promotion", timeout)
        return time.monotonic() - started


@contextlib.asynccontextmanager
async def sentinel_set(directory: Path, wait_timeout_ms: int = 200
                       ) -> AsyncIterator[SentinelSet]:
    """Started, and stopped at the end even when the body fails."""
    deployment = SentinelSet(directory, wait_timeout_ms)
    try:
        await deployment.start()
        yield deployment
    finally:
        await deployment.stop()
