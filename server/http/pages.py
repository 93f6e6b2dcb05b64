"""The HTML pages: kiosk, staff desk, supervisor, admin and audit, rendered from web/templates,
and the boot data each page's module reads (web/static/js/common.js bootData). The kiosk page
also takes a hall screen's enrolment URL (server/http/devices.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from server.http import devices
from server.http.auth import current_user
from server.http.departments import department_views
from server.keys import CONFIG
from signaling.config import SignalingConfig
from signaling.privacy import CONSENT_NOTICE_VERSION

routes = web.RouteTableDef()
LANGS = ("zh", "en")
STATIC = "/static"
# What the pages use of a department: its names everywhere; the kiosk's search and service hours
# when the server has them.
DEPARTMENT_NAMES = ("id", "name_zh", "name_en")
DEPARTMENT_EXTRAS = ("matters", "open_now", "next_open", "hours", "skill")


def _department(dept: Mapping[str, Any]) -> dict[str, Any]:
    entry = {key: dept[key] for key in DEPARTMENT_NAMES}
    entry.update({key: dept[key] for key in DEPARTMENT_EXTRAS if key in dept})
    return entry


def _user(user: Mapping[str, Any]) -> dict[str, Any]:
    return {"username": user.get("username"), "display_name": user.get("display_name"),
            "role": user.get("role"), "departments": list(user.get("departments") or [])}


def page_context(lang: str | None = None, departments: Iterable[Mapping[str, Any]] = (),
                 user: Mapping[str, Any] | None = None, *,
                 user_known: bool = True, idle_timeout: int = 0,
                 callback_keep_days: int = SignalingConfig.callback_keep_days,
                 retention_days: int = 180,
                 device: Mapping[str, Any] | None = None,
                 kiosk_idle: tuple[int, int] = (60, 10),
                 timezone: str = SignalingConfig.timezone) -> dict[str, Any]:
    """A template's context: the page language and one `boot` object for the page module.

    `user_known` says the server checked the session, so `user` None means nobody is logged in;
    without it the page asks /api/me itself (as it fetches /api/departments when given none).
    `idle_timeout`: the seconds of inactivity after which the page signs out (it warns first).
    The kiosk's notices say how long a call-back request (`callback_keep_days`) and a recording
    (`retention_days`) are kept, and which version of them the applicant agrees to; `device`:
    the registered kiosk the kiosk page runs on (its name and hall), or None; `kiosk_idle`: the
    kiosk's privacy wipe, seconds without a touch and the warning's seconds (wipe.js);
    `timezone`: the hall's, in which every page shows dates and times (hall_time.js)."""
    page_lang = lang if lang in LANGS else "zh"
    boot = {"lang": page_lang, "departments": [_department(d) for d in departments],
            "user": _user(user) if user else None, "has_user": user_known,
            "idle_timeout": idle_timeout, "callback_keep_days": callback_keep_days,
            "consent_notice_version": CONSENT_NOTICE_VERSION, "retention_days": retention_days,
            "device": dict(device) if device else None,
            "kiosk_idle": {"seconds": kiosk_idle[0], "warning": kiosk_idle[1]},
            "timezone": timezone}
    return {"lang": page_lang, "html_lang": "en" if page_lang == "en" else "zh-CN",
            "static": STATIC, "boot": boot}


async def _render(request: web.Request, template: str,
                  device: Mapping[str, Any] | None = None) -> web.Response:
    lang = request.query.get("lang") or request.cookies.get("yz_lang")
    user = await current_user(request)
    config = request.app[CONFIG]
    context = page_context(lang, await department_views(request),
                           user.public() if user else None,
                           idle_timeout=config.idle_timeout,
                           callback_keep_days=config.callback_keep_days,
                           retention_days=config.retention_days, device=device,
                           kiosk_idle=(config.kiosk_idle_seconds,
                                       config.kiosk_idle_warning_seconds),
                           timezone=config.signaling.timezone)
    return aiohttp_jinja2.render_template(template, request, context)


def _page(template: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await _render(request, template)
    return handler


@routes.get("/")
async def kiosk(request: web.Request) -> web.StreamResponse:
    """The kiosk page; `/?device=<token>` enrols the screen as a registered kiosk first."""
    if "device" in request.query:
        return await devices.enrol(request)
    device = await devices.kiosk_device(request)
    response = await _render(request, "kiosk.html", {"name": device.name, "hall": device.hall}
                             if device else None)
    devices.keep_device_cookie(request, response, device)
    return response


# Every page is public HTML: what it shows beyond the login form is fetched through the API or
# sockets, which check the user's role.
for path, template in (("/staff", "staff.html"), ("/supervisor", "supervisor.html"),
                       ("/admin", "admin.html"), ("/audit", "audit.html")):
    routes.get(path)(_page(template))
