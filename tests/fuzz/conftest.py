"""The fuzz tests' server: the real service in this process, its log watched from before it starts,
with the sign-in lockouts raised so that the fuzzer's wrong passwords reach the handlers instead
of a lockout."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from server.config import Config
from tests.fuzz.harness import LogTally
from tests.support.server import LiveServer, start_server


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, lockout_failures=100, address_failures=10_000)


@pytest.fixture
def log_tally() -> Iterator[LogTally]:
    tally = LogTally()
    root = logging.getLogger()
    root.addHandler(tally)
    try:
        yield tally
    finally:
        root.removeHandler(tally)


@pytest.fixture
async def server(config: Config, redis_client: object, log_tally: LogTally
                 ) -> AsyncIterator[LiveServer]:
    live = await start_server(config)
    try:
        yield live
    finally:
        await live.runner.cleanup()
