"""The health check for load balancers and monitoring: is Redis answering, and has this process
recovered from its last outage (signaling/redis_watch.py)? 200 `ok`, or 503 `degraded`."""

from __future__ import annotations

from aiohttp import web

from server.keys import REDIS_WATCH

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    watch = request.app[REDIS_WATCH]
    # Up: asked now, so an outage shows at once. Down: what the watch's pings say (a stopped
    # Redis would hold every health check for the ping's timeout); it may answer again while
    # this process is still putting itself right in it: "degraded" until that is done.
    redis_ok = await watch.ping() if watch.available else watch.answering
    ok = redis_ok and watch.available
    return web.json_response({"ok": ok, "redis": "ok" if redis_ok else "down",
                              "status": "ok" if ok else "degraded"},
                             status=200 if ok else 503)
