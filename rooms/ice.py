"""Time-limited TURN credentials, the "TURN REST API" scheme (draft-uberti-behave-turn-rest) as
coturn implements it with `use-auth-secret` / `static-auth-secret`: the service and the TURN
server share a secret, and nothing else is shared or stored.

    username   = "<expiry, Unix seconds>:<user id>"
    credential = base64(HMAC-SHA1(secret, username))

coturn recomputes the credential from the username and refuses it once the expiry has passed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from rooms.config import MediaConfig


def turn_credentials(secret: str, user_id: str, now: float, ttl: int) -> tuple[str, str]:
    """(username, credential) for `user_id`, valid until `now + ttl` (Unix seconds)."""
    if not secret:
        raise ValueError("a TURN secret is needed")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    expiry = int(now) + ttl
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers_for(media: MediaConfig, user_id: str, now: float) -> list[dict[str, Any]]:
    """The RTCPeerConnection `iceServers` for one participant: the static `media.ice_servers`,
    then the shared-secret TURN servers with a credential made for this participant now."""
    servers = [server.to_browser() for server in media.ice_servers]
    if media.turn_urls:
        username, credential = turn_credentials(media.turn_secret, user_id, now, media.turn_ttl)
        servers.append({"urls": list(media.turn_urls), "username": username,
                        "credential": credential})
    return servers
