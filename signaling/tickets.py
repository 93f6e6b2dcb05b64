"""Applicants' tickets: taking one (within service hours), following it with sockets, cancelling
and rating it (each department that took part: signaling/ratings.py; a bad rating opens a case,
signaling/cases.py); and callback requests, the kiosk's fallback when a queue is closed or full:
every read of them audited, and each deleted callback_keep_days after it was made."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from recordings.archive import Archive
from recordings.audit import Audit
from signaling.accounts import User
from signaling.cases import Cases
from signaling.config import SignalingConfig
from signaling.devices import Device
from signaling.errors import SignalError
from signaling.fanout import Fanout
from signaling.privacy import mask_phone
from signaling.queue import Code
from signaling.ratings import Rating
from signaling.schema import Callback
from signaling.skills import skill_of
from signaling.store import Store, Ticket

logger = logging.getLogger(__name__)


class Tickets:
    def __init__(self, config: SignalingConfig, store: Store, fanout: Fanout, archive: Archive,
                 audit: Audit, cases: Cases, node: str,
                 now: Callable[[], float] = time.time) -> None:
        self._config, self._store, self._fanout, self._archive = config, store, fanout, archive
        self._audit, self._cases, self._node, self._now = audit, cases, node, now

    async def create(self, dept_id: str, *, consent_version: str, priority: bool, channel: str,
                     also: tuple[str, ...], guide: str = "", address: str = "",
                     device: Device | None = None, booking: str = "",
                     counted: bool = False) -> tuple[Ticket, str]:
        """A new ticket in the department's queue, and its secret token. `consent_version`: the
        recording notice the applicant consented to (kept on the ticket with the time);
        `address`: the client's, held to max_tickets_per_address open tickets ('' for none);
        `device`: the registered kiosk taking it (one open ticket at a time), None if
        anonymous; `booking`: the code of a booking checked for arrival (the booked lane);
        `counted`: the socket asking for it is counted for it (as `sockets` +1) in the same
        step."""
        dept = await self._store.department(dept_id)
        # An interpreter pool serves in another department's call: nobody queues at it.
        if dept is None or skill_of(dept_id):
            raise SignalError("unknown_department", dept_id)
        for other in also:
            if other == dept_id or await self._store.department(other) is None:
                raise SignalError("unknown_department", other)
        now = self._now()
        moment = self._config.local_time(now)
        if not dept.is_open(moment):
            upcoming = dept.next_open(moment)
            raise SignalError("closed", dept.hours_text(),
                              extra={"next_open": upcoming.timestamp() if upcoming else None,
                                     "hours": dept.hours_text()})
        code, ticket, token, events = await self._store.create_ticket(
            dept_id, now, consent_version=consent_version, priority=priority, channel=channel,
            also=also, address=address, max_per_address=self._config.max_tickets_per_address,
            device=device.device_id if device else "", hall=device.hall if device else "",
            booking=booking, node=self._node if counted else "")
        if code == Code.LIMIT:
            most = self._config.max_tickets_per_address
            logger.info("ticket for %s refused: %s holds %d open tickets", dept_id, address, most)
            raise SignalError("limit.tickets_per_address", f"{most} open tickets per address",
                              max=most)
        if code != Code.OK or ticket is None:
            raise SignalError(code, dept_id)
        logger.info("ticket %s (%s) entered queue %s%s%s%s", ticket.ticket_id, ticket.number,
                    dept_id, " (priority)" if priority else "",
                    " (booked)" if booking else "",
                    f" from kiosk {device.device_id}" if device else "")
        if guide:
            # The guide may join this ticket's room later (POST /api/rooms/{id}/join).
            await self._store.set_ticket_guide(ticket.ticket_id, guide, now)
        await self._fanout.apply(events)
        return ticket, token

    async def sockets(self, ticket_id: str, delta: int) -> int:
        """A socket of the ticket came (+1) or went (-1); a ticket without any is abandoned after
        a grace. Returns the ticket's sockets left."""
        total, events = await self._store.connection("ticket", ticket_id, self._node, delta,
                                                     self._now())
        await self._fanout.apply(events)
        return total

    async def cancel(self, ticket: Ticket, counted: bool = False) -> Ticket:
        """Returns the ticket as cancelling left it. `counted`: a socket of the ticket cancels
        it; it is counted out (as `sockets` -1) in the same step, whatever the answer."""
        code, events = await self._store.cancel_ticket(ticket.ticket_id, self._now(),
                                                       self._node if counted else "")
        if code != "ok":
            raise SignalError("bad_state", f"ticket is {ticket.status}")
        logger.info("ticket %s cancelled", ticket.ticket_id)
        await self._fanout.apply(events)
        return Ticket.of(events, ticket.ticket_id) or ticket

    async def rating_options(self, ticket: Ticket) -> list[dict[str, str]]:
        """The departments the applicant may rate (those that took part in the call, the
        ticket's own first), with who served for each; empty once rated."""
        if ticket.rating is not None:
            return []
        participants = await self._store.ticket_participants(ticket.ticket_id)
        return [{"department": dept} for dept in participants]

    async def rate(self, ticket: Ticket, ratings: list[Rating]) -> list[str]:
        """Store the applicant's ratings (once per ticket, only departments that took part),
        seal them with the recording, and open a case for each department rated 1 or 2.
        Returns the ids of the cases opened."""
        code, served = await self._store.rate_ticket(
            ticket.ticket_id, [(r.department, r.score) for r in ratings])
        if code == Code.NOT_PARTICIPANT:
            raise SignalError("forbidden.rating_department", served[0],
                              extra={"department": served[0]})
        if code != Code.OK:
            raise SignalError("bad_state", "ticket cannot be rated now (or was rated already)")
        rated = [Rating(r.department, r.score, r.reasons, r.comment, staff)
                 for r, staff in zip(ratings, served, strict=True)]
        now = self._now()
        logger.info("ticket %s rated %s", ticket.ticket_id,
                    ", ".join(f"{r.department} {r.score}" for r in rated))
        if ticket.room_id:
            await self._archive.set_rating(ticket.room_id, min(r.score for r in rated), now,
                                           [r.to_dict() for r in rated])
        return [await self._cases.open(ticket, r) for r in rated if r.bad]

    # callbacks --------------------------------------------------------------------------------
    async def request_callback(self, dept_id: str, request: dict[str, Any]) -> Callback:
        """`request`: name, phone, note, consent_version. The department's desks are told at
        once (without the personal data: they read it with `callbacks`, which is audited)."""
        if await self._store.department(dept_id) is None:
            raise SignalError("unknown_department", dept_id)
        entry = cast(Callback, await self._store.add_callback(
            dept_id, {**request, "created_at": self._now()}))
        logger.info("callback %s requested for %s (%s)", entry["callback_id"], dept_id,
                    mask_phone(entry["phone"]))
        await self._fanout.callback_new({"callback_id": entry["callback_id"],
                                         "department": dept_id,
                                         "created_at": entry["created_at"]})
        return entry

    async def callbacks(self, user: User, remote: str = "") -> list[Callback]:
        """The pending callback requests of the staff member's departments, oldest first, with
        the phone numbers in full: each department's read goes to the audit log (who, from where,
        how many, which)."""
        entries = cast(list[Callback], await self._store.callbacks(user.departments))
        for dept in user.departments:
            ids = [c["callback_id"] for c in entries if c["department"] == dept]
            if ids:
                await self._audit.append(user.username, "callback_read", department=dept,
                                         remote=remote,
                                         detail=f"{len(ids)} request(s): {','.join(ids)}")
        return entries

    async def callback_done(self, user: User, callback_id: str) -> None:
        if not await self._store.remove_callback(user.departments, callback_id, user.username):
            raise SignalError("not_found", "no such callback request in your departments")
        await self._fanout.callback_done(user.departments, callback_id)

    async def purge_callbacks(self) -> int:
        """Delete the callback requests older than callback_keep_days (the clock runs this)."""
        days = self._config.callback_keep_days
        purged = await self._store.purge_callbacks(self._now() - days * 86400, days)
        for dept, count in purged.items():
            logger.info("callbacks: %d request(s) of %s deleted (older than %d days)", count,
                        dept, days)
        return sum(purged.values())
