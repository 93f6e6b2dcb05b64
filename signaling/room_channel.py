"""The `/room` namespace: the signaling channel of a consultation room. The server offers, the
client answers (see docs/protocol.md); media goes over the participant's one peer connection."""

from __future__ import annotations

import logging
import time
from typing import Any

from rooms import roles
from rooms.ice import ice_servers_for
from rooms.manager import RoomManager
from rooms.roles import Role
from rooms.room import CloseReason, Room
from signaling import notice
from signaling.accounts import Accounts
from signaling.config import SignalingConfig
from signaling.errors import SignalError
from signaling.fanout import Fanout
from signaling.keys import hash_token
from signaling.matters import Matters
from signaling.namespace import Namespace
from signaling.nodes import Nodes
from signaling.notice_store import Notices
from signaling.redis_watch import UNAVAILABLE, RedisWatch, unavailable
from signaling.room_directory import RoomDirectory
from signaling.sessions import EndedSessions
from signaling.store import Store

logger = logging.getLogger(__name__)


class RoomNamespace(Namespace):
    # Media signaling of the rooms on this process goes on while Redis is away, and so does
    # joining again: a participant whose socket dropped meanwhile comes back with the grant their
    # token had at their last join here. A token never seen here needs Redis (`unavailable`).
    needs_redis = False

    def __init__(self, namespace: str, config: SignalingConfig, watch: RedisWatch, *,
                 directory: RoomDirectory, rooms: RoomManager, fanout: Fanout,
                 accounts: Accounts, store: Store, notices: Notices, matters: Matters,
                 nodes: Nodes) -> None:
        super().__init__(namespace, config, watch)
        self._directory, self._rooms, self._fanout, self._nodes = directory, rooms, fanout, nodes
        self._accounts, self._store = accounts, store
        self._notices, self._matters = notices, matters
        # (room_id, participant_id) -> the socket that currently carries that participant, so the
        # late disconnect of a replaced socket (a reloaded page) does not remove its successor.
        self._current: dict[tuple[str, str], str] = {}
        # The token's hash -> its grant, for each join on this process (kept while its room is
        # open here): read only while Redis does not answer.
        self._granted: dict[str, dict[str, str]] = {}

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        logger.debug("room socket %s connected", sid)

    async def _joined(self, sid: str) -> dict[str, str]:
        session = await self.get_session(sid)
        if not session or "room_id" not in session:
            raise SignalError("unauthenticated", "join a room first")
        if self._current.get((session["room_id"], session["participant_id"])) != sid:
            # The participant rejoined on another socket (a reload, two tabs): this one is stale.
            raise SignalError("bad_state", "this connection was replaced by a newer one")
        return session  # type: ignore[no-any-return]

    async def _grant(self, token: str) -> tuple[dict[str, str] | None, bool]:
        """What ``token`` grants, and whether Redis said so (False: this process's memory of an
        earlier join, while Redis does not answer). Raises Redis's error for a token not seen
        here."""
        remembered = self._granted.get(hash_token(token))
        if not self._watch.available:  # answered at once, not after a stopped Redis's timeout
            if remembered is None:
                raise unavailable()
            return remembered, False
        try:
            return await self._directory.token(token), True
        except UNAVAILABLE:
            if remembered is None:
                raise
            self._watch.lost()
            return remembered, False

    def _remember(self, token: str, grant: dict[str, str]) -> None:
        """Keep the grant of a join that succeeded here, forgetting those of rooms closed."""
        for sha, granted in list(self._granted.items()):
            room = self._rooms.get(granted["room_id"])
            if room is None or room.closed:
                del self._granted[sha]
        self._granted[hash_token(token)] = grant

    async def on_room_join(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        grant, from_redis = await self._grant(data["token"])
        if grant is None or grant["room_id"] != data["room_id"]:
            raise SignalError("forbidden", "room token is not valid for this room")
        room = self._rooms.get(data["room_id"])
        if room is None or room.closed:
            entry = await self._directory.entry(data["room_id"])
            if entry is not None:
                # Live on another process (the client connects again at that node's base), or
                # moving here from one that died (adopted within a heartbeat: the base is this
                # one's): the page tries again rather than taking the call for ended.
                raise SignalError("other_node", f"room {entry.room_id} is on {entry.node}",
                                  extra={"base": await self._nodes.base_of(entry.node)})
            raise SignalError("not_found", "the room is closed or not hosted here")
        participant_id = grant["participant_id"]
        if grant["role"] != Role.APPLICANT and from_redis:
            # A room token outlives a disabled account's sessions: the account decides. (Tokens
            # are only made for accounts; a name with no account is a test's or a benchmark's.
            # While Redis is away no account can be disabled: the last join here checked it.)
            account = await self._accounts.user(participant_id.partition("-")[2])
            if account is not None and account.disabled:
                raise SignalError("forbidden", "the account is disabled")
        session = await self.get_session(sid)
        if session and session.get("room_id") and (
                session["room_id"], session.get("participant_id")) != (room.room_id,
                                                                       participant_id):
            raise SignalError("bad_state", "this socket is in a room already")
        # Joining again with the same token (a reload, a reconnection after a network drop, or
        # a new peer connection on the same socket) replaces the participant's old connection
        # and keeps their place, identity and role.
        key = (room.room_id, participant_id)
        previous_sid = self._current.get(key)

        async def signal(event: str, payload: dict[str, Any]) -> None:
            await self._fanout.to_participant(sid, event, payload)

        await self.save_session(sid, {"room_id": room.room_id, "participant_id": participant_id,
                                      "role": grant["role"], "name": grant["name"],
                                      "department": grant["department"]})
        await self._fanout.join_room(sid, room.room_id)
        # Current before the join: its offer goes out inside room.join, and the answer to it
        # may come back before room.join returns.
        self._current[key] = sid
        try:
            await room.join(participant_id=participant_id, role=grant["role"],
                            name=grant["name"], department=grant["department"] or None,
                            signal=signal, rejoin=True)
        except Exception:
            await self.save_session(sid, {})
            if self._current.get(key) == sid:
                if previous_sid is None:
                    del self._current[key]
                else:
                    self._current[key] = previous_sid
            raise
        self._remember(data["token"], grant)
        if previous_sid is not None and previous_sid != sid:
            # A page still open with the old connection (a second tab) is told it is over.
            await self._fanout.to_participant(previous_sid, "room:ended",
                                              {"reason": str(CloseReason.REPLACED)})
        logger.info("room %s: %s joined as %s (socket %s)", room.room_id, participant_id,
                    grant["role"], sid)
        return {"participant_id": participant_id, "role": grant["role"],
                "ice_servers": ice_servers_for(self._rooms.media, participant_id,
                                               time.time()),
                "participants": room.participants_info(), "chat": room.chat_history(),
                "recording": room.recording_state()}

    async def on_room_answer(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session = await self._joined(sid)
        room = self._rooms.get(session["room_id"])
        if room is None or room.closed:
            raise SignalError("bad_state", "the room is closed")
        await room.answer(session["participant_id"], data["sdp"])
        return {}

    async def on_room_hangup(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session = await self._joined(sid)
        room = self._rooms.get(session["room_id"])
        if room is None or room.closed:
            return {"ended": True}
        participant_id = session["participant_id"]
        # The applicant or the staff member who took the call ends the consultation; a guide,
        # an invited colleague or a listening supervisor only leaves it.
        if session["role"] != Role.APPLICANT \
                and participant_id != roles.participant_id(Role.STAFF, room.meta.staff):
            logger.info("room %s: %s leaves", room.room_id, participant_id)
            await room.leave(participant_id)
            return {"ended": False}
        logger.info("room %s: hangup by %s", room.room_id, participant_id)
        room.add_event("hangup", participant_id=participant_id)
        await room.close(CloseReason.HANGUP)
        return {"ended": True}

    async def on_room_chat(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session = await self._joined(sid)
        text = data["text"].strip()
        if not text:
            raise SignalError("invalid_payload", "text must not be blank")
        room = self._room(session)
        message = await room.chat(session["participant_id"], text)
        return {"t": message["t"]}

    async def on_room_media(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session = await self._joined(sid)
        room = self._room(session)
        await room.set_media(session["participant_id"], audio=data["audio"],
                             video=data["video"])
        return {}

    async def on_room_share(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session = await self._joined(sid)
        room = self._room(session)
        await room.share(session["participant_id"], data["on"])
        return {}

    # the 一次性告知单 -------------------------------------------------------------------------
    # Everyone in the room reads it (notice:get, notice:update); only staff edit, and only their
    # own department's part (the department their room token was made for).
    async def on_notice_get(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session = await self._joined(sid)
        return {"notice": await self._notices.get(session["room_id"])}

    async def on_notice_add(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session, department = await self._editor(sid)
        matter = await self._matters.get(data["matter_id"])
        if matter is None:
            raise SignalError("not_found.notice_matter")
        if matter.department != department:
            raise SignalError("forbidden.notice_department")
        entry = notice.matter_entry(matter.to_dict())
        name = await self._department_name(department)
        return await self._edit(session, lambda doc: notice.add_matter(doc, department, name,
                                                                       entry))

    async def on_notice_remove(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session, department = await self._editor(sid)
        return await self._edit(session, lambda doc: notice.remove_matter(
            doc, department, data["matter_id"]))

    async def on_notice_material(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session, department = await self._editor(sid)
        return await self._edit(session, lambda doc: notice.set_material(
            doc, department, data["matter_id"], data.get("item"), checked=data.get("checked"),
            text=data.get("text")))

    async def on_notice_note(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session, department = await self._editor(sid)
        name = await self._department_name(department)
        return await self._edit(session, lambda doc: notice.add_note(doc, department, name,
                                                                     data["text"]))

    async def on_notice_sign(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session, department = await self._editor(sid)
        username = session["participant_id"].partition("-")[2]
        return await self._edit(session, lambda doc: notice.sign(
            doc, department, username=username, name=session.get("name", username),
            now=time.time()))

    async def _editor(self, sid: str) -> tuple[dict[str, str], str]:
        session = await self._joined(sid)
        department = session.get("department", "")
        if session["role"] != Role.STAFF or not department:
            raise SignalError("forbidden.notice_read_only")
        return session, department

    async def _department_name(self, department: str) -> str:
        dept = await self._store.department(department)
        return dept.name_zh if dept is not None else department

    async def _edit(self, session: dict[str, str], change: notice.Change) -> dict[str, Any]:
        room = self._room(session)
        meta = room.meta

        def fresh(now: float) -> dict[str, Any]:
            return notice.new_document(room.room_id, ticket_id=meta.ticket_id,
                                       ticket_number=meta.ticket_number,
                                       department=meta.department, now=now)

        doc = await self._notices.edit(room.room_id, fresh, change)
        logger.info("room %s: notice revision %d by %s", room.room_id, doc["revision"],
                    session["participant_id"])
        await self._fanout.notice(room.room_id, doc)
        return {"notice": doc}

    async def moved(self, room_id: str) -> None:
        """Another process hosts the room now (this one was taken for dead and let it go): its
        sockets here are closed without a word, and each page asks where the room is and joins
        it there (docs/protocol.md, node loss)."""
        for (current_room, participant_id), sid in list(self._current.items()):
            if current_room == room_id:
                del self._current[(current_room, participant_id)]
                await self.save_session(sid, {})
                await self.disconnect(sid)

    async def cut(self, ended: EndedSessions) -> None:
        """An account disabled or reset by an admin leaves every room it is in on this process
        (a sign-out or the person's own password change leaves their call alone)."""
        if ended.sha or ended.keep:
            return
        mine = {roles.participant_id(role, ended.username)
                for role in (Role.STAFF, Role.GUIDE, Role.SUPERVISOR, Role.INTERPRETER)}
        for sha, granted in list(self._granted.items()):
            if granted["participant_id"] in mine:
                del self._granted[sha]  # not even while Redis is away
        for (room_id, participant_id), sid in list(self._current.items()):
            if participant_id not in mine:
                continue
            del self._current[(room_id, participant_id)]
            room = self._rooms.get(room_id)
            if room is not None and not room.closed:
                logger.info("room %s: %s removed (%s)", room_id, participant_id, ended.reason)
                await room.leave(participant_id)
            await self._fanout.to_participant(sid, "room:ended", {"reason": ended.reason})
            await self.disconnect(sid)

    def _room(self, session: dict[str, str]) -> Room:
        room = self._rooms.get(session["room_id"])
        if room is None or room.closed:
            raise SignalError("bad_state", "the room is closed")
        return room

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        session = await self.get_session(sid)
        if not session or "room_id" not in session:
            return
        key = (session["room_id"], session["participant_id"])
        if self._current.get(key) != sid:
            return
        del self._current[key]
        room = self._rooms.get(session["room_id"])
        if room is None or room.closed:
            return
        logger.info("room %s: %s disconnected (%s)", room.room_id, session["participant_id"],
                    reason)
        if reason == self.server.reason.CLIENT_DISCONNECT:
            # The page left the call on purpose.
            await room.leave(session["participant_id"])
        else:
            # A dropped network or a reload: the participant may rejoin within the grace period.
            await room.connection_lost(session["participant_id"])
