"""Who someone is in the service, and the participant ids built from it. One enum for the
accounts' roles and the roles in a room (an applicant has no account; an admin never joins a room),
so Python, the queue script and the pages share the same names."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    APPLICANT = "applicant"
    STAFF = "staff"
    GUIDE = "guide"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    AUDITOR = "auditor"
    # A staff account of an interpreter pool (signaling/interpreters.py) in a room it was
    # invited to: not an account role, only a room role.
    INTERPRETER = "interpreter"


# The roles an account can have, one each (三权分立: the system administrator, the security
# auditor and the service's supervisors are different people, so no account holds two of them).
ACCOUNT_ROLES = (Role.ADMIN, Role.AUDITOR, Role.SUPERVISOR, Role.STAFF, Role.GUIDE)
# The roles a participant of a room can have.
ROOM_ROLES = (Role.APPLICANT, Role.GUIDE, Role.STAFF, Role.SUPERVISOR, Role.INTERPRETER)
# Receive-only participants: they see and hear everybody and publish nothing.
OBSERVER_ROLES = frozenset({Role.SUPERVISOR})
# Accounts that review recordings and watch the queues.
REVIEWER_ROLES = (Role.SUPERVISOR,)
# A participant id is "<prefix>-<ticket id or username>": unique in a room, stable across a
# reconnect, and telling the role at a glance in logs and timelines.
_PREFIX = {Role.APPLICANT: "a", Role.STAFF: "s", Role.GUIDE: "g", Role.SUPERVISOR: "v",
           Role.INTERPRETER: "i"}


def participant_id(role: Role | str, ident: str) -> str:
    """The participant id of an applicant (ident: the ticket id) or an account (the username)."""
    try:
        return f"{_PREFIX[Role(role)]}-{ident}"
    except (KeyError, ValueError):
        raise ValueError(f"{role!r} has no place in a room") from None
