"""The HTML pages: kiosk, staff desk and supervisor, rendered from web/templates."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from server.api import department_views
from server.auth import current_user

routes = web.RouteTableDef()
LANGS = ("zh", "en")


async def _context(request: web.Request) -> dict[str, Any]:
    lang = request.query.get("lang") or request.cookies.get("yz_lang") or "zh"
    user = await current_user(request)
    return {
        "lang": lang if lang in LANGS else "zh",
        "static": "/static",
        "departments": await department_views(request),
        "user": user.public() if user else None,
    }


@routes.get("/")
async def kiosk(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("kiosk.html", request, await _context(request))


@routes.get("/staff")
async def staff(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("staff.html", request, await _context(request))


@routes.get("/supervisor")
async def supervisor(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("supervisor.html", request, await _context(request))


@routes.get("/admin")
async def admin(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("admin.html", request, await _context(request))
