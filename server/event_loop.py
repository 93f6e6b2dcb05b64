"""The event loop a serving process (`serve`, each worker) runs on: uvloop by default, asyncio's
own as the fallback (``event_loop = "asyncio"``).

Everything a serving process does goes through its one event loop: every Socket.IO message in or
out, every Redis reply, and every RTP and RTCP datagram of every call (rooms/passthrough.py
receives and sends them from the loop's datagram callbacks). uvloop does that part (readiness,
reading and writing sockets, timers, callbacks) in C on libuv, with the asyncio interface the
rest of the code is written against; what runs between two callbacks is unchanged.
bench/event_loop.py measures the two loops side by side on the dispatch and the RTP paths
(bench/results/event_loop.json).

The hooks of rooms/passthrough.py need nothing from the loop beyond that interface: aioice's
datagram protocol instance gets its ``datagram_received`` shadowed, and uvloop's UDP transport
calls the instance's attribute like asyncio's does (tests/server/test_event_loop.py checks it).
"""

from __future__ import annotations

import asyncio

LOOPS = ("uvloop", "asyncio")


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new event loop of ``kind`` (one of LOOPS)."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if kind == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"unknown event loop {kind!r}: one of {', '.join(LOOPS)}")


def name(loop: asyncio.AbstractEventLoop) -> str:
    """Which of LOOPS ``loop`` is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
