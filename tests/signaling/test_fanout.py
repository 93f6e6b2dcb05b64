"""The fan-out sends only declared outbound events, and docs/protocol.md lists them as declared."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from signaling.accounts import AccountPolicy, Accounts
from signaling.fanout import Fanout
from signaling.schema import OUTBOUND
from signaling.snapshots import Snapshots
from signaling.store import Store

ROOT = Path(__file__).resolve().parent.parent.parent
# The heading of each server → client table in docs/protocol.md, by namespace.
AUDIENCES = {"/kiosk": "applicant", "/staff": "staff", "/room": "participant"}


class RecordingServer:
    """Stands in for the Socket.IO server: keeps what would have been sent."""

    manager = None  # no other processes to send to

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, str, str]] = []

    async def emit(self, event: str, data: Any, *, to: str, namespace: str,
                   ignore_queue: bool = False) -> None:
        self.sent.append((event, data, to, namespace))


def documented_events(audience: str) -> set[str]:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    table = text.split(f"Server → {audience}:", 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^\| `([a-z_]+:[a-z_]+)` \|", table, re.M))


@pytest.mark.parametrize("namespace", sorted(AUDIENCES))
def test_protocol_md_lists_every_outbound_event(namespace: str) -> None:
    assert documented_events(AUDIENCES[namespace]) == set(OUTBOUND[namespace])


async def test_an_undeclared_event_is_refused_and_nothing_is_sent(store: Store) -> None:
    sio = RecordingServer()
    fanout = Fanout(sio, store, Snapshots(store),  # type: ignore[arg-type]
                    Accounts(store.redis, AccountPolicy()))
    with pytest.raises(ValueError, match="not a declared outbound event"):
        await fanout.to_participant("sid1", "room:secret", {})
    await fanout.to_participant("sid1", "room:ended", {"reason": "replaced"})
    await fanout.callback_done(("tax", "tax-b"), "cb1")
    assert sio.sent == [
        ("room:ended", {"reason": "replaced"}, "sid1", "/room"),
        ("callback:done", {"callback_id": "cb1"}, "dept:tax", "/staff"),
        ("callback:done", {"callback_id": "cb1"}, "dept:tax-b", "/staff")]
