"""The `/kiosk` namespace: applicants take, follow, cancel and rate tickets, or ask for a
callback. No account; each ticket's secret token authorizes everything about that ticket and
nothing else. Only a hall guide (a logged-in guide or staff member, while signed in) may choose the
priority lane. Anonymous, so held to the abuse limits (signaling/limits.py) per socket and per
client address; a registered kiosk (its device cookie, signaling/devices.py) records itself and
its hall on its tickets, holds one open ticket at a time instead, and is not counted against its
address; revoked, its sockets are closed."""

from __future__ import annotations

import logging
import re
from typing import Any

from rooms.roles import Role
from signaling import keys
from signaling.accounts import SESSION_COOKIE
from signaling.bookings import Bookings
from signaling.calls import Calls
from signaling.config import SignalingConfig
from signaling.devices import DEVICE_COOKIE, Device, Devices
from signaling.durable import Durable
from signaling.errors import SignalError
from signaling.fanout import Fanout
from signaling.limits import Limits, is_registered_device
from signaling.namespace import Namespace, cookie_from_environ, refusal
from signaling.privacy import CONSENT_NOTICE_VERSION, mask_phone
from signaling.ratings import BAD_REASONS, COMMENT_MAX, GOOD_REASONS, parse_ratings
from signaling.redis_watch import RedisWatch
from signaling.schema import TicketView
from signaling.sessions import Sessions
from signaling.snapshots import Snapshots
from signaling.states import TicketStatus
from signaling.store import Store, Ticket
from signaling.tickets import Tickets

logger = logging.getLogger(__name__)

GUIDE_ROLES = (Role.GUIDE, Role.STAFF)
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{3,22}[0-9]$")
OPEN = (TicketStatus.WAITING, TicketStatus.RINGING, TicketStatus.CONNECTED)


