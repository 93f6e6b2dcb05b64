"""The supervisors' wallboard: live queues and staff states."""

from __future__ import annotations

import time

from aiohttp import web

from server.http.auth import REVIEWER_ROLES, require_user
from server.keys import ACCOUNTS, STORE
from signaling.states import Presence

routes = web.RouteTableDef()


@routes.get("/api/wallboard")
async def wallboard(request: web.Request) -> web.Response:
    """Live queues and staff states for supervisors."""
    user = await require_user(request, REVIEWER_ROLES)
    # A supervisor scoped to departments sees those only (empty: the whole hall).
    scope = set(user.departments)
    store = request.app[STORE]
    staff = []
    counts: dict[str, dict[str, int]] = {}
    for member in await request.app[ACCOUNTS].staff_users():
        if scope and not scope & set(member.departments):
            continue
        state = await store.staff_state(member.username)
        presence = state.get("presence", Presence.OFFLINE)
        staff.append({**member.public(), "presence": presence, "reason": state.get("reason", ""),
                      "since": float(state["since"]) if state.get("since") else None,
                      "reconnecting": state.get("gone") == "1"})
        for dept in member.departments:
            by_state = counts.setdefault(dept, {})
            by_state[presence] = by_state.get(presence, 0) + 1
    queues = [{"department": d.id, "name_zh": d.name_zh, "name_en": d.name_en,
               "waiting": len(await store.waiting(d.id)),
               "longest_since": await store.longest_since(d.id),
               "staff": counts.get(d.id, {})} for d in await store.departments()
              if not scope or d.id in scope]
    return web.json_response({"ok": True, "now": time.time(), "queues": queues, "staff": staff})
