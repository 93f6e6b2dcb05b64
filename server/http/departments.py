"""The departments an applicant can choose from, with their hours, whether they are open now, and
the names of their matters (the kiosk's search)."""

from __future__ import annotations

import time

from aiohttp import web

from server.keys import CONFIG, MATTERS, STORE
from signaling.views import DepartmentView, department_view

routes = web.RouteTableDef()


@routes.get("/api/departments")
async def departments(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "departments": await department_views(request)})


async def department_views(request: web.Request) -> list[DepartmentView]:
    moment = request.app[CONFIG].signaling.local_time(time.time())
    names: dict[str, list[str]] = {}
    for matter in await request.app[MATTERS].all():
        names.setdefault(matter.department, []).append(matter.name)
    return [department_view(d, moment, names.get(d.id, ()))
            for d in await request.app[STORE].departments()]
