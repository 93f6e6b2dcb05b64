"""The HTTP edge: one module per resource, each with its route table; `setup` adds them all, the
page templates and the static files. Refusals become answers in `errors.errors_and_headers`."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server.http import (
    accounts,
    admin,
    alerts,
    audit,
    auth,
    bookings,
    cases,
    departments,
    devices,
    exports,
    health,
    matters,
    notices,
    pages,
    recordings,
    rooms,
    speech,
    stats,
    wallboard,
)
from server.http.errors import RequestLog, errors_and_headers

__all__ = ["RequestLog", "errors_and_headers", "setup"]
logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"
ROUTES = (auth.routes, departments.routes, wallboard.routes, admin.routes, accounts.routes,
          devices.routes, recordings.routes, exports.routes, alerts.routes, rooms.routes,
          audit.routes, pages.routes, health.routes, matters.routes, notices.routes,
          cases.routes, stats.routes, speech.routes, bookings.routes)


def setup(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
                         autoescape=True)
    for routes in ROUTES:
        app.router.add_routes(routes)
    vendor = WEB_DIR / "node_modules" / "socket.io-client" / "dist"
    if vendor.is_dir():
        app.router.add_static("/static/vendor/socket.io/", vendor)
    else:
        logger.warning("%s is missing: run `npm ci` in web/", vendor)
    charts = WEB_DIR / "node_modules" / "chart.js" / "dist"
    if charts.is_dir():
        app.router.add_static("/static/vendor/chart.js/", charts)
    else:
        logger.warning("%s is missing: run `npm ci` in web/", charts)
    app.router.add_static("/static/", WEB_DIR / "static")
