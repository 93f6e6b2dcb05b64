"""The `/staff` namespace: logged-in department staff set presence, are rung, accept or decline."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from socketio.exceptions import ConnectionRefusedError

from rooms.roles import Role
from signaling.accounts import SESSION_COOKIE, User
from signaling.calls import Calls
from signaling.config import SignalingConfig
from signaling.consult import Consult
from signaling.errors import SignalError
from signaling.fanout import Fanout
from signaling.forwarded import TrustedProxies, environ_client_address
from signaling.namespace import Namespace, cookie_from_environ
from signaling.redis_watch import RedisWatch
from signaling.sessions import EndedSessions, Sessions
from signaling.snapshots import Snapshots
from signaling.staff_presence import StaffPresence
from signaling.store import Store
from signaling.tickets import Tickets

logger = logging.getLogger(__name__)


class StaffNamespace(Namespace):
    def __init__(self, namespace: str, config: SignalingConfig, watch: RedisWatch, *,
                 store: Store, sessions: Sessions, presence: StaffPresence, calls: Calls,
                 consult: Consult, tickets: Tickets, snapshots: Snapshots, fanout: Fanout,
                 proxies: TrustedProxies) -> None:
        super().__init__(namespace, config, watch)
        self._store, self._presence, self._calls, self._consult = store, presence, calls, consult
        self._tickets, self._snapshots, self._fanout = tickets, snapshots, fanout
        self._sessions, self._proxies = sessions, proxies
        # This process's desk sockets: sid -> (username, login session sha), to cut them when
        # their session ends.
        self._desks: dict[str, tuple[str, str]] = {}

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = cookie_from_environ(environ, SESSION_COOKIE)
        try:
            session = await self._sessions.get(token) if token else None
        except SignalError:
            session = None
        if session is None or session.stage or session.user.role != Role.STAFF:
            raise ConnectionRefusedError({"code": "unauthenticated",
                                          "message": "请先以工作人员身份登录。"})
        user = session.user
        remote = environ_client_address(environ, self._proxies)
        await self.save_session(sid, {"username": user.username, "sha": session.sha,
                                      "remote": remote})
        await self._fanout.join_desk(sid, user)
        self._desks[sid] = (user.username, session.sha)
        counted = False
        try:
            await self._presence.sockets(user.username, 1)
            counted = True
            logger.info("staff %s connected from %s (socket %s)", user.username, remote, sid)
            await self.send_state(sid, user)
        except BaseException:
            # A refused connection has no disconnect: take back what was done. (While Redis is
            # away the count is put right from _desks when it is back: Clock.recover.)
            self._desks.pop(sid, None)
            if counted:
                with contextlib.suppress(Exception):
                    await self._presence.sockets(user.username, -1)
            raise

    async def send_state(self, sid: str, user: User) -> None:
        """A desk's whole state: the first one also has the 会商 invitations pending for the
        desk's departments, and the room it is in (a fresh token), so a reloaded desk goes back
        into its call."""
        view = await self._snapshots.staff(user)
        view["invites"] = await self._consult.invites_for(user.departments)
        room = await self._calls.staff_room(user, view["presence"])
        if room is not None:
            view["room"] = room
        await self._fanout.desk_connected(sid, view)

    async def resync(self) -> None:
        """After a Redis outage every desk here gets its whole state again: what changed while
        it was away, and what other processes' messages lost."""
        for sid, (_username, sha) in list(self._desks.items()):
            try:
                session = await self._sessions.by_sha(sha)
            except SignalError:
                continue  # ended meanwhile: the session watch closes the socket
            await self.send_state(sid, session.user)

    def live_desks(self) -> dict[str, int]:
        """The staff members with desk sockets on this process, and how many each."""
        counts: dict[str, int] = {}
        for username, _sha in self._desks.values():
            counts[username] = counts.get(username, 0) + 1
        return counts

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._desks.pop(sid, None)
        session = await self.get_session(sid)
        username = session.get("username") if session else None
        if not username:
            return
        remaining = await self._presence.sockets(username, -1)
        logger.info("staff %s socket %s gone (%s); %d left", username, sid, reason, remaining)

    async def _user(self, sid: str) -> User:
        """The desk's account, while its login session lasts (every event checks it, and is
        activity that keeps the session from idling out)."""
        saved = await self.get_session(sid)
        if not saved:
            raise SignalError("unauthenticated")
        session = await self._sessions.by_sha(saved["sha"])
        await self._sessions.touch(session)
        return session.user

    async def cut(self, ended: EndedSessions) -> None:
        """Close this process's desk sockets of an ended login session."""
        for sid, (username, sha) in list(self._desks.items()):
            if ended.covers(username, sha):
                logger.info("staff %s: session ended (%s), closing socket %s", username,
                            ended.reason, sid)
                await self._fanout.session_ended(sid, ended.reason)
                await self.disconnect(sid)

    async def on_presence_set(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        return {"presence": await self._presence.set(user, data["state"],
                                                     data.get("reason", ""))}

    async def on_call_accept(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        return await self._calls.accept(user, data["ticket_id"])

    async def on_call_decline(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        await self._presence.decline(user, data["ticket_id"])
        return {}

    async def on_callback_list(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        saved = await self.get_session(sid)
        return {"callbacks": await self._tickets.callbacks(user, saved.get("remote", ""))}

    async def on_callback_done(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        await self._tickets.callback_done(user, data["callback_id"])
        return {}
