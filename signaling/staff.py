"""The `/staff` namespace: logged-in department staff set presence, are rung, accept or decline."""

from __future__ import annotations

import logging
from typing import Any

from socketio.exceptions import ConnectionRefusedError

from signaling.errors import SignalError
from signaling.namespace import Namespace, cookie_from_environ
from signaling.store import SESSION_COOKIE, User

logger = logging.getLogger(__name__)


class StaffNamespace(Namespace):
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = cookie_from_environ(environ, SESSION_COOKIE)
        user = await self.hub.store.session_user(token) if token else None
        if user is None or user.role != "staff":
            raise ConnectionRefusedError({"code": "unauthenticated",
                                          "message": "请先以工作人员身份登录。"})
        await self.save_session(sid, {"username": user.username})
        await self.enter_room(sid, f"staff:{user.username}")
        for dept in user.departments:
            await self.enter_room(sid, f"dept:{dept}")
        await self.hub.connection("staff", user.username, 1)
        logger.info("staff %s connected (socket %s)", user.username, sid)
        await self.emit("staff:state", await self.hub.staff_connect_view(user), to=sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        session = await self.get_session(sid)
        username = session.get("username") if session else None
        if not username:
            return
        remaining = await self.hub.connection("staff", username, -1)
        logger.info("staff %s socket %s gone (%s); %d left", username, sid, reason, remaining)

    async def _user(self, sid: str) -> User:
        session = await self.get_session(sid)
        user = await self.hub.store.user(session["username"]) if session else None
        if user is None:
            raise SignalError("unauthenticated")
        return user

    async def on_presence_set(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        return {"presence": await self.hub.set_presence(user, data["state"],
                                                        data.get("reason", ""))}

    async def on_call_accept(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        return await self.hub.accept(user, data["ticket_id"])

    async def on_call_decline(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        await self.hub.decline(user, data["ticket_id"])
        return {}

    async def on_callback_list(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        return {"callbacks": await self.hub.store.callbacks(user.departments)}

    async def on_callback_done(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        user = await self._user(sid)
        if not await self.hub.store.remove_callback(user.departments, data["callback_id"],
                                                    user.username):
            raise SignalError("not_found", "no such callback request in your departments")
        for dept in user.departments:
            await self.hub.sio.emit("callback:done", {"callback_id": data["callback_id"]},
                                    to=f"dept:{dept}", namespace="/staff")
        return {}
