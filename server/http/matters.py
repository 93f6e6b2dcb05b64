"""The matter catalogue over HTTP: anyone reads it (a hall's matters and materials are public, and
the kiosk searches them); an admin creates, changes and deletes matters, each change audited with
the matter before and after (the rules are signaling/matters.py's)."""

from __future__ import annotations

import logging

from aiohttp import web

from rooms.roles import Role
from server.http.auth import require_user
from server.http.payload import SAFE_ID, json_object
from server.http.remote import client_address
from server.keys import AUDIT, MATTERS, STORE
from signaling.errors import SignalError
from signaling.matters import MATTER_ID, Matter, MatterError

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

# A matter with 50 materials of long notes and a long legal basis stays well under this.
MAX_MATTER_BYTES = 64 * 1024


def _matter_id(request: web.Request) -> str:
    matter_id = request.match_info["matter_id"]
    if not MATTER_ID.match(matter_id):
        raise SignalError("not_found.matter")
    return matter_id


@routes.get("/api/matters")
async def list_matters(request: web.Request) -> web.Response:
    """A department's matters (``?department=<id>``), or every matter without it."""
    matters = request.app[MATTERS]
    dept = request.query.get("department")
    if dept is None:
        found = await matters.all()
    else:
        if not SAFE_ID.match(dept):
            raise SignalError("invalid_payload.department_id")
        if await request.app[STORE].department(dept) is None:
            raise SignalError("not_found.department")
        found = await matters.for_department(dept)
    return web.json_response({"ok": True, "matters": [m.to_dict() for m in found]})


@routes.get("/api/matters/{matter_id}")
async def get_matter(request: web.Request) -> web.Response:
    matter = await request.app[MATTERS].get(_matter_id(request))
    if matter is None:
        raise SignalError("not_found.matter")
    return web.json_response({"ok": True, "matter": matter.to_dict()})


@routes.put("/api/admin/matters/{matter_id}")
async def put_matter(request: web.Request) -> web.Response:
    """Create or change a matter (the whole matter: a material left out is removed)."""
    user = await require_user(request, (Role.ADMIN,))
    data = await json_object(request, MAX_MATTER_BYTES)
    matter_id = request.match_info["matter_id"]
    if data.get("id", matter_id) != matter_id:
        raise SignalError("invalid_payload.matter_id_differs")
    try:
        matter = Matter.from_dict({**data, "id": matter_id})
    except MatterError as exc:
        raise SignalError("invalid_payload.matter", reason=str(exc), reason_zh=exc.zh) from None
    if await request.app[STORE].department(matter.department) is None:
        raise SignalError("invalid_payload.matter", reason="no such department",
                          reason_zh="没有这个部门")
    before = await request.app[MATTERS].put(matter)
    await request.app[AUDIT].append(user.username, "matter_save", remote=client_address(request),
                                    target=matter.id, department=matter.department,
                                    before=before.to_dict() if before else None,
                                    after=matter.to_dict())
    logger.info("admin %s saved matter %s of %s", user.username, matter.id, matter.department)
    return web.json_response({"ok": True, "matter": matter.to_dict(), "created": before is None},
                             status=201 if before is None else 200)


@routes.delete("/api/admin/matters/{matter_id}")
async def delete_matter(request: web.Request) -> web.Response:
    user = await require_user(request, (Role.ADMIN,))
    before = await request.app[MATTERS].delete(_matter_id(request))
    if before is None:
        raise SignalError("not_found.matter")
    await request.app[AUDIT].append(user.username, "matter_delete",
                                    remote=client_address(request), target=before.id,
                                    department=before.department, before=before.to_dict())
    logger.info("admin %s deleted matter %s of %s", user.username, before.id, before.department)
    return web.json_response({"ok": True, "matter": before.to_dict()})
