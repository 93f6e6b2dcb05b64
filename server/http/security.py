"""What the HTTP edge asks of a browser and tells it: state-changing API requests only from the
configured public origins (against CSRF, login CSRF included), and the headers every answer
carries — the Content-Security-Policy (no inline script or style anywhere), HSTS over HTTPS."""

from __future__ import annotations

import logging

from aiohttp import web

from server.http.remote import client_address, is_https
from server.keys import CONFIG
from signaling.errors import SignalError

logger = logging.getLogger(__name__)

# The pages load only their own files: ES modules and CSS from /static, the boot data as a
# <script type="application/json"> (data, not script: CSP does not apply to it). Media and
# pictures may also be blob:/data: URLs the page made itself. connect-src 'self' covers the
# Socket.IO WebSocket (CSP 3: 'self' matches ws:/wss: on the same host and port).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
))
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values that say a browser sent the request from another origin.
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def check_origin(request: web.Request) -> None:
    """Refuse a state-changing /api/ request that a browser sent from another origin. Browsers
    send Origin with every POST, PUT, PATCH and DELETE; without it, Sec-Fetch-Site still tells a
    cross-site request. Neither header (curl, scripts, the test clients): allowed, since no
    browser is involved whose cookies could be ridden."""
    if request.method in SAFE_METHODS or not request.path.startswith("/api/"):
        return
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin in request.app[CONFIG].origins:
            return
        refused = f"Origin {origin[:200]!r}"
    else:
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        if site not in FOREIGN_FETCH_SITES:
            return
        refused = f"Sec-Fetch-Site {site}"
    # Also what an operator sees who reaches the service at an address not in public_origins.
    logger.warning("%s %s from %s refused: %s is not one of public_origins %s",
                   request.method, request.path, client_address(request), refused,
                   ", ".join(request.app[CONFIG].origins))
    raise SignalError("forbidden.origin")


def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The security headers of every answer (pages, API, static files, errors)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if is_https(request):
        headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
