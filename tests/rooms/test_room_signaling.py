"""The /room namespace's events besides negotiation, through the real server: chat (every
participant gets every line, bad lines are refused, the timeline keeps the conversation) and the
microphone / camera state everybody is shown; room:share payloads (screen share itself is tested
with real peers in test_room_share.py and in Chromium)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from signaling.client import SignalingClient
from tests.support.recordings import finished_timeline
from tests.support.rooms import Call


async def _join(server: Any, room_id: str, token: str) -> tuple[SignalingClient, dict[str, Any]]:
    client = await SignalingClient.connect(server.url, "/room")
    answer = await client.request("room:join", {"room_id": room_id, "token": token})
    return client, answer


async def test_chat_reaches_everyone_and_is_kept_in_the_timeline(
        server: Any, call: Call, config: Any) -> None:
    applicant, joined = await _join(server, call.room_id, call.applicant_token)
    desk, desk_joined = await _join(server, call.room_id, call.staff_token)
    try:
        answer = await applicant.request("room:chat", {"text": "  请问需要带什么材料？ "})
        assert isinstance(answer["t"], float)
        for client in (applicant, desk):
            message = await client.next("room:chat")
            assert message == {"participant_id": joined["participant_id"], "name": message["name"],
                               "role": "applicant", "text": "请问需要带什么材料？",
                               "t": answer["t"]}
        await desk.request("room:chat", {"text": "身份证和申报表。" + "好" * 492})
        for client in (applicant, desk):
            message = await client.next("room:chat")
            assert message["participant_id"] == desk_joined["participant_id"]
            assert message["role"] == "staff" and message["name"] == "税务坐席01"
            assert len(message["text"]) == 500
        # A participant who comes back (a reloaded page) is given the conversation so far.
        await applicant.close()
        applicant, rejoined = await _join(server, call.room_id, call.applicant_token)
        assert [m["role"] for m in rejoined["chat"]] == ["applicant", "staff"]
        assert rejoined["chat"][0]["text"] == "请问需要带什么材料？"
        assert joined["chat"] == []
        await desk.request("room:hangup", {})
        await applicant.next("room:ended")
    finally:
        await applicant.close()
        await desk.close()

    timeline = await finished_timeline(Path(config.recordings_dir), call.room_id)
    chats = [e for e in timeline["events"] if e["type"] == "chat"]
    assert [(e["role"], e["text"][:8]) for e in chats] == [
        ("applicant", "请问需要带什么材"), ("staff", "身份证和申报表。")]
    assert chats[0]["participant_id"] == joined["participant_id"]
    assert chats[0]["t"] <= chats[1]["t"]


async def test_bad_chat_lines_are_refused_and_nobody_hears_them(server: Any, call: Call) -> None:
    outsider = await SignalingClient.connect(server.url, "/room")
    applicant, _ = await _join(server, call.room_id, call.applicant_token)
    desk, _ = await _join(server, call.room_id, call.staff_token)
    try:
        # Before joining a room.
        refused = await outsider.call("room:chat", {"text": "hello"})
        assert refused["ok"] is False and refused["error"]["code"] == "unauthenticated"
        # Too long, empty, blank, wrong type, unknown field, no payload.
        for payload in ({"text": "长" * 501}, {"text": ""}, {"text": "  \n "}, {"text": 5},
                        {"text": "hi", "to": "x"}, None):
            refused = await applicant.call("room:chat", payload)
            assert refused["ok"] is False, payload
            assert refused["error"]["code"] == "invalid_payload", payload
        # Nothing was broadcast: the next line each side gets is the good one.
        await applicant.request("room:chat", {"text": "ok"})
        assert (await desk.next("room:chat"))["text"] == "ok"
        assert desk.queue("room:chat").empty()
        assert (await applicant.next("room:chat"))["text"] == "ok"
    finally:
        await outsider.close()
        await applicant.close()
        await desk.close()


async def test_mute_and_camera_off_are_shown_to_everyone_and_kept_in_the_timeline(
        server: Any, call: Call, config: Any) -> None:
    applicant, joined = await _join(server, call.room_id, call.applicant_token)
    desk, desk_joined = await _join(server, call.room_id, call.staff_token)
    staff_id = desk_joined["participant_id"]
    try:
        assert all(p["muted"] is False and p["camera_off"] is False
                   for p in desk_joined["participants"])
        # Drop the participant lists of the joins themselves.
        for client in (applicant, desk):
            while not client.queue("room:participants").empty():
                client.queue("room:participants").get_nowait()

        await desk.request("room:media", {"audio": False, "video": True})
        for client in (applicant, desk):
            listed = {p["participant_id"]: p
                      for p in (await client.next("room:participants"))["participants"]}
            assert (listed[staff_id]["muted"], listed[staff_id]["camera_off"]) == (True, False)
            assert listed[joined["participant_id"]]["muted"] is False
        # The same state again changes nothing and tells nobody.
        await desk.request("room:media", {"audio": False, "video": True})
        await desk.request("room:media", {"audio": True, "video": False})
        listed = {p["participant_id"]: p
                  for p in (await applicant.next("room:participants"))["participants"]}
        assert (listed[staff_id]["muted"], listed[staff_id]["camera_off"]) == (False, True)
        assert applicant.queue("room:participants").empty()

        payloads: tuple[dict[str, Any], ...] = (
            {"audio": 0, "video": True}, {"audio": True}, {"audio": True, "video": True,
                                                           "screen": True})
        for payload in payloads:
            refused = await desk.call("room:media", payload)
            assert refused["error"]["code"] == "invalid_payload", payload
        for payload in ({}, {"on": "yes"}, {"on": True, "audio": True}):
            refused = await desk.call("room:share", payload)
            assert refused["error"]["code"] == "invalid_payload", payload
        outsider = await SignalingClient.connect(server.url, "/room")
        refused = await outsider.call("room:media", {"audio": True, "video": True})
        assert refused["error"]["code"] == "unauthenticated"
        refused = await outsider.call("room:share", {"on": True})
        assert refused["error"]["code"] == "unauthenticated"
        await outsider.close()

        await desk.request("room:hangup", {})
        await applicant.next("room:ended")
    finally:
        await applicant.close()
        await desk.close()

    timeline = await finished_timeline(Path(config.recordings_dir), call.room_id)
    media = [(e["participant_id"], e["audio"], e["video"])
             for e in timeline["events"] if e["type"] == "media"]
    assert media == [(staff_id, False, True), (staff_id, True, False)]
