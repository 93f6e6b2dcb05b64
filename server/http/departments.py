"""The departments an applicant can choose from, with their hours and whether they are open now."""

from __future__ import annotations

import time

from aiohttp import web

from server.keys import CONFIG, STORE
from signaling.views import DepartmentView, department_view

routes = web.RouteTableDef()


@routes.get("/api/departments")
async def departments(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "departments": await department_views(request)})


async def department_views(request: web.Request) -> list[DepartmentView]:
    moment = request.app[CONFIG].signaling.local_time(time.time())
    return [department_view(d, moment) for d in await request.app[STORE].departments()]
