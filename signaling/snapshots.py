"""The current view of a ticket or a staff member: reads from the store what the pure views
(signaling/views.py) are made of, for answers and for the fan-out alike."""

from __future__ import annotations

import logging

from signaling.accounts import User
from signaling.queue import StaffFacts
from signaling.schema import StaffState, TicketView
from signaling.states import TicketStatus
from signaling.store import Store, Ticket
from signaling.views import WaitBasis, staff_view, ticket_view

logger = logging.getLogger(__name__)


class Snapshots:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def wait_basis(self, dept_id: str) -> WaitBasis:
        on_duty, available = await self._store.duty(dept_id)
        return WaitBasis.of(on_duty, available, await self._store.handling_times(dept_id))

    async def ticket(self, ticket: Ticket, basis: WaitBasis | None = None) -> TicketView:
        """`basis`: the department's, when the caller read it already for many tickets."""
        if ticket.status != TicketStatus.WAITING:
            return ticket_view(ticket, 0, None)
        position = await self._store.position(ticket)
        return ticket_view(ticket, position, basis or await self.wait_basis(ticket.department))

    async def staff(self, user: User, known: StaffFacts | None = None) -> StaffState:
        """`known`: the staff member's state and pools as a queue script just read them (read
        here when it lacks one of their pools: their account changed meanwhile)."""
        if known is not None and all(pool in known.pools for pool in user.departments):
            pools = {pool: known.pools[pool] for pool in user.departments}
            return staff_view(user, known.state, {p: f.waiting for p, f in pools.items()},
                              {p: f.longest_since for p, f in pools.items()},
                              sum(f.callbacks for f in pools.values()))
        state, queues, longest, callbacks = await self._store.staff_overview(user.username,
                                                                            user.departments)
        return staff_view(user, state, queues, longest, callbacks)
