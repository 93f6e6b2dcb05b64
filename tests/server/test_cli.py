"""The service as a user starts it: `python -m server serve --demo`, its own Redis included; without
--demo it needs an admin account first, made with `python -m server accounts`, which also changes
accounts while the service runs."""

import asyncio
import functools
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from recordings.audit import AUDIT
from server.seed import DEMO_PASSWORD
from signaling.accounts import AccountPolicy, Accounts
from signaling.client import SignalingClient, login_cookie
from signaling.store import Store
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

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


# accounts ----------------------------------------------------------------------------------------
def _accounts(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "YUNZHEN_DATA_DIR": str(tmp_path / "data"), **env}
    if "YUNZHEN_REDIS_URL" not in env:
        environ.pop("YUNZHEN_REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "server", "accounts", *args], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=60)


def _one_time_password(output: str) -> str:
    return output.split("one-time password: ")[1].split()[0]


def test_serve_without_demo_refuses_to_start_until_an_admin_account_exists(
        tmp_path: Path) -> None:
    process = _serve(tmp_path, "--port", str(_free_port()))
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    assert "No enabled admin account" in output
    assert "python -m server accounts add admin --name 管理员 --role admin" in output
    # The private Redis the check started is stopped again.
    assert not (tmp_path / "data" / "redis" / "redis.url").exists()

    created = _accounts(tmp_path, "add", "admin", "--name", "管理员", "--role", "admin")
    assert created.returncode == 0, created.stderr
    assert len(_one_time_password(created.stdout)) >= 10
    assert "shown only this once" in created.stdout

    port = _free_port()
    process = _serve(tmp_path, "--port", str(port))
    try:
        banner = _wait_for_banner(process)
        assert "demo12345" not in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0

    # Disabled, the only admin no longer opens the service.
    disabled = _accounts(tmp_path, "disable", "admin")
    assert disabled.returncode == 0 and "No enabled admin account is left" in disabled.stdout
    process = _serve(tmp_path, "--port", str(_free_port()))
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2 and "No enabled admin account" in output


async def test_the_accounts_command_adds_lists_and_changes_accounts_and_audits_it(
        tmp_path: Path, redis_url: str, store: Store) -> None:
    env = {"YUNZHEN_REDIS_URL": redis_url}
    run = functools.partial(_accounts, tmp_path, **env)
    added = await asyncio.to_thread(run, "add", "wangfang", "--name", "王芳", "--role",
                                    "staff", "--departments", "tax,market")
    assert added.returncode == 0, added.stderr
    password = _one_time_password(added.stdout)
    accounts = Accounts(store.redis, AccountPolicy())
    signed = await accounts.sign_in("wangfang", password, "", "127.0.0.1")
    assert signed.stage == "password" and signed.user.departments == ("tax", "market")

    listed = await asyncio.to_thread(run, "list")
    assert listed.returncode == 0
    [row] = [line for line in listed.stdout.splitlines() if line.startswith("wangfang")]
    assert "staff" in row and "tax,market" in row and "must change password" in row

    # Refusals: exit 1 with the reason; usage errors: exit 2.
    for args, reason in ((("add", "wangfang", "--name", "王芳", "--role", "staff",
                           "--departments", "tax"), "username is taken"),
                         (("add", "lisi", "--name", "李四", "--role", "staff"),
                          "坐席至少属于一个部门"),
                         (("add", "lisi", "--name", "李四", "--role", "staff", "--departments",
                           "nowhere"), "没有这些部门"),
                         (("disable", "nobody"), "No such account")):
        refused = await asyncio.to_thread(run, *args)
        assert refused.returncode == 1 and reason in refused.stderr, (args, refused.stderr)
    for usage in (("add", "lisi", "--name", "李四", "--role", "root"), ("add", "lisi"),
                  ("frobnicate",)):
        assert (await asyncio.to_thread(run, *usage)).returncode == 2

    for verb in ("disable", "enable", "unlock", "reset-2fa"):
        done = await asyncio.to_thread(run, verb, "wangfang")
        assert done.returncode == 0, (verb, done.stderr)
    reset = await asyncio.to_thread(run, "reset-password", "wangfang")
    assert reset.returncode == 0
    assert (await accounts.sign_in("wangfang", _one_time_password(reset.stdout), "",
                                   "127.0.0.1")).stage == "password"

    entries = await stream_entries(store.redis, AUDIT)
    assert [e["action"] for e in entries] == [
        "account_create", "account_disable", "account_enable", "account_unlock", "totp_reset",
        "password_reset"]
    assert {(e["who"], e["remote"], e["target"]) for e in entries} == {
        (f"cli:{getpass.getuser()}", "local", "wangfang")}
    assert json.loads(entries[1]["after"])["disabled"] is True


async def test_disabling_from_the_command_line_closes_the_running_service_s_desk(
        tmp_path: Path, redis_url: str, server: LiveServer) -> None:
    cookie = await login_cookie(server.url, "tax01", DEMO_PASSWORD)
    desk = await SignalingClient.connect(server.url, "/staff", cookie)
    try:
        await desk.next("staff:state")
        done = await asyncio.to_thread(_accounts, tmp_path, "disable", "tax01",
                                       YUNZHEN_REDIS_URL=redis_url)
        assert done.returncode == 0, done.stderr
        assert (await desk.next("session:ended"))["reason"] == "disabled"
        for _ in range(100):
            if not desk.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not desk.sio.connected
    finally:
        await desk.close()
