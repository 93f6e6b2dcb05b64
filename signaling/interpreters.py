"""Ringing an interpreter pool (signaling/skills.py) for a call: the queue's presence says whether
anyone of it is available, and a 会商 invitation rings every desk of the pool."""

from __future__ import annotations

import logging

from rooms.room import Room
from signaling.accounts import User
from signaling.consult import Consult
from signaling.fanout import Fanout
from signaling.skills import skill_of
from signaling.store import Store

logger = logging.getLogger(__name__)


class Interpreters:
    def __init__(self, store: Store, consult: Consult, fanout: Fanout) -> None:
        self._store, self._consult, self._fanout = store, consult, fanout

    async def ring(self, room: Room, pool: str, *, by_department: str, by: User) -> str:
        """Invite the pool's interpreters into the room (the invitation rings every desk of the
        pool). Nobody of it available: the call goes on without, and the applicant is told
        (`interpreter:unavailable`). Returns ok, unavailable, or the invitation's refusal."""
        skill = skill_of(pool)
        assert skill is not None, pool
        if (await self._store.duty(pool)).available == 0:
            logger.info("room %s: no %s interpreter available", room.room_id, skill)
            room.add_event("interpreter_unavailable", department=pool, skill=skill)
            await self._store.log("NOINTERPRETER", ticket=room.meta.ticket_id, department=pool,
                                  staff=by.username, detail=room.room_id)
            await self._fanout.interpreter_unavailable(room.meta.ticket_id, skill)
            return "unavailable"
        return await self._consult.invite(room, pool, "", by_department=by_department, by=by)
