"""The serving process's event loop (server/event_loop.py): `serve` runs on uvloop unless
`event_loop = "asyncio"` says otherwise, and says which in its log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server import event_loop
from tests.support.harness import ServerProcess


@pytest.mark.parametrize("kind", event_loop.LOOPS)
def test_new_loop_makes_the_loop_it_names(kind: str) -> None:
    loop = event_loop.new_loop(kind)
    try:
        assert event_loop.name(loop) == kind
        assert loop.run_until_complete(asyncio.sleep(0, result="ran")) == "ran"
    finally:
        loop.close()


def test_an_unknown_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="tokio"):
        event_loop.new_loop("tokio")


@pytest.mark.parametrize(("env", "kind"), [({}, "uvloop"),
                                           ({"YUNZHEN_EVENT_LOOP": "asyncio"}, "asyncio")])
async def test_serve_runs_on_the_configured_loop_and_logs_it(
        redis_url: str, tmp_path: Path, env: dict[str, str], kind: str) -> None:
    server = ServerProcess(redis_url, tmp_path / "data", **env)
    await server.start()
    try:
        log = server.log_path.read_text(encoding="utf-8")
        assert f"event loop: {kind}" in log
        assert f"event loop: {'asyncio' if kind == 'uvloop' else 'uvloop'}" not in log
    finally:
        await server.stop()
