"""The departments an applicant can choose from, with their hours and whether they are open now."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.keys import HUB, STORE

routes = web.RouteTableDef()


@routes.get("/api/departments")
async def departments(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "departments": await department_views(request)})


async def department_views(request: web.Request) -> list[dict[str, Any]]:
    hub, now = request.app[HUB], time.time()
    return [await hub.department_view(d, now) for d in await request.app[STORE].departments()]
