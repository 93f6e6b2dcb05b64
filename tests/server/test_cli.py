"""The service as a user starts it: `python -m server serve --demo`, its own Redis included."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "YUNZHEN_DATA_DIR": str(tmp_path / "data"), **env}
    environ.pop("YUNZHEN_REDIS_URL", None) if "YUNZHEN_REDIS_URL" not in env else None
    return subprocess.Popen([sys.executable, "-m", "server", "serve", *args], cwd=ROOT,
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait_for_banner(process: subprocess.Popen[str], timeout: float = 30) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "Press Ctrl+C" in line:
            return "".join(seen)
    process.kill()
    pytest.fail("the server did not start:\n" + "".join(seen))


def test_serve_starts_its_own_redis_seeds_demo_data_and_prints_the_urls(tmp_path: Path) -> None:
    port = _free_port()
    process = _serve(tmp_path, "--demo", "--port", str(port))
    try:
        banner = _wait_for_banner(process)
        assert f"http://127.0.0.1:{port}/staff" in banner
        assert f"http://127.0.0.1:{port}/supervisor" in banner
        assert "tax01" in banner and "demo12345" in banner
        assert "auditor" in banner and "no second factor" in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/departments",
                                    timeout=5) as response:
            assert b"estate" in response.read()
        # The private Redis keeps its data with AOF persistence under the data directory.
        redis_dir = tmp_path / "data" / "redis"
        assert list(redis_dir.glob("appendonly*")), list(redis_dir.iterdir())
        redis_port = int(banner.split("redis://127.0.0.1:")[1].split("/")[0])
        assert _listening(redis_port)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
    # Stopping the service stops its Redis.
    assert not _listening(redis_port)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_uses_an_external_redis_when_given_one(tmp_path: Path, redis_url: str) -> None:
    port = _free_port()
    process = _serve(tmp_path, "--demo", "--port", str(port), YUNZHEN_REDIS_URL=redis_url)
    try:
        _wait_for_banner(process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        assert not (tmp_path / "data" / "redis").exists()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def test_a_bad_configuration_stops_the_start_with_a_message(tmp_path: Path) -> None:
    process = _serve(tmp_path, YUNZHEN_PORT="eighty")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "configuration error: port" in output
