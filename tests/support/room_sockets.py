"""Rooms without calls, for tests: a room opened on the server's RoomManager and tokens made in
the room directory as calls make them, and signaling-only participants (no peer connection on
their side) or media ones, closed at the end."""

from __future__ import annotations

from typing import Any

from rooms.client import RoomClient
from rooms.room import Room, RoomMeta
from server.keys import DIRECTORY, ROOMS
from signaling.client import SignalingClient


def open_room(server: Any, room_id: str) -> Room:
    room: Room = server.app[ROOMS].open(room_id, RoomMeta(
        ticket_id=f"t-{room_id}", ticket_number="税A900", department="tax"))
    return room


async def token(server: Any, room_id: str, participant_id: str, role: str = "staff") -> str:
    return str(await server.app[DIRECTORY].create_token(
        room_id, role=role, participant_id=participant_id, name=participant_id,
        department="tax", ticket_id=f"t-{room_id}"))


class Sockets:
    """Signaling-only participants (no peer connection on their side), closed at the end."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.clients: list[SignalingClient | RoomClient] = []

    async def socket(self) -> SignalingClient:
        client = await SignalingClient.connect(self.server.url, "/room")
        self.clients.append(client)
        return client

    async def joined(self, room_id: str, participant_id: str, role: str = "staff"
                     ) -> tuple[SignalingClient, dict[str, Any]]:
        client = await self.socket()
        answer = await client.request("room:join", {
            "room_id": room_id, "token": await token(self.server, room_id, participant_id, role)})
        return client, answer

    async def media(self, room_id: str, participant_id: str, *, video: bool = True
                    ) -> RoomClient:
        client = await RoomClient.connect(self.server.url, room_id,
                                          await token(self.server, room_id, participant_id),
                                          name=participant_id, video=video,
                                          width=160, height=120)
        self.clients.append(client)
        return client
