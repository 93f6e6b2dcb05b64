"""The media layer's configuration: what the server announces, TURN, codecs and room timings.
A bad value raises ConfigError naming the setting (the service's config loader composes this
section from the [media] table and YUNZHEN_MEDIA_* variables)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

# Bounds of media.turn_ttl, the lifetime of a TURN credential handed out on room:join (seconds).
MIN_TURN_TTL = 60
MAX_TURN_TTL = 86400
# media.video_codec: the one video codec of the server (every track is forwarded as it is).
VIDEO_CODECS = ("vp8", "h264")
# media.forwarding: "frame" reassembles each frame and re-packetizes it per subscriber (aiortc's
# jitter buffer and packetizer); "rtp" rewrites and forwards each RTP packet (rooms/rtp_forward.py).
FORWARDING_MODES = ("frame", "rtp")


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the setting. Every layer's
    config section raises it, so it lives in the lowest layer that has one."""

@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if not self.urls:
            raise ConfigError("media.ice_servers: every entry needs at least one url")
        for url in self.urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ConfigError(f"media.ice_servers: {url!r} is not a stun:/turn:/turns: url")

    def to_browser(self) -> dict[str, Any]:
        out: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            out["username"] = self.username
        if self.credential is not None:
            out["credential"] = self.credential
        return out


@dataclass(frozen=True)
class MediaConfig:
    # Addresses the server announces in its ICE candidates. aioice leaves loopback out of its host
    # candidates, so tests announce 127.0.0.1; a server behind NAT announces its public address.
    announce_addresses: tuple[str, ...] = ("127.0.0.1",)
    ice_servers: tuple[IceServer, ...] = ()
    # Per-subscriber queue bound: a slow subscriber drops packets instead of growing memory.
    subscriber_queue: int = 256
    # Seconds a room stays open with nobody in it.
    empty_room_timeout: float = 30.0
    # Seconds a participant whose network dropped keeps their place (shown as reconnecting)
    # before they are taken out of the room; a rejoin within it continues their session.
    reconnect_grace: float = 30.0
    # TURN servers that share `turn_secret` with the service (coturn's use-auth-secret): every
    # participant gets its own credential on room:join, valid for `turn_ttl` seconds.
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = field(default="", repr=False)
    turn_ttl: int = 3600
    # The one video codec every video m-line offers: "vp8", or "h264" for kiosks with hardware
    # H.264 encoders (recordings of video tracks are then Matroska .mkv, not WebM).
    video_codec: str = "vp8"
    # How published media reaches subscribers: "rtp" (packet by packet below the jitter buffer,
    # rooms/rtp_forward.py) or "frame" (the pass-through of whole frames, kept for one release).
    forwarding: str = "rtp"

    def __post_init__(self) -> None:
        for address in self.announce_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(
                    f"media.announce_addresses: {address!r} is not an IP address"
                ) from None
        if self.subscriber_queue < 8:
            raise ConfigError("media.subscriber_queue must be at least 8")
        if self.empty_room_timeout <= 0:
            raise ConfigError("media.empty_room_timeout must be positive")
        if self.reconnect_grace <= 0:
            raise ConfigError("media.reconnect_grace must be positive")
        for url in self.turn_urls:
            if not isinstance(url, str) or not url.startswith(("turn:", "turns:")):
                raise ConfigError(f"media.turn_urls: {url!r} is not a turn:/turns: url")
        if self.turn_urls and not self.turn_secret:
            raise ConfigError("media.turn_secret must be set when media.turn_urls is "
                              "(or YUNZHEN_TURN_SECRET)")
        if not MIN_TURN_TTL <= self.turn_ttl <= MAX_TURN_TTL:
            raise ConfigError(f"media.turn_ttl: {self.turn_ttl} is not between {MIN_TURN_TTL} "
                              f"and {MAX_TURN_TTL} seconds")
        if self.video_codec not in VIDEO_CODECS:
            raise ConfigError(f"media.video_codec: {self.video_codec!r} is not one of "
                              f"{', '.join(VIDEO_CODECS)}")
        if self.forwarding not in FORWARDING_MODES:
            raise ConfigError(f"media.forwarding: {self.forwarding!r} is not one of "
                              f"{', '.join(FORWARDING_MODES)}")
