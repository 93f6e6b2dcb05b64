"""The 一次性告知单 through real sockets against the real server: three desks editing their parts at
once lose nothing; who may edit what; the seal at the end (signed, stored with the recording, in
the manifest chain); the read-only page behind its token; the supervisors' view by department."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from recordings import manifest
from rooms.room import CloseReason, Room, RoomMeta
from server.keys import ACCOUNTS, ARCHIVE, DIRECTORY, NOTICES, ROOMS
from signaling import notice
from signaling.accounts import hash_password
from signaling.client import SignalingClient
from signaling.errors import SignalError
from signaling.notice_seal import verify, verify_bytes
from tests.support.harness import wait_until
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer

DESKS = {"tax": "tax01", "market": "market01", "hrss": "hrss01"}
MATTERS = {"tax": ["tax-invoice", "tax-iit-annual"],
           "market": ["market-sole-proprietor", "market-name-change"],
           "hrss": ["hrss-card-reissue", "hrss-unemployment"]}


class Joined:
    """Signaling-only participants of test rooms, closed at the end."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.clients: list[SignalingClient] = []

    async def join(self, room_id: str, participant_id: str, role: str,
                   department: str = "") -> SignalingClient:
        token = await self.server.app[DIRECTORY].create_token(
            room_id, role=role, participant_id=participant_id, name=f"{participant_id} 名",
            department=department, ticket_id=f"t-{room_id}")
        client = await SignalingClient.connect(self.server.url, "/room")
        self.clients.append(client)
        await client.request("room:join", {"room_id": room_id, "token": token})
        return client


@pytest.fixture
async def joined(server: LiveServer) -> AsyncIterator[Joined]:
    holder = Joined(server)
    yield holder
    for client in holder.clients:
        await client.close()


def open_room(server: LiveServer, room_id: str) -> Room:
    room: Room = server.app[ROOMS].open(room_id, RoomMeta(
        ticket_id=f"t-{room_id}", ticket_number="税A901", department="tax"))
    return room


def refused(answer: dict[str, Any], name: str) -> None:
    assert answer["ok"] is False, answer
    error = SignalError(name)
    assert (answer["error"]["code"], answer["error"]["message"]) == (error.code, error.message)


async def desks(joined: Joined, room_id: str) -> dict[str, SignalingClient]:
    return {dept: await joined.join(room_id, f"s-{user}", "staff", dept)
            for dept, user in DESKS.items()}


async def test_three_desks_editing_at_once_lose_nothing(server: LiveServer,
                                                       joined: Joined) -> None:
    open_room(server, "n1")
    kiosk = await joined.join("n1", "a-t-n1", "applicant")
    by_dept = await desks(joined, "n1")

    async def work(dept: str, client: SignalingClient) -> None:
        for matter_id in MATTERS[dept]:
            await client.request("notice:add", {"matter_id": matter_id})
        first = MATTERS[dept][0]
        for item, checked in ((0, False), (1, False), (0, True)):
            await client.request("notice:material", {"matter_id": first, "item": item,
                                                     "checked": checked})
        await client.request("notice:material", {"matter_id": first, "item": 0,
                                                 "text": f"{dept} 改过的材料"})
        await client.request("notice:material", {"matter_id": first, "text": f"{dept} 自加材料"})
        for n in range(4):
            await client.request("notice:note", {"text": f"{dept} 备注 {n}"})

    await asyncio.gather(*(work(dept, client) for dept, client in by_dept.items()))
    doc = (await kiosk.request("notice:get", {}))["notice"]
    assert set(doc["parts"]) == set(DESKS)
    for dept in DESKS:
        part = doc["parts"][dept]
        assert [m["matter_id"] for m in part["matters"]] == MATTERS[dept]
        materials = part["matters"][0]["materials"]
        assert materials[0]["name"] == f"{dept} 改过的材料"
        assert [m["checked"] for m in materials[:2]] == [True, False]
        assert materials[-1] == {"name": f"{dept} 自加材料", "form": "either", "count": 1,
                                 "notes": "", "checked": True, "free": True}
        assert part["notes"] == [f"{dept} 备注 {n}" for n in range(4)]
    # 3 desks x (2 adds + 3 ticks + 1 text + 1 free + 4 notes): every one a revision.
    assert doc["revision"] == 3 * 11
    # Everybody heard every change, the applicant's kiosk included, the last one last.
    async def all_heard() -> bool:
        return kiosk.queue("notice:update").qsize() == 33

    await wait_until(all_heard, 5, what="33 notice:update")
    updates = [kiosk.queue("notice:update").get_nowait()["notice"]["revision"]
               for _ in range(33)]
    assert sorted(updates) == list(range(1, 34))


