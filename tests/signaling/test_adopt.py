"""Adoption against a real Redis and real files: the sweep moves a dead process's call here, the
clock's heartbeat re-creates its room from the directory entry and the ticket and continues its
recording in a new part; a room gone meanwhile is skipped; a recording that cannot be read back
ends the call instead of being tried again every second; a desk that does not come back ends it
after the reconnect grace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import socketio

from recordings.recorder import Recorder
from rooms.close_reason import CloseReason
from rooms.config import MediaConfig
from rooms.manager import RoomManager
from rooms.room import Room
from signaling import keys
from signaling.accounts import AccountPolicy, Accounts, hash_password
from signaling.adopt import Adoption
from signaling.fanout import Fanout
from signaling.privacy import CONSENT_NOTICE_VERSION as CONSENT
from signaling.room_directory import RoomDirectory
from signaling.snapshots import Snapshots
from signaling.store import Store
from tests.support.recordings import finished_timeline


async def _moved_call(store: Store, recordings: Path, room_id: str) -> str:
    """A call of node "dead" with a first part on disk, moved to node "me" by the sweep."""
    accounts = Accounts(store.redis, AccountPolicy())
    await accounts.put("tax01", display_name="t", role="staff", departments=("tax",),
                       password_hash=hash_password("x"))
    await store.heartbeat("dead", 0.0, ttl=10)
    await store.connection("staff", "tax01", "dead", 1, 0.0)
    await store.set_presence("tax01", "available", 1.0)
    code, ticket, _token, _ = await store.create_ticket("tax", 2.0, consent_version=CONSENT)
    assert code == "ok" and ticket is not None
    await store.connection("ticket", ticket.ticket_id, "dead", 1, 2.0)
    await store.accept(ticket.ticket_id, "tax01", 3.0)
    await store.put_room(room_id, node="dead", ticket_id=ticket.ticket_id, department="tax",
                         staff="tax01", now=3.0)
    first = Recorder(recordings / room_id, room_id=room_id,
                     meta={"ticket_id": ticket.ticket_id}, clock=lambda: 3.0)
    first.start()
    first.participant_joined("s-tax01", role="staff", name="t", department="tax")
    await store.heartbeat("me", 9.0, ttl=10)
    await store.tick(11.0)
    assert await store.redis.hget(keys.ROOM(room_id), "node") == "me"
    return ticket.ticket_id


def _parts(store: Store, recordings: Path, media: MediaConfig | None = None
           ) -> tuple[RoomManager, Adoption]:
    async def closed(room: Room, summary: dict[str, Any] | None) -> None:
        pass

    rooms = RoomManager(media or MediaConfig(), recordings, closed)
    fanout = Fanout(socketio.AsyncServer(), store, Snapshots(store),
                    Accounts(store.redis, AccountPolicy()))
    return rooms, Adoption(store, RoomDirectory(store), rooms, fanout, "me", now=lambda: 11.5)


async def test_a_moved_room_is_re_created_here_once_with_its_recording_continued(
        store: Store, tmp_path: Path) -> None:
    ticket = await _moved_call(store, tmp_path, "r1")
    await store.redis.sadd(keys.NODE("me", "adopt"), "r-gone")  # its entry went meanwhile
    rooms, adoption = _parts(store, tmp_path)
    try:
        assert await adoption.adopt_moved() == ["r1"]
        room = rooms.get("r1")
        assert room is not None and not room.closed
        assert (room.meta.ticket_id, room.meta.staff, room.meta.department) == (
            ticket, "tax01", "tax")
        assert room.meta.consent_version == CONSENT
        assert await store.redis.smembers(keys.NODE("me", "adopt")) == set()
        assert await adoption.adopt_moved() == []  # once
        timeline = json.loads((tmp_path / "r1" / "timeline.json").read_text(encoding="utf-8"))
        assert timeline["started_at"] == 3.0 and timeline["complete"] is False
        [gap] = [e for e in timeline["events"] if e["type"] == "gap"]
        assert (gap["from_node"], gap["to_node"], gap["reason"]) == ("dead", "me", "node_lost")
        assert [p["node"] for p in timeline["parts"]] == ["dead", "me"]
        assert [p["participant_id"] for p in timeline["participants"]] == ["s-tax01"]
        assert (await store.ticket(ticket)).status == "connected"  # type: ignore[union-attr]
    finally:
        await rooms.close()


async def test_a_recording_that_cannot_be_read_back_ends_the_call(
        store: Store, tmp_path: Path) -> None:
    ticket = await _moved_call(store, tmp_path, "r2")
    path = tmp_path / "r2" / "timeline.json"
    broken = json.loads(path.read_text(encoding="utf-8"))
    broken["participants"][0]["joined_at"] = "not a time"
    path.write_text(json.dumps(broken), encoding="utf-8")
    rooms, adoption = _parts(store, tmp_path)
    try:
        assert await adoption.adopt_moved() == []
        assert rooms.get("r2") is None
        assert not await store.redis.exists(keys.ROOM("r2"))
        assert await store.redis.smembers(keys.NODE("me", "adopt")) == set()
        assert (await store.ticket(ticket)).status == "ended"  # type: ignore[union-attr]
    finally:
        await rooms.close()


async def test_the_desk_not_back_within_the_grace_ends_an_adopted_call(
        store: Store, tmp_path: Path) -> None:
    """As after a dropped connection: the staff member who took the call has the reconnect grace
    to join the adopted room again; without them nobody serves the applicant."""
    await _moved_call(store, tmp_path, "r3")
    rooms, adoption = _parts(store, tmp_path, MediaConfig(reconnect_grace=0.3))
    try:
        assert await adoption.adopt_moved() == ["r3"]
        room = rooms.get("r3")
        assert room is not None
        timeline = await finished_timeline(tmp_path, "r3", timeout=5)
        assert room.close_reason == CloseReason.RECONNECT_TIMEOUT
        [leave] = [e for e in timeline["events"] if e["type"] == "leave"]
        assert (leave["participant_id"], leave["reason"]) == ("s-tax01", "reconnect_timeout")
        [staff] = timeline["participants"]
        assert abs(staff["left_at"] - leave["t"]) < 0.05
    finally:
        await rooms.close()
