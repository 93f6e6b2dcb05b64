"""The HTML pages: kiosk, staff desk and supervisor, rendered from web/templates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from server.http.auth import current_user
from server.http.departments import department_views

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


def _page(template: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return aiohttp_jinja2.render_template(template, request, await _context(request))
    return handler


# Every page is public HTML: what it shows beyond the login form is fetched through the API or
# sockets, which check the user's role.
for path, template in (("/", "kiosk.html"), ("/staff", "staff.html"),
                       ("/supervisor", "supervisor.html"), ("/admin", "admin.html")):
    routes.get(path)(_page(template))
