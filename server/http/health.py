"""The health check for load balancers and monitoring: is Redis answering."""

from __future__ import annotations

from aiohttp import web

from server.keys import REDIS

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        redis_ok = bool(await request.app[REDIS].ping())
    except Exception:
        redis_ok = False
    return web.json_response({"ok": redis_ok, "redis": redis_ok}, status=200 if redis_ok else 503)
