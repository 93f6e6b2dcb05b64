"""The far end of an HTTP request: the client's address and whether the browser reached the
service over HTTPS, believing X-Forwarded-For / X-Forwarded-Proto only from the configured
trusted proxies (the parsing is signaling/forwarded.py's)."""

from __future__ import annotations

from aiohttp import web

from server.keys import CONFIG
from signaling import forwarded


def client_address(request: web.Request) -> str:
    """The address to log and audit: the direct peer, or what a trusted proxy forwarded."""
    return forwarded.client_address(request.remote or "",
                                    request.headers.getall("X-Forwarded-For", []),
                                    request.app[CONFIG].proxies)


def is_https(request: web.Request) -> bool:
    """Whether the browser speaks HTTPS to us: a public origin is https:// (config.https), the
    connection itself is TLS, or a trusted proxy says so in X-Forwarded-Proto. Secure cookies
    and HSTS follow it."""
    config = request.app[CONFIG]
    return config.https or request.secure or forwarded.forwarded_https(
        request.remote or "", request.headers.getall("X-Forwarded-Proto", []), config.proxies)
