"""What clients are shown of a department, a ticket and a staff member: pure functions of values
(no Redis, no asyncio); signaling/snapshots.py reads their inputs from the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

from signaling.accounts import User
from signaling.departments import Department
from signaling.eta import average_handling, estimate_wait
from signaling.schema import StaffState, TicketView
from signaling.skills import skill_of
from signaling.states import Presence, TicketStatus
from signaling.store import Ticket


class DepartmentView(TypedDict):
    """A department as the kiosk lists it (GET /api/departments)."""
    id: str
    name_zh: str
    name_en: str
    matters: list[str]
    open_now: bool
    next_open: float | None
    hours: str
    # An interpreter pool's skill (signaling/skills.py), None for a department.
    skill: str | None


@dataclass(frozen=True)
class WaitBasis:
    """What a department's wait estimates are made of, read once for all its waiting tickets."""
    on_duty: int
    available: int
    handling_s: float

    @classmethod
    def of(cls, on_duty: int, available: int, recent_handling: Sequence[float]) -> WaitBasis:
        return cls(on_duty, available, average_handling(recent_handling))

    def eta(self, position: int) -> float | None:
        return estimate_wait(position, self.on_duty, self.available, self.handling_s)


def department_view(dept: Department, moment: dt.datetime,
                    matters: Sequence[str] = ()) -> DepartmentView:
    """`moment`: now, in the hall's time zone; `matters`: the names of the department's matters
    in the catalogue (signaling/matters.py), what the kiosk's search finds it by."""
    open_now = dept.is_open(moment)
    upcoming = None if open_now else dept.next_open(moment)
    return {"id": dept.id, "name_zh": dept.name_zh, "name_en": dept.name_en,
            "matters": list(matters), "open_now": open_now,
            "next_open": upcoming.timestamp() if upcoming else None,
            "hours": dept.hours_text(), "skill": skill_of(dept.id)}


def ticket_view(ticket: Ticket, position: int, basis: WaitBasis | None) -> TicketView:
    """`position`: 1-based in the queue while waiting, else 0; `basis`: the department's, while
    waiting (the estimate is None without it)."""
    waiting = ticket.status == TicketStatus.WAITING
    return {
        "ticket_id": ticket.ticket_id, "number": ticket.number,
        "department": ticket.department, "also": list(ticket.also),
        "priority": ticket.priority, "channel": ticket.channel, "status": ticket.status,
        "position": position if waiting else 0,
        "eta_seconds": basis.eta(position) if waiting and basis is not None else None,
        "created_at": ticket.created_at, "hall": ticket.hall,
    }


def staff_view(user: User, state: Mapping[str, str], queues: dict[str, int],
               longest: dict[str, float | None], callbacks: int) -> StaffState:
    """`state`: the staff member's presence hash; `queues`, `longest`: waiting count and oldest
    waiting ticket per pool; `callbacks`: pending callback requests of their pools."""
    presence = state.get("presence", Presence.OFFLINE)
    wrap_until = state.get("wrap_until")
    return {"username": user.username, "display_name": user.display_name,
            "departments": list(user.departments), "presence": presence,
            "reason": state.get("reason", ""),
            "wrap_up_until": float(wrap_until) if wrap_until and presence == Presence.WRAP_UP
            else None,
            "queues": queues, "longest": longest, "callbacks": callbacks}
