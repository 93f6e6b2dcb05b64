"""The private Redis the service starts on a fresh machine: a real redis-server process with AOF
persistence under the data directory and a maxmemory with `noeviction` (a full Redis refuses
writes rather than dropping queue state), started before the app and stopped after it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
from pathlib import Path

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)


# In the Redis directory while the private redis-server runs: its URL.
URL_FILE = "url"


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
        path = shutil.which(self.binary)
        if path is None:
            raise RedisStartError(
                f"{self.binary} not found: install it (apt-get install redis-server) "
                "or set YUNZHEN_REDIS_URL to an existing Redis"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            path, "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--protected-mode", "yes", "--daemonize", "no",
            "--maxmemory", f"{self.maxmemory_mb}mb", "--maxmemory-policy", "noeviction",
            "--logfile", str((self.directory / "redis.log").resolve()),
        ]
        self._process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = aioredis.from_url(self.url)
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                if self._process.returncode is not None:
                    raise RedisStartError(
                        f"redis-server exited with {self._process.returncode}; "
                        f"see {self.directory / 'redis.log'}"
                    )
                try:
                    if await client.ping():
                        break
                except (OSError, aioredis.ConnectionError):
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RedisStartError(f"redis-server did not answer within {timeout} s")
                await asyncio.sleep(0.05)
        except BaseException:
            await self.stop()
            raise
        finally:
            await client.aclose()
        # The command line (python -m server accounts/audit) finds the running service's Redis
        # here; it is bound to 127.0.0.1 and the data directory is the service's own.
        url_file = self.directory / URL_FILE
        url_file.write_text(self.url + "\n")
        url_file.chmod(0o600)
        logger.info("private redis-server pid %s on %s, data in %s",
                    self._process.pid, self.url, self.directory)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        (self.directory / URL_FILE).unlink(missing_ok=True)
        # SIGTERM makes redis-server flush the AOF before it exits.
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, 9)
            await process.wait()
        logger.info("private redis-server stopped")
