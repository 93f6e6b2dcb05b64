"""The `/kiosk` namespace: applicants take, follow, cancel and rate tickets. No account; each
ticket's secret token authorizes everything about that ticket and nothing else."""

from __future__ import annotations

import logging
from typing import Any

from server.store import Ticket
from signaling.errors import SignalError
from signaling.namespace import Namespace

logger = logging.getLogger(__name__)


class KioskNamespace(Namespace):
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        logger.debug("kiosk socket %s connected", sid)

    async def _attach(self, sid: str, ticket: Ticket) -> dict[str, Any]:
        await self.enter_room(sid, f"ticket:{ticket.ticket_id}")
        view = await self.hub.ticket_view(ticket)
        room = await self.hub.applicant_room(ticket)
        if room is not None:
            view["room"] = room
        return view

    async def _owned_ticket(self, data: dict[str, Any]) -> Ticket:
        ticket = await self.hub.store.check_ticket_token(data["ticket_id"], data["token"])
        if ticket is None:
            raise SignalError("not_found", "no ticket with this id and token")
        return ticket

    async def on_ticket_create(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        if data["consent"] is not True:
            raise SignalError("consent_required")
        ticket, token = await self.hub.create_ticket(data["department"])
        view = await self._attach(sid, ticket)
        await self.hub.dispatch(ticket.department)
        fresh = await self.hub.store.ticket(ticket.ticket_id)
        if fresh is not None:
            view = await self._attach(sid, fresh)
        return {"ticket": {**view, "token": token}}

    async def on_ticket_resume(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        ticket = await self._owned_ticket(data)
        return {"ticket": await self._attach(sid, ticket)}

    async def on_ticket_cancel(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        ticket = await self._owned_ticket(data)
        await self.hub.cancel(ticket)
        fresh = await self.hub.store.ticket(ticket.ticket_id)
        assert fresh is not None
        return {"ticket": await self.hub.ticket_view(fresh)}

    async def on_rating_submit(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        ticket = await self._owned_ticket(data)
        await self.hub.rate(ticket, data["rating"])
        return {}
