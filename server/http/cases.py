"""差评 rectification cases for supervisors: the list (filters: state, department, overdue), one
case with its history, and taking its next step (audited by signaling/cases.py). Only supervisors,
and a scoped one only their departments' cases (others answer like unknown ones)."""

from __future__ import annotations

import logging

import redis
from aiohttp import web

from rooms.roles import ACCOUNT_ROLES
from server.http.auth import require_user
from server.http.payload import SAFE_ID, json_object
from server.http.remote import client_address
from server.keys import CASES
from signaling.case_rules import CaseState
from signaling.errors import SignalError

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_STEP_BYTES = 8 * 1024
_STATES = ("open", *(s.value for s in CaseState))


@routes.get("/api/cases")
async def cases(request: web.Request) -> web.Response:
    user = await require_user(request, ACCOUNT_ROLES)
    query = request.query
    unknown = sorted(set(query) - {"state", "department", "overdue"})
    if unknown:
        raise SignalError("invalid_payload.filters", filters=", ".join(unknown))
    state = query.get("state", "").strip()
    if state and state not in _STATES:
        raise SignalError("invalid_payload.filters", filters="state")
    department = query.get("department", "").strip()
    if department and not SAFE_ID.match(department):
        raise SignalError("invalid_payload.department_id")
    raw = query.get("overdue", "").strip().lower()
    if raw not in ("", "1", "0", "true", "false"):
        raise SignalError("invalid_payload.filters", filters="overdue")
    overdue = None if not raw else raw in ("1", "true")
    found = await request.app[CASES].list(user, state=state, department=department,
                                          overdue=overdue)
    return web.json_response({"ok": True, "cases": found})


def _case_id(request: web.Request) -> str:
    case_id = request.match_info["case_id"]
    if not SAFE_ID.match(case_id):
        raise SignalError("not_found.case")
    return case_id


@routes.get("/api/cases/{case_id}")
async def case(request: web.Request) -> web.Response:
    user = await require_user(request, ACCOUNT_ROLES)
    found = await request.app[CASES].get(user, _case_id(request))
    return web.json_response({"ok": True, "case": found})


@routes.post("/api/cases/{case_id}/steps")
async def step(request: web.Request) -> web.Response:
    """Body: {step, text, decision?} (decision: upheld or rejected, for an appeal's)."""
    user = await require_user(request, ACCOUNT_ROLES)
    case_id = _case_id(request)
    data = await json_object(request, MAX_STEP_BYTES)
    unknown = sorted(set(data) - {"step", "text", "decision"})
    if unknown:
        raise SignalError("invalid_payload.case_step", reason=f"unknown {', '.join(unknown)}")
    step_name, text, decision = data.get("step"), data.get("text", ""), data.get("decision", "")
    if not all(isinstance(v, str) for v in (step_name, text, decision)):
        raise SignalError("invalid_payload.case_step", reason="step, text and decision are text")
    try:
        found = await request.app[CASES].step(user, case_id, str(step_name), str(text),
                                              str(decision), remote=client_address(request))
    except redis.WatchError:
        raise SignalError("bad_state", "the case changed meanwhile; read it again") from None
    return web.json_response({"ok": True, "case": found})