async def test_who_may_edit_what(server: LiveServer, joined: Joined) -> None:
    open_room(server, "n2")
    kiosk = await joined.join("n2", "a-t-n2", "applicant")
    guide = await joined.join("n2", "g-guide01", "guide")
    listener = await joined.join("n2", "v-supervisor", "supervisor", "tax")
    tax = await joined.join("n2", "s-tax01", "staff", "tax")
    market = await joined.join("n2", "s-market01", "staff", "market")
    await tax.request("notice:add", {"matter_id": "tax-invoice"})
    for reader in (kiosk, guide, listener):
        for event, payload in (("notice:add", {"matter_id": "tax-invoice"}),
                               ("notice:remove", {"matter_id": "tax-invoice"}),
                               ("notice:note", {"text": "x"}), ("notice:sign", {})):
            refused(await reader.call(event, payload), "forbidden.notice_read_only")
        assert (await reader.request("notice:get", {}))["notice"]["revision"] == 1
    # Staff pick only their own department's matters, and reach only their own part.
    refused(await market.call("notice:add", {"matter_id": "tax-iit-annual"}),
            "forbidden.notice_department")
    refused(await market.call("notice:remove", {"matter_id": "tax-invoice"}),
            "not_found.notice_matter")
    refused(await market.call("notice:material", {"matter_id": "tax-invoice", "item": 0,
                                                  "checked": False}),
            "not_found.notice_matter")
    refused(await tax.call("notice:add", {"matter_id": "no-such-matter"}),
            "not_found.notice_matter")
    refused(await tax.call("notice:add", {"matter_id": "tax-invoice"}),
            "bad_state.notice_duplicate")
    refused(await market.call("notice:sign", {}), "bad_state.notice_empty")
    # Bounded: a long note or material text is refused before it is read.
    refused(await tax.call("notice:note", {"text": "长" * (notice.NOTE_MAX + 1)}),
            "invalid_payload")
    refused(await tax.call("notice:material", {"matter_id": "tax-invoice",
                                               "text": "长" * (notice.TEXT_MAX + 1)}),
            "invalid_payload")
    signed = (await tax.request("notice:sign", {}))["notice"]["parts"]["tax"]["signature"]
    assert signed["username"] == "tax01" and signed["department"] == "tax"
    # A signed part is frozen; the others go on.
    refused(await tax.call("notice:note", {"text": "晚了"}), "bad_state.notice_signed")
    refused(await tax.call("notice:remove", {"matter_id": "tax-invoice"}),
            "bad_state.notice_signed")
    await market.request("notice:add", {"matter_id": "market-food-license"})
    doc = (await kiosk.request("notice:get", {}))["notice"]
    assert [m["matter_id"] for m in doc["parts"]["tax"]["matters"]] == ["tax-invoice"]
    assert doc["parts"]["market"]["signature"] is None


async def test_the_seal_is_signed_stored_with_the_recording_and_chained(
        server: LiveServer, joined: Joined) -> None:
    room = open_room(server, "n3")
    tax = await joined.join("n3", "s-tax01", "staff", "tax")
    await tax.request("notice:add", {"matter_id": "tax-invoice"})
    await tax.request("notice:sign", {})
    await room.close(CloseReason.HANGUP)
    # Nothing changes after the seal, through the room or the store.
    refused(await tax.call("notice:note", {"text": "x"}), "bad_state")
    with pytest.raises(SignalError) as caught:
        await server.app[NOTICES].edit("n3", lambda now: {}, lambda doc: notice.add_note(
            doc, "market", "市场监管", "x"))
    assert caught.value.name == "bad_state.notice_sealed"

    archive = server.app[ARCHIVE]
    directory = archive.directory("n3")
    assert directory is not None
    data = (directory / manifest.NOTICE).read_bytes()
    async with client_session() as http:
        response = await http.get(f"{server.url}/.well-known/yunzhen-notice-key")
        assert response.status == 200
        key = load_pem_public_key((await response.text()).encode())
    assert verify_bytes(data, key)  # type: ignore[arg-type]
    envelope = json.loads(data)
    assert envelope["document"]["sealed_at"] is not None
    assert envelope["key_id"] == response.headers["X-Key-Id"]
    # One changed byte of the document, and the signature fails.
    changed = data.replace("增值税发票申领".encode(), "增值税发票申镇".encode(), 1)
    assert changed != data and not verify_bytes(changed, key)  # type: ignore[arg-type]
    tampered = json.loads(data)
    tampered["document"]["parts"]["tax"]["matters"][0]["materials"][0]["count"] += 1
    assert not verify(tampered, key)  # type: ignore[arg-type]
    # The file is in the recording's close link of the chain, and the chain checks.
    manifest_doc = json.loads((directory / manifest.MANIFEST).read_text())
    close = manifest_doc["links"][0]
    assert close["kind"] == "close"
    assert close["files"][manifest.NOTICE] == manifest.sha256_file(directory / manifest.NOTICE)
    assert (await archive.verify("n3")).ok
    # The replay's timeline lists it.
    found = await archive.get("n3")
    assert found is not None
    assert found[1]["notice"] == manifest.NOTICE
    [sealed] = [e for e in found[1]["events"] if e["type"] == "notice"]
    assert sealed["departments"] == ["tax"]
    # A changed file breaks the chain's check.
    (directory / manifest.NOTICE).write_bytes(changed)
    assert not (await archive.verify("n3")).ok


