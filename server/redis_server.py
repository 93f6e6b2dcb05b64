"""The private Redis the service starts on a fresh machine: a real redis-server process with AOF
persistence under the data directory and a maxmemory with `noeviction` (a full Redis refuses
writes rather than dropping queue state), started before the app, supervised while it runs
(restarted on the same port from its AOF when it dies) and stopped after it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import time
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)


# In the Redis directory while the private redis-server runs: its URL.
URL_FILE = "url"
# Seconds before each restart of a redis-server that died: at once the first time, then slower
# while it keeps dying (a full disk, a damaged AOF, the port taken) so it is not spun on.
RESTART_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
# A redis-server that ran this long before dying starts the delays over.
STABLE_S = 60.0
# How long a restarted redis-server may take to load its AOF before it is given up on.
RESTART_LOAD_TIMEOUT = 300.0


class RedisStartError(RuntimeError):
    """The private redis-server could not be started."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child process bound to 127.0.0.1 on a free port, data in `directory`."""

    def __init__(self, directory: Path, binary: str = "redis-server",
                 maxmemory_mb: int = 512) -> None:
        self.directory = directory
        self.binary = binary
        self.maxmemory_mb = maxmemory_mb
        # Chosen now so the URL is known before the server starts (Socket.IO's Redis manager
        # is built with the app).
        self.port = _free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 10.0) -> None:
        await self._launch(timeout)
        # The command line (python -m server accounts/audit) finds the running service's Redis
        # here; it is bound to 127.0.0.1 and the data directory is the service's own.
        url_file = self.directory / URL_FILE
        url_file.write_text(self.url + "\n")
        url_file.chmod(0o600)
        logger.info("private redis-server pid %s on %s, data in %s",
                    self.pid, self.url, self.directory)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def _launch(self, timeout: float) -> None:
        """Start redis-server on this port and wait until it answers (a restarted one answers
        LOADING while it reads its AOF: that is waited out too); on failure nothing is left
        running."""
        path = shutil.which(self.binary)
        if path is None:
            raise RedisStartError(
                f"{self.binary} not found: install it (apt-get install redis-server) "
                "or set YUNZHEN_REDIS_URL to an existing Redis"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        # Under `setpriv --pdeathsig TERM` (util-linux, in every Debian), which execs
        # redis-server in its place: if this process dies without stopping it (kill -9, a
        # crash), the kernel sends it SIGTERM, so it flushes its AOF and exits instead of living
        # on beside the next start's redis-server on the same AOF directory.
        setpriv = shutil.which("setpriv")
        args = [
            *((setpriv, "--pdeathsig", "TERM") if setpriv else ()),
            path, "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--protected-mode", "yes", "--daemonize", "no",
            "--maxmemory", f"{self.maxmemory_mb}mb", "--maxmemory-policy", "noeviction",
            "--logfile", str((self.directory / "redis.log").resolve()),
        ]
        process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._process = process
        # Each ping is short: something else listening on the port (it was taken while the
        # server was down) accepts the connection but never answers.
        client = aioredis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                if process.returncode is not None:
                    raise RedisStartError(
                        f"redis-server exited with {process.returncode}; "
                        f"see {self.directory / 'redis.log'}"
                    )
                try:
                    if await client.ping():
                        break
                except (OSError, RedisConnectionError, RedisTimeoutError):
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RedisStartError(f"redis-server did not answer within {timeout} s")
                await asyncio.sleep(0.05)
        except BaseException:
            await self._terminate(process)
            raise
        finally:
            await client.aclose()

    async def supervise(self) -> None:
        """Restart redis-server on the same port, from its AOF, whenever it dies, until
        cancelled (then it is left to `stop`). An outage is logged once when it starts and
        once when it ends, however many restarts it takes."""
        delays = 0
        while True:
            process = self._process
            if process is None:
                return
            started = time.monotonic()
            code = await process.wait()
            if time.monotonic() - started > STABLE_S:
                delays = 0
            died = time.monotonic()
            logger.warning("private redis-server (pid %s) exited with %s; restarting it on %s "
                           "from its AOF", process.pid, code, self.url)
            warned = False
            while True:
                await asyncio.sleep(RESTART_DELAYS[min(delays, len(RESTART_DELAYS) - 1)])
                delays += 1
                try:
                    await self._launch(RESTART_LOAD_TIMEOUT)
                    break
                except (RedisStartError, OSError) as exc:
                    if not warned:
                        logger.warning("restarting the private redis-server failed (%s); "
                                       "trying again, more slowly", exc)
                    warned = True
            logger.info("private redis-server restarted (pid %s) %.1f s after it exited",
                        self.pid, time.monotonic() - died)

    async def stop(self) -> None:
        process, self._process = self._process, None
        (self.directory / URL_FILE).unlink(missing_ok=True)
        if process is None or process.returncode is not None:
            return
        await self._terminate(process)
        logger.info("private redis-server stopped")

    @staticmethod
    async def _terminate(process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        # SIGTERM makes redis-server flush the AOF before it exits.
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, 9)
            await process.wait()