class KioskNamespace(Namespace):
    def __init__(self, namespace: str, config: SignalingConfig, watch: RedisWatch, *,
                 store: Store, sessions: Sessions, devices: Devices, tickets: Tickets,
                 calls: Calls, snapshots: Snapshots, fanout: Fanout, limits: Limits,
                 bookings: Bookings, durable: Durable) -> None:
        super().__init__(namespace, config, watch)
        self._store, self._tickets, self._calls, self._snapshots = store, tickets, calls, snapshots
        self._fanout, self._sessions, self._limits = fanout, sessions, limits
        self._devices, self._bookings = devices, bookings
        # Acknowledged means on the Redis replicas too (signaling/durable.py).
        self._durable = durable
        # Sockets of this process taking a ticket now: a second ticket:create sent before the
        # first is answered would pass the open-ticket count.
        self._creating: set[str] = set()
        # This process's sockets of registered kiosks: sid -> device id, to close them when
        # their device is revoked.
        self._kiosks: dict[str, str] = {}

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        # Remember who the hall guide is, if one is logged in on this browser.
        token = cookie_from_environ(environ, SESSION_COOKIE)
        try:
            session = await self._sessions.get(token) if token else None
        except SignalError:
            session = None
        is_guide = session is not None and not session.stage \
            and session.user.role in GUIDE_ROLES
        # A registered kiosk; an unknown or revoked device token is an anonymous browser.
        device_token = cookie_from_environ(environ, DEVICE_COOKIE)
        device_sha = keys.hash_token(device_token) if device_token else ""
        device = await self._devices.by_sha(device_sha) if device_sha else None
        saved: dict[str, Any] = {
            "guide": session.user.username if session and is_guide else "",
            "guide_session": session.sha if session and is_guide else "", "tickets": [],
            "address": self._limits.address(environ),
            "device": device.device_id if device else "",
            "device_sha": device_sha if device else ""}
        # A registered kiosk is not counted against its address: a hall's kiosks share one.
        if not is_registered_device(saved):
            try:
                await self._limits.socket_opened(saved["address"])
            except SignalError as exc:
                raise refusal(exc) from None
            saved["counted"] = True
        await self.save_session(sid, saved)
        if device is not None:
            await self._devices.seen(device.device_id)
            self._kiosks[sid] = device.device_id
            logger.info("kiosk %s (%s) connected (socket %s)", device.device_id, device.hall,
                        sid)

    async def _guide(self, saved: dict[str, Any]) -> str:
        """The hall guide of this kiosk socket while their login session lasts (signed out or
        disabled since the socket connected: nobody)."""
        if not saved.get("guide"):
            return ""
        try:
            await self._sessions.by_sha(saved["guide_session"])
        except SignalError:
            return ""
        return str(saved["guide"])

    async def _device(self, saved: dict[str, Any]) -> Device | None:
        """The registered kiosk of this socket while it is not revoked (a revocation whose
        announcement was lost still counts here)."""
        sha = saved.get("device_sha")
        return await self._devices.by_sha(sha) if sha else None

    async def cut_device(self, device_id: str) -> None:
        """Close this process's sockets of a revoked kiosk, telling each why first."""
        for sid, kiosk in list(self._kiosks.items()):
            if kiosk == device_id:
                logger.info("kiosk %s revoked: closing socket %s", device_id, sid)
                await self._fanout.device_revoked(sid, device_id)
                await self.disconnect(sid)

    async def live_sockets(self) -> tuple[dict[str, int], dict[str, int]]:
        """This process's kiosk sockets: how many follow each ticket, and how many are counted
        against each client address."""
        tickets: dict[str, int] = {}
        addresses: dict[str, int] = {}
        for sid, _ in list(self.server.manager.get_participants(self.namespace, None)):
            try:
                session = await self.get_session(sid)
            except KeyError:
                continue  # gone meanwhile
            for ticket_id in (session or {}).get("tickets", []):
                tickets[ticket_id] = tickets.get(ticket_id, 0) + 1
            if session and session.get("counted"):
                addresses[session["address"]] = addresses.get(session["address"], 0) + 1
        return tickets, addresses

    async def resync(self) -> None:
        """After a Redis outage every ticket followed here is sent again, as it is now."""
        tickets, _ = await self.live_sockets()
        for ticket_id in tickets:
            await self._fanout.ticket(ticket_id)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._kiosks.pop(sid, None)
        session = await self.get_session(sid)
        for ticket_id in (session or {}).get("tickets", []):
            await self._tickets.sockets(ticket_id, -1)
        if session and session.get("counted"):
            await self._limits.socket_closed(session["address"])

    async def _open_tickets(self, sid: str, saved: dict[str, Any]) -> int:
        """The open tickets this socket follows (taken or resumed on it); it stops following
        the ones that ended."""
        ids = list(saved["tickets"])
        tickets = [await self._store.ticket(ticket_id) for ticket_id in ids]
        ended = {i for i, t in zip(ids, tickets, strict=True) if t is None or t.status not in OPEN}
        await self._unfollow(sid, ended)
        return len(ids) - len(ended)

    async def _unfollow(self, sid: str, ended: set[str]) -> None:
        """Ended tickets leave the socket's list and are counted out now, so that the list does
        not grow with every ticket a long-lived socket ever took and its disconnect counts only
        open ones out."""
        for ticket_id in await self._drop(sid, ended):
            await self._tickets.sockets(ticket_id, -1)

    async def _drop(self, sid: str, ticket_ids: set[str]) -> list[str]:
        """Take tickets out of the socket's list; returns those it had, which the caller counts
        out. Out of the list first: a disconnect meanwhile counts out what is left."""
        try:
            session = await self.get_session(sid)
        except KeyError:
            return []  # the socket left meanwhile: its disconnect counted them out
        followed = [t for t in session["tickets"] if t in ticket_ids]
        if followed:
            session["tickets"] = [t for t in session["tickets"] if t not in ticket_ids]
            await self.save_session(sid, session)
        return followed

    async def _attach(self, sid: str, ticket: Ticket, counted: bool = False) -> TicketView:
        """Follow a ticket on this socket; its sockets keep it in the queue. `counted`: the
        socket was counted for it already (by the script that created it).

        The socket is counted first and only then written into the session that on_disconnect
        reads, so a disconnect at any moment undoes exactly what was done: if the session is
        already gone (the socket left meanwhile), the count is taken back here."""
        try:
            session = await self.get_session(sid)
        except KeyError:
            if counted:
                await self._tickets.sockets(ticket.ticket_id, -1)
            raise SignalError("bad_state", "the socket disconnected") from None
        if ticket.ticket_id not in session["tickets"]:
            if not counted:
                await self._tickets.sockets(ticket.ticket_id, 1)
            try:
                session = await self.get_session(sid)
                session["tickets"].append(ticket.ticket_id)
                await self.save_session(sid, session)
            except KeyError:
                await self._tickets.sockets(ticket.ticket_id, -1)
                raise SignalError("bad_state", "the socket disconnected") from None
            await self._fanout.follow_ticket(sid, ticket.ticket_id)
        fresh = await self._store.ticket(ticket.ticket_id)
        view = await self._snapshots.ticket(fresh or ticket)
        room = await self._calls.applicant_room(fresh or ticket)
        if room is not None:
            view["room"] = room
        return view

    async def _owned_ticket(self, data: dict[str, Any]) -> Ticket:
        ticket = await self._store.check_ticket_token(data["ticket_id"], data["token"])
        if ticket is None:
            raise SignalError("not_found", "no ticket with this id and token")
        return ticket

    async def on_ticket_create(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        if data["consent"] is not True:
            raise SignalError("consent_required")
        also = data.get("also", [])
        if not all(isinstance(d, str) and 0 < len(d) <= 64 for d in also):
            raise SignalError("invalid_payload", "also must be a list of department ids")
        priority = bool(data.get("priority", False))
        booking = ""
        if data.get("booking"):
            # Refused here when unknown, used, too early or too late; used once by the script.
            arrived = await self._bookings.for_arrival(data["booking"])
            if arrived.department != data["department"]:
                raise SignalError("booking_used", "the booking is for another department")
            booking = arrived.code
        saved = await self.get_session(sid)
        guide = await self._guide(saved)
        if priority:
            if not guide:
                raise SignalError("forbidden", "only a hall guide may choose the priority lane")
            logger.info("guide %s puts a %s ticket in the priority lane", guide,
                        data["department"])
        # A registered kiosk holds one open ticket per device (the queue script's rule, across
        # all its sockets), instead of the per-socket count, and no address limit.
        registered = await self._device(saved)
        most = self._limits.config.max_tickets_per_socket if registered is None else 0
        if most and (sid in self._creating or await self._open_tickets(sid, saved) >= most):
            raise self._limits.too_many_tickets()
        if most:
            self._creating.add(sid)
        try:
            if registered is None:
                await self._limits.ticket_creation(saved["address"])
            ticket, token = await self._tickets.create(
                data["department"], consent_version=CONSENT_NOTICE_VERSION, priority=priority,
                channel=data.get("channel", "kiosk"), also=tuple(dict.fromkeys(also)),
                guide=guide, address="" if registered else saved["address"], device=registered,
                booking=booking, counted=True)
            # A failover that lost the ticket lost its count too; a Redis that went away
            # meanwhile is recounted from the sockets' lists when it is back.
            await self._durable.replicated(keys.TICKET(ticket.ticket_id))
            view = await self._attach(sid, ticket, counted=True)
        finally:
            self._creating.discard(sid)
        return {"ticket": {**view, "token": token}}

    async def on_ticket_resume(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        ticket = await self._owned_ticket(data)
        return {"ticket": await self._attach(sid, ticket)}

    async def on_ticket_cancel(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        ticket = await self._owned_ticket(data)
        # This socket's count for it goes with the cancel (in the same script call).
        followed = await self._drop(sid, {ticket.ticket_id})
        cancelled = await self._tickets.cancel(ticket, counted=bool(followed))
        return {"ticket": await self._snapshots.ticket(cancelled)}

    async def on_rating_options(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        """What the applicant may rate: the departments that took part, and the reasons."""
        ticket = await self._owned_ticket(data)
        return {"departments": await self._tickets.rating_options(ticket),
                "reasons": {"bad": list(BAD_REASONS), "good": list(GOOD_REASONS)},
                "comment_max": COMMENT_MAX}

    async def on_rating_submit(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        ticket = await self._owned_ticket(data)
        await self._tickets.rate(ticket, parse_ratings(data, ticket.department))
        return {}

    async def on_callback_request(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        """The answer shows the number masked: a hall kiosk's screen is seen by others."""
        if data.get("consent") is not True:
            raise SignalError("consent_required.callback")
        name = data["name"].strip()
        phone = data["phone"].strip()
        if not name or not _PHONE.match(phone):
            raise SignalError("invalid_payload", "a name and a phone number (5-20 digits)")
        saved = await self.get_session(sid)
        if not is_registered_device(saved):
            await self._limits.callback_request(saved["address"])
        await self._limits.callback_phone(phone)
        entry = await self._tickets.request_callback(data["department"], {
            "name": name, "phone": phone, "note": data.get("note", "").strip(),
            "consent_version": CONSENT_NOTICE_VERSION})
        await self._durable.replicated(keys.CALLBACKS(data["department"]), entry["callback_id"])
        return {"callback_id": entry["callback_id"], "phone": mask_phone(phone)}
