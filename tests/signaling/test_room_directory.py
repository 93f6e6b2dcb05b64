"""The room directory: an entry parsed from its Redis hash in one place (RoomEntry), and the
invitation scripts against a real Redis."""

import json

from signaling.room_directory import Invitation, RoomDirectory, RoomEntry
from signaling.store import Store


def _invitation(department: str, created_at: float, room_id: str = "r1") -> Invitation:
    return Invitation(room_id=room_id, department=department, note="请协助",
                      from_department="tax", invited_by="税务坐席01",
                      invited_by_username="tax01", ticket_id="t1", ticket_number="税A001",
                      created_at=created_at)


def test_an_entry_is_parsed_from_its_hash() -> None:
    hrss, market = _invitation("hrss", 20.0), _invitation("market", 10.0)
    entry = RoomEntry.from_hash({
        "room_id": "r1", "node": "n1", "ticket_id": "t1", "department": "tax",
        "staff": "tax01", "created_at": "5.5", "participants": "3",
        "invite:hrss": json.dumps(hrss.payload()), "invite:market": json.dumps(market.payload()),
        "joined:estate": "estate01", "joined:fund": "fund01"})
    assert entry is not None
    assert (entry.room_id, entry.node, entry.ticket_id, entry.department, entry.staff,
            entry.created_at, entry.participants) == ("r1", "n1", "t1", "tax", "tax01", 5.5, 3)
    assert entry.invites == (market, hrss)  # oldest first
    assert entry.invited == {"market", "hrss"}
    assert dict(entry.joined) == {"estate": "estate01", "fund": "fund01"}
    assert entry.departments == ["tax", "estate", "fund"]
    assert entry.joined_as("fund01") == "fund" and entry.joined_as("tax01") == ""


def test_a_missing_or_half_entry_is_none_and_defaults_fill_a_bare_one() -> None:
    assert RoomEntry.from_hash({}) is None
    assert RoomEntry.from_hash({"participants": "2"}) is None  # a late write's leftover
    bare = RoomEntry.from_hash({"room_id": "r2"})
    assert bare == RoomEntry(room_id="r2", node="", ticket_id="", department="", staff="",
                             created_at=0.0, participants=0)
    assert bare is not None and bare.departments == [""]


def test_an_invitation_that_cannot_be_read_is_left_out() -> None:
    entry = RoomEntry.from_hash({"room_id": "r1", "invite:a": "{not json",
                                 "invite:b": json.dumps({"department": "b"}),
                                 "invite:c": json.dumps(_invitation("c", 1.0).payload())})
    assert entry is not None and [i.department for i in entry.invites] == ["c"]


async def test_invitations_are_limited_and_taken_once(store: Store) -> None:
    directory = RoomDirectory(store)
    assert await directory.add_invite(_invitation("hrss", 1.0), 2) == "gone"
    await store.heartbeat("n1", 0.0)
    await directory.open("r1", node="n1", ticket_id="t1", department="tax", staff="tax01",
                         now=5.0)
    assert await directory.add_invite(_invitation("hrss", 1.0), 2) == "ok"
    assert await directory.add_invite(_invitation("hrss", 2.0), 2) == "pending"
    assert await directory.add_invite(_invitation("market", 3.0), 2) == "ok"
    assert await directory.add_invite(_invitation("fund", 4.0), 2) == "full"
    assert await directory.take_invite("r1", "hrss", "hrss01") == "ok"
    assert await directory.take_invite("r1", "hrss", "hrss02") == "taken"
    assert await directory.take_invite("r1", "estate", "estate01") == "none"
    assert await directory.set_participants("r1", 3) is True
    entry = await directory.entry("r1")
    assert entry is not None
    assert ([i.department for i in entry.invites], dict(entry.joined), entry.participants,
            entry.created_at) == (["market"], {"hrss": "hrss01"}, 3, 5.0)
    assert [e.room_id for e in await directory.live()] == ["r1"]
    await directory.close("r1")
    assert await directory.entry("r1") is None
    assert await directory.set_participants("r1", 1) is False
    assert await directory.entry("r1") is None and await directory.live() == []
