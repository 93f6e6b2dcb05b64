"""Interpreter skills as pools: an interpreter pool is a department whose id is `interp-<skill>`
(interp-sign, interp-ko, …); its members are staff accounts with that skill. Pure names only."""

from __future__ import annotations

import logging

from rooms.roles import Role

logger = logging.getLogger(__name__)

# A department with this id prefix is an interpreter pool; the rest of the id is the skill.
POOL_PREFIX = "interp-"


def skill_of(department: str) -> str | None:
    """The skill of an interpreter pool ('sign' for interp-sign), None for a department."""
    if department.startswith(POOL_PREFIX) and len(department) > len(POOL_PREFIX):
        return department[len(POOL_PREFIX):]
    return None


def room_role(department: str) -> Role:
    """The role in a room of a staff account joining for `department`."""
    return Role.INTERPRETER if skill_of(department) else Role.STAFF
