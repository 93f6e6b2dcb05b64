"""Bad input on the /room namespace, through real sockets against the real server: each gets a
structured error, and the room it was aimed at goes on (its participants keep decoding each
other's media, nobody gets what was refused).

Rooms are opened on the server's RoomManager and tokens made in the room directory as calls are,
so that several rooms and roles are at hand without calls through the queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rooms.client import RoomClient
from rooms.room import MAX_PUBLISHERS
from tests.support.room_sockets import Sockets, open_room, token


@pytest.fixture
async def sockets(server: Any) -> AsyncIterator[Sockets]:
    holder = Sockets(server)
    yield holder
    for client in holder.clients:
        await client.close()


def refused(answer: dict[str, Any], code: str) -> None:
    assert answer["ok"] is False, answer
    assert answer["error"]["code"] == code, answer
    assert answer["error"]["message"] and answer["error"]["message_en"], answer


async def still_flowing(*clients: RoomClient, frames: int = 15) -> None:
    """Every client decodes more video of every other than it had."""
    for client in clients:
        for other in clients:
            if other is client:
                continue
            pid = other.participant_id or ""
            before = client.stats().get(pid, {}).get("video_frames", 0)
            await client.wait_for_video(before + frames, timeout=10, participant_id=pid)


async def test_a_malformed_answer_is_refused_and_the_room_goes_on(
        server: Any, sockets: Sockets) -> None:
    room = open_room(server, "ra")
    applicant = await sockets.media("ra", "a-1")
    desk = await sockets.media("ra", "s-1")
    await still_flowing(applicant, desk)

    guide, _ = await sockets.joined("ra", "g-1", role="guide")
    await guide.next("room:offer")
    for sdp in ("v=0\r\nthis is not sdp\r\n", "", "x" * 70_000):
        answer = await guide.call("room:answer", {"sdp": sdp})
        assert answer["ok"] is False
        assert answer["error"]["code"] == "invalid_payload", answer
    # Not an answer to anything: a second offer is not pending either.
    await still_flowing(applicant, desk)
    assert {p["participant_id"] for p in room.participants_info()} == {"a-1", "s-1", "g-1"}
    assert not room.closed


async def test_events_on_a_socket_outside_the_room_are_refused(
        server: Any, sockets: Sockets) -> None:
    open_room(server, "ra")
    open_room(server, "rb")
    inside, _ = await sockets.joined("ra", "s-1")
    await inside.next("room:offer")

    # A socket that joined no room.
    stranger = await sockets.socket()
    refused(await stranger.call("room:answer", {"sdp": "v=0\r\n"}), "unauthenticated")
    refused(await stranger.call("room:chat", {"text": "有人吗"}), "unauthenticated")
    refused(await stranger.call("room:media", {"audio": False, "video": False}),
            "unauthenticated")

    # A socket in room B: what it sends stays in room B, and room A's token is no good to it.
    other, _ = await sockets.joined("rb", "s-2")
    await other.next("room:offer")
    sent = await other.call("room:chat", {"text": "只发给B房间"})
    assert sent["ok"] is True
    assert (await other.next("room:chat"))["text"] == "只发给B房间"
    refused(await other.call("room:join", {"room_id": "ra",
                                           "token": await token(server, "ra", "s-3")}),
            "bad_state")
    # Its answer goes to its own participant in room B (whose offer waits: the SDP is bad),
    # never to room A.
    refused(await other.call("room:answer", {"sdp": "v=0\r\n"}), "invalid_payload")
    await asyncio.sleep(0.5)
    assert inside.queue("room:chat").empty()


async def test_a_token_for_another_room_is_forbidden(server: Any, sockets: Sockets) -> None:
    room_a = open_room(server, "ra")
    room_b = open_room(server, "rb")
    client = await sockets.socket()
    token_a = await token(server, "ra", "s-1")
    refused(await client.call("room:join", {"room_id": "rb", "token": token_a}), "forbidden")
    refused(await client.call("room:join", {"room_id": "rb", "token": "not-a-token"}),
            "forbidden")
    refused(await client.call("room:join", {"room_id": "nowhere", "token": token_a}),
            "forbidden")
    assert room_a.participants_info() == [] and room_b.participants_info() == []
    # The refused socket can still join the room its token is for.
    joined = await client.request("room:join", {"room_id": "ra", "token": token_a})
    assert joined["participant_id"] == "s-1"


async def test_a_ninth_publisher_is_refused_as_room_full_and_the_eight_go_on(
        server: Any, sockets: Sockets) -> None:
    room = open_room(server, "ra")
    # Two participants with media, six signaling-only ones (no peer connection of their own,
    # to keep the test light): eight publishers.
    first = await sockets.media("ra", "p-1")
    second = await sockets.media("ra", "p-2")
    for n in range(3, MAX_PUBLISHERS + 1):
        await sockets.joined("ra", f"p-{n}")
    assert len(room.participants_info()) == MAX_PUBLISHERS
    await still_flowing(first, second)

    ninth = await sockets.socket()
    refused(await ninth.call("room:join", {"room_id": "ra",
                                           "token": await token(server, "ra", "p-9")}),
            "room_full")
    # Refused before anything changed: the ninth is nowhere, its socket is in no room.
    assert len(room.participants_info()) == MAX_PUBLISHERS
    assert room.participant("p-9") is None
    refused(await ninth.call("room:chat", {"text": "我也要进"}), "unauthenticated")
    await still_flowing(first, second)
    # An observer still fits: observers are counted apart.
    _, joined = await sockets.joined("ra", "v-1", role="supervisor")
    assert len(joined["participants"]) == MAX_PUBLISHERS + 1


async def test_an_observer_may_not_chat_share_or_unmute(server: Any, sockets: Sockets) -> None:
    room = open_room(server, "ra")
    desk, _ = await sockets.joined("ra", "s-1")
    observer, joined = await sockets.joined("ra", "v-1", role="supervisor")
    assert joined["role"] == "supervisor"
    refused(await observer.call("room:chat", {"text": "我在旁听"}), "forbidden")
    refused(await observer.call("room:share", {"on": True}), "forbidden")
    refused(await observer.call("room:media", {"audio": True, "video": True}), "forbidden")
    await asyncio.sleep(0.3)
    assert desk.queue("room:chat").empty()
    info = {p["participant_id"]: p for p in room.participants_info()}
    assert info["v-1"]["observer"] is True and info["v-1"]["sharing"] is False
    assert info["v-1"]["muted"] is True and info["v-1"]["camera_off"] is True
    # The desk still chats.
    assert (await desk.call("room:chat", {"text": "您好"}))["ok"] is True
