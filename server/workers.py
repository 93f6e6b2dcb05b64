"""The launcher of `python -m server serve --workers N`: one Redis (the private redis-server, or
the configured one), N worker processes (`serve` on 127.0.0.1 ports of their own, named w1…wN),
and nginx in front of them on the public host:port (server/nginx.py). A worker that dies is
started again under the same name and port (it is a new node: a fresh node id); SIGINT or
SIGTERM stops the workers, then nginx, then Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from server.config import Config, ConfigError
from server.nginx import NginxNode, render
from server.redis_server import EmbeddedRedis

logger = logging.getLogger(__name__)

MAX_WORKERS = 64
# How long a worker (its Redis set up, demo data seeded) and nginx may take to answer /healthz.
START_TIMEOUT_S = 60.0
# How long stopping processes get before they are killed.
STOP_TIMEOUT_S = 20.0
# Seconds before a dead worker or nginx is started again, growing while it keeps dying.
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


class LaunchError(RuntimeError):
    """Something the launcher needs could not be started."""


def worker_count(text: str) -> int:
    """`--workers`: a number from 1 to MAX_WORKERS, or auto (one per CPU core)."""
    if text == "auto":
        return max(1, min(os.cpu_count() or 1, MAX_WORKERS))
    try:
        count = int(text)
    except ValueError:
        raise ConfigError(f"--workers: {text!r} is not a number or auto") from None
    if not 1 <= count <= MAX_WORKERS:
        raise ConfigError(f"--workers: {count} is not between 1 and {MAX_WORKERS}")
    return count


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Worker:
    """One worker process: its name, port, and the process now running under that name."""
    name: str
    port: int
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class Launcher:
    def __init__(self, config: Config, count: int, *, config_path: Path | None,
                 demo: bool) -> None:
        self.config, self.count = config, count
        self._config_path, self._demo = config_path, demo
        self._embedded = None if config.external_redis else EmbeddedRedis(
            config.redis_dir, config.redis_server_binary, config.redis_maxmemory_mb)
        # The private one's URL goes to the workers; a configured URL or Sentinel they read from
        # the same configuration as the launcher.
        self.redis_url = self._embedded.url if self._embedded else config.redis_url
        self.workers = [Worker(f"w{i}", _free_port()) for i in range(1, count + 1)]
        self.nginx_dir = (config.data_dir / "nginx").resolve()
        self._nginx: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()

    # processes ----------------------------------------------------------------------------------
    def _worker_env(self, worker: Worker) -> dict[str, str]:
        env = dict(os.environ)
        if self._embedded is not None:
            env["YUNZHEN_REDIS_URL"] = self._embedded.url
        env["YUNZHEN_NODE_NAME"] = worker.name
        env["YUNZHEN_NODE_PATH"] = f"/n/{worker.name}"
        # Browsers reach the workers through nginx: the public origins, not the worker's port;
        # nginx on this machine is a proxy whose X-Forwarded-For is believed.
        env["YUNZHEN_PUBLIC_ORIGINS"] = ",".join(self.config.origins)
        env["YUNZHEN_TRUSTED_PROXIES"] = ",".join(
            dict.fromkeys((*self.config.trusted_proxies, "127.0.0.1")))
        return env

    async def _start_worker(self, worker: Worker) -> None:
        args = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1",
                "--port", str(worker.port)]
        if self._config_path is not None:
            args += ["--config", str(self._config_path)]
        if self._demo:
            args.append("--demo")
        # A session of its own: Ctrl+C reaches the launcher alone, which stops the workers in
        # order (before nginx and Redis).
        worker.process = await asyncio.create_subprocess_exec(
            *args, env=self._worker_env(worker), stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True)
        worker.started_at = time.monotonic()
        logger.info("worker %s: pid %s on %s", worker.name, worker.process.pid, worker.address)

    async def _healthy(self, address: str, process: asyncio.subprocess.Process | None) -> None:
        """Wait until http://address/healthz answers (200 or 503: the process is up)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
            while True:
                if process is not None and process.returncode is not None:
                    raise LaunchError(f"{address}: exited with {process.returncode} at start")
                try:
                    async with client.get(f"http://{address}/healthz") as response:
                        if response.status in (200, 503):
                            return
                except (aiohttp.ClientError, TimeoutError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise LaunchError(f"{address}: no answer within {START_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.1)

    def nginx_conf(self) -> Path:
        self.nginx_dir.mkdir(parents=True, exist_ok=True)
        path = self.nginx_dir / "nginx.conf"
        host = self.config.host
        listen = f"[{host}]:{self.config.port}" if ":" in host else f"{host}:{self.config.port}"
        path.write_text(render([NginxNode(w.name, w.address) for w in self.workers], listen,
                               self.nginx_dir, self.nginx_dir), encoding="utf-8")
        return path

    async def _start_nginx(self) -> asyncio.subprocess.Process:
        binary = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
        if binary is None:
            raise LaunchError("nginx not found: install it (apt-get install nginx)")
        conf = self.nginx_conf()
        # -p: nginx's prefix (relative paths, and the error log before the config is read).
        process = await asyncio.create_subprocess_exec(
            binary, "-p", str(self.nginx_dir), "-c", str(conf), "-g", "daemon off;",
            stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        logger.info("nginx: pid %s on %s:%s", process.pid, self.config.host, self.config.port)
        return process

    # running ----------------------------------------------------------------------------------
    async def run(self, banner: str) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        supervisor: asyncio.Task[None] | None = None
        watchers: list[asyncio.Task[None]] = []
        try:
            if self._embedded is not None:
                await self._embedded.start()
                supervisor = asyncio.create_task(self._embedded.supervise(),
                                                 name="redis-supervisor")
            # The first worker alone first: it seeds the demo data and the departments file,
            # which the others then find.
            first, *others = self.workers
            await self._start_worker(first)
            await self._healthy(first.address, first.process)
            for worker in others:
                await self._start_worker(worker)
            for worker in others:
                await self._healthy(worker.address, worker.process)
            self._nginx = await self._start_nginx()
            await self._healthy(f"127.0.0.1:{self.config.port}"
                                if self.config.host in ("0.0.0.0", "::")
                                else f"{self.config.host}:{self.config.port}", self._nginx)
            print(banner, flush=True)
            watchers = [asyncio.create_task(self._watch_worker(w), name=f"watch-{w.name}")
                        for w in self.workers]
            watchers.append(asyncio.create_task(self._watch_nginx(), name="watch-nginx"))
            await self._stopping.wait()
            logger.info("stopping %d worker(s), nginx and Redis", len(self.workers))
            return 0
        except (LaunchError, OSError) as exc:
            print(f"could not start: {exc}", file=sys.stderr)
            return 1
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await self._stop_all()
            if supervisor is not None:
                supervisor.cancel()
                await asyncio.gather(supervisor, return_exceptions=True)
            if self._embedded is not None:
                await self._embedded.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _watch_worker(self, worker: Worker) -> None:
        """Start the worker again (same name and port, a new node id) whenever it dies."""
        while True:
            process = worker.process
            assert process is not None
            code = await process.wait()
            delay = RESTART_DELAYS[min(worker.restarts, len(RESTART_DELAYS) - 1)]
            if time.monotonic() - worker.started_at > 60:
                delay = RESTART_DELAYS[0]
            worker.restarts += 1
            logger.warning("worker %s (pid %s) exited with %s; starting it again in %.1f s",
                           worker.name, process.pid, code, delay)
            await asyncio.sleep(delay)
            await self._start_worker(worker)

    async def _watch_nginx(self) -> None:
        restarts = 0
        while True:
            assert self._nginx is not None
            code = await self._nginx.wait()
            delay = RESTART_DELAYS[min(restarts, len(RESTART_DELAYS) - 1)]
            restarts += 1
            logger.warning("nginx exited with %s; starting it again in %.1f s", code, delay)
            await asyncio.sleep(delay)
            self._nginx = await self._start_nginx()

    async def _stop_all(self) -> None:
        """Workers first (they finish their rooms' recordings while Redis is there), then
        nginx."""
        running = [w.process for w in self.workers if w.process is not None]
        await asyncio.gather(*(_stop(p, signal.SIGTERM) for p in running))
        if self._nginx is not None:
            # SIGQUIT: nginx's graceful stop (SIGTERM would be its fast one; either is fine here).
            await _stop(self._nginx, signal.SIGQUIT)


async def _stop(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        logger.warning("pid %s did not stop within %.0f s: killed", process.pid, STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
