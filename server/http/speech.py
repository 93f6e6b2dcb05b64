"""The kiosk's spoken prompts over HTTP: the page asks for a prompt's audio (rendered on the first
ask, server/speech.py) and then loads it as a static file under /speech/."""

from __future__ import annotations

import logging

from aiohttp import web

from server.keys import SPEECH
from server.speech import MAX_TEXT, prompt_key
from signaling.errors import SignalError

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/speech")
async def speech_url(request: web.Request) -> web.Response:
    """`?text=` one of the prompts: `{ok, url}` of its audio; `url` null when this server has no
    espeak-ng (the page may use the browser's voice), `off` true when speech is turned off."""
    text = request.query.get("text", "")
    if len(text) > MAX_TEXT:
        raise SignalError("invalid_payload.speech", "text too long")
    speech = request.app.get(SPEECH)
    if speech is None:
        return web.json_response({"ok": True, "url": None, "off": True})
    if not speech.available:
        # Known prompts only, even when nothing is rendered.
        if prompt_key(text) is None:
            raise SignalError("invalid_payload.speech", "not a known prompt")
        return web.json_response({"ok": True, "url": None, "off": False})
    name = await speech.render(text)
    return web.json_response({"ok": True, "url": f"/speech/{name}", "off": False})


@routes.get("/speech/{name}")
async def speech_file(request: web.Request) -> web.StreamResponse:
    """A rendered prompt (audio/wav); its name is a hash of voice and text, so it never changes."""
    speech = request.app.get(SPEECH)
    path = speech.path(request.match_info["name"]) if speech is not None else None
    if path is None:
        raise SignalError("not_found.speech", "no such prompt audio")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Cache-Control": "public, max-age=31536000, immutable"})
