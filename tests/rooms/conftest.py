"""Fixtures for room tests: a RoomManager writing into a temporary directory, and participants
that are real aiortc peers (rooms.client.RoomPeer) bridged straight to the Room, no Socket.IO;
and `call`, a room opened through the real server's ACD, for tests over Socket.IO."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from rooms import passthrough
from rooms.client import RoomPeer
from rooms.manager import RoomManager
from rooms.room import Room, RoomMeta
from server.config import MediaConfig
from signaling.client import SignalingClient, login_cookie
from tests.support.rooms import Call

JoinFn = Callable[..., Awaitable[RoomPeer]]


@pytest.fixture
def media() -> MediaConfig:
    # YUNZHEN_MEDIA_FORWARDING runs the whole folder on one forwarding path or the other.
    return MediaConfig(announce_addresses=("127.0.0.1",), empty_room_timeout=30.0,
                       forwarding=os.environ.get("YUNZHEN_MEDIA_FORWARDING",
                                                  MediaConfig.forwarding))


@pytest.fixture
def closed_rooms() -> list[tuple[Room, dict[str, Any] | None]]:
    return []


@pytest.fixture
async def manager(media: MediaConfig, tmp_path: Path,
                  closed_rooms: list[tuple[Room, dict[str, Any] | None]],
                  ) -> AsyncIterator[RoomManager]:
    async def on_closed(room: Room, summary: dict[str, Any] | None) -> None:
        closed_rooms.append((room, summary))

    passthrough.install(media)
    rooms = RoomManager(media, tmp_path / "recordings", on_closed)
    yield rooms
    await rooms.close()


@pytest.fixture
async def room(manager: RoomManager) -> Room:
    return manager.open("r1", RoomMeta(ticket_id="t1", ticket_number="税A001",
                                       department="tax"))


@pytest.fixture
async def join() -> AsyncIterator[JoinFn]:
    peers: list[RoomPeer] = []

    async def join(room: Room, participant_id: str, role: str = "applicant",
                   name: str | None = None, **options: Any) -> RoomPeer:
        async def send_answer(sdp: str) -> None:
            await room.answer(participant_id, sdp)

        peer = RoomPeer(send_answer, name=name or participant_id, **options)
        peers.append(peer)
        await room.join(participant_id=participant_id, role=role, name=name or participant_id,
                        department=None, signal=peer.handle)
        return peer

    yield join
    for peer in peers:
        await peer.close()


@pytest.fixture
async def call(server: Any) -> AsyncIterator[Call]:
    """An applicant of 税务 whose call tax01 accepted: the room is open, nobody is in it yet."""
    kiosk = await SignalingClient.connect(server.url, "/kiosk")
    staff = await SignalingClient.connect(server.url, "/staff",
                                          await login_cookie(server.url, "tax01", "demo12345"))
    try:
        await staff.next("staff:state")
        ticket = (await kiosk.request("ticket:create",
                                      {"department": "tax", "consent": True}))["ticket"]
        await staff.request("presence:set", {"state": "available"})
        await staff.next("call:incoming")
        accepted = await staff.request("call:accept", {"ticket_id": ticket["ticket_id"]})
        update = await kiosk.next("ticket:update", status="connected")
        yield Call(room_id=accepted["room"]["room_id"], applicant_token=update["room"]["token"],
                   staff_token=accepted["room"]["token"])
    finally:
        await kiosk.close()
        await staff.close()