async def test_the_sealed_and_live_notice_are_read_together(server: LiveServer,
                                                             joined: Joined) -> None:
    # What the kiosk's notice link reads: before the seal the live document alone (the kiosk
    # is told to wait), after it both, each saying sealed; never one without the other.
    room = open_room(server, "n6")
    tax = await joined.join("n6", "s-tax01", "staff", "tax")
    await tax.request("notice:add", {"matter_id": "tax-invoice"})
    envelope, live = await server.app[NOTICES].sealed_or_live("n6")
    assert envelope is None and live is not None and live["sealed_at"] is None
    await room.close(CloseReason.HANGUP)
    envelope, live = await server.app[NOTICES].sealed_or_live("n6")
    assert envelope is not None and live is not None
    assert envelope["document"]["sealed_at"] == live["sealed_at"] is not None
    assert await server.app[NOTICES].sealed_or_live("nope") == (None, None)


async def test_a_room_without_matters_seals_nothing(server: LiveServer, joined: Joined) -> None:
    room = open_room(server, "n4")
    tax = await joined.join("n4", "s-tax01", "staff", "tax")
    await tax.request("notice:note", {"text": "只有备注"})
    await room.close(CloseReason.HANGUP)
    assert await server.app[NOTICES].sealed("n4") is None
    directory = server.app[ARCHIVE].directory("n4")
    assert directory is None or not (directory / manifest.NOTICE).exists()


async def test_the_read_only_page_needs_its_token(server: LiveServer, joined: Joined) -> None:
    room = open_room(server, "n5")
    tax = await joined.join("n5", "s-tax01", "staff", "tax")
    await tax.request("notice:add", {"matter_id": "tax-invoice"})
    await tax.request("notice:note", {"text": "请带身份证原件"})
    await tax.request("notice:sign", {})
    await room.close(CloseReason.HANGUP)
    token = await server.app[NOTICES].make_link("n5")
    async with client_session() as phone:
        for query in ("", "?t=", "?t=wrong-token", f"?t={token}x"):
            response = await phone.get(f"{server.url}/notice/n5{query}")
            assert response.status == 404, query
            assert "增值税" not in await response.text()
        response = await phone.get(f"{server.url}/notice/n4?t={token}")  # another room
        assert response.status == 404
        response = await phone.get(f"{server.url}/notice/n5?t={token}")
        assert response.status == 200
        page = await response.text()
        assert 'data-testid="checklist-document"' in page
        assert 'data-testid="checklist-signature-ok"' in page
        assert "增值税发票申领" in page and "请带身份证原件" in page
        assert response.headers["Cache-Control"] == "private, no-store"
        # The stored file changed: the page says so instead of vouching for it.
        directory = server.app[ARCHIVE].directory("n5")
        assert directory is not None
        path = directory / manifest.NOTICE
        path.write_bytes(path.read_bytes().replace("请带身份证原件".encode(),
                                                   "请带身份证复印".encode()))
        page = await (await phone.get(f"{server.url}/notice/n5?t={token}")).text()
        assert 'data-testid="checklist-signature-bad"' in page
        assert 'data-testid="checklist-signature-ok"' not in page
        # The kiosk's request for a link needs its ticket's token.
        response = await phone.post(f"{server.url}/api/notice-link",
                                    json={"ticket_id": "t-n5", "token": "nope"})
        assert response.status == 404


async def test_supervisors_see_only_their_departments_notices(server: LiveServer,
                                                              joined: Joined) -> None:
    room = open_room(server, "n6")
    tax = await joined.join("n6", "s-tax01", "staff", "tax")
    await tax.request("notice:add", {"matter_id": "tax-invoice"})
    await room.close(CloseReason.HANGUP)
    assert await server.app[ARCHIVE].entry("n6") is not None
    for username, dept in (("taxsup", "tax"), ("fundsup", "fund")):
        await server.app[ACCOUNTS].put(username, display_name=username, role="supervisor",
                                       departments=(dept,),
                                       password_hash=hash_password("demo12345"))
    async with client_session() as sup:
        await logged_in(sup, server.url, "taxsup")
        body = await (await sup.get(f"{server.url}/api/recordings/n6/notice")).json()
        assert body["ok"] and body["signature_ok"] is True
        assert body["notice"]["document"]["parts"]["tax"]["matters"][0]["name"] == "增值税发票申领"
        page = await sup.get(f"{server.url}/recordings/n6/notice")
        assert page.status == 200 and "checklist-signature-ok" in await page.text()
    async with client_session() as other:
        await logged_in(other, server.url, "fundsup")
        for path in ("/api/recordings/n6/notice", "/recordings/n6/notice"):
            response = await other.get(server.url + path)
            assert response.status == 404, path
            assert "增值税" not in await response.text()
