"""The health check for load balancers and monitoring: is Redis answering, and has this process
recovered from its last outage (signaling/redis_watch.py)? 200 `ok`, or 503 `degraded`.

`?node=<id>` (asked by a process that cannot reach Redis itself, signaling/nodes.py): the answer
also says whether that node is still registered in Redis (`node_registered`); false once the
sweep has taken it for dead and moved its rooms."""

from __future__ import annotations

from aiohttp import web

from server.keys import REDIS_WATCH, STORE
from signaling.errors import SignalError

routes = web.RouteTableDef()

# Node ids are short (signaling/nodes.py); anything longer is not one.
NODE_ID_MAX = 64


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    watch = request.app[REDIS_WATCH]
    # Up: asked now, so an outage shows at once. Down: what the watch's pings say (a stopped
    # Redis would hold every health check for the ping's timeout); it may answer again while
    # this process is still putting itself right in it: "degraded" until that is done.
    redis_ok = await watch.ping() if watch.available else watch.answering
    ok = redis_ok and watch.available
    answer: dict[str, object] = {"ok": ok, "redis": "ok" if redis_ok else "down",
                                 "status": "ok" if ok else "degraded"}
    node = request.query.get("node", "")
    if ok and node:
        if len(node) > NODE_ID_MAX:
            raise SignalError("invalid_payload", "node is not a node id")  # JSON 400 (errors.py)
        answer["node_registered"] = await request.app[STORE].node_registered(node)
    return web.json_response(answer, status=200 if ok else 503)
