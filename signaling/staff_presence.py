"""Staff presence: what a staff member chooses (available, away), declining a ring, and their
desks' sockets coming and going. The queue script decides; the fan-out tells."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from signaling.accounts import User
from signaling.errors import SignalError
from signaling.fanout import Fanout
from signaling.store import Store

logger = logging.getLogger(__name__)


class StaffPresence:
    def __init__(self, store: Store, fanout: Fanout, node: str,
                 now: Callable[[], float] = time.time) -> None:
        self._store, self._fanout, self._node, self._now = store, fanout, node, now

    async def set(self, user: User, state: str, reason: str = "") -> str:
        """Returns the presence now; bad_state where the queue script refuses (in a call)."""
        code, presence, events = await self._store.set_presence(user.username, state,
                                                                self._now(), reason)
        if code != "ok":
            raise SignalError("bad_state", f"presence is {presence}")
        logger.info("staff %s is %s%s", user.username, presence, f" ({reason})" if reason else "")
        await self._fanout.apply(events)
        await self._fanout.staff_state(user)
        return presence

    async def decline(self, user: User, ticket_id: str) -> None:
        code, events = await self._store.decline(ticket_id, user.username, self._now())
        if code != "ok":
            raise SignalError("not_offered", ticket_id)
        logger.info("staff %s declined ticket %s", user.username, ticket_id)
        await self._fanout.apply(events)
        await self._fanout.staff_state(user)

    async def sockets(self, username: str, delta: int) -> int:
        """A desk socket came (+1) or went (-1); without any the staff member is offline after a
        grace. Returns their sockets left."""
        total, events = await self._store.connection("staff", username, self._node, delta,
                                                     self._now())
        await self._fanout.apply(events)
        return total
