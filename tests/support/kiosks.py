"""Registered kiosks for tests: enrolling one through the admin API, and a /kiosk socket that
carries its device cookie (and a hall guide's session cookie, when given)."""

from __future__ import annotations

from typing import Any

from signaling.client import SignalingClient
from signaling.devices import DEVICE_COOKIE
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer

DEVICES_URL = "/api/admin/devices"
HALL = "市民中心一楼大厅"


async def enrol(server: LiveServer, name: str = "1号机", hall: str = HALL,
                location: str = "东侧入口") -> dict[str, Any]:
    """Enrol a kiosk as the demo admin; the API's answer (device, token, url, qr_svg)."""
    async with client_session() as admin:
        await logged_in(admin, server.url, "admin")
        response = await admin.post(server.url + DEVICES_URL,
                                    json={"name": name, "hall": hall, "location": location})
        body: dict[str, Any] = await response.json()
        assert response.status == 201, body
        return body


async def kiosk_socket(server: LiveServer, token: str,
                       guide_cookie: str = "") -> SignalingClient:
    """A /kiosk socket of the registered kiosk whose device token is `token`."""
    cookie = f"{DEVICE_COOKIE}={token}" + (f"; {guide_cookie}" if guide_cookie else "")
    return await SignalingClient.connect(server.url, "/kiosk", cookie)
