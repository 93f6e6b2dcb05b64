"""The service configuration: one frozen, typed object, read from a TOML file and the environment,
checked at start so that a bad value stops the start with a message naming it."""

from __future__ import annotations

import ipaddress
import os
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "YUNZHEN_"
# Bounds of media.turn_ttl, the lifetime of a TURN credential handed out on room:join (seconds).
MIN_TURN_TTL = 60
MAX_TURN_TTL = 86400
# Bounds of retention_days, how long recordings are kept (days).
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 36500
# media.video_codec: the one video codec of the server (every track is forwarded as it is).
VIDEO_CODECS = ("vp8", "h264")


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the setting."""


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
                              f"(or {ENV_PREFIX}TURN_SECRET)")
        if not MIN_TURN_TTL <= self.turn_ttl <= MAX_TURN_TTL:
            raise ConfigError(f"media.turn_ttl: {self.turn_ttl} is not between {MIN_TURN_TTL} "
                              f"and {MAX_TURN_TTL} seconds")
        if self.video_codec not in VIDEO_CODECS:
            raise ConfigError(f"media.video_codec: {self.video_codec!r} is not one of "
                              f"{', '.join(VIDEO_CODECS)}")


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    # Empty: start a private redis-server under data_dir. Otherwise redis:// or unix:// URL.
    redis_url: str = ""
    redis_server_binary: str = "redis-server"
    data_dir: Path = Path("var")
    # Demo mode seeds departments and demo accounts (password demo12345) on the first run.
    demo: bool = False
    # Seconds a login session lasts.
    session_ttl: int = 12 * 3600
    # Largest Socket.IO payload accepted, in bytes.
    max_payload_bytes: int = 64 * 1024
    # Departments to create at start when Redis does not have them yet (TOML or JSON).
    departments_file: str = ""
    # The hall's time zone: service hours are local times.
    timezone: str = "Asia/Shanghai"
    # Days a recording is kept before the retention job deletes it (unless on legal hold).
    retention_days: int = 180
    # Supervisors are alerted when less than this much space (MB) is free for recordings.
    recordings_min_free_mb: int = 500
    media: MediaConfig = field(default_factory=MediaConfig)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port: {self.port} is not between 1 and 65535")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"redis_url: {self.redis_url!r} must start with redis://, "
                              "rediss:// or unix://")
        if self.session_ttl < 60:
            raise ConfigError("session_ttl must be at least 60 seconds")
        if self.max_payload_bytes < 1024:
            raise ConfigError("max_payload_bytes must be at least 1024")
        if not MIN_RETENTION_DAYS <= self.retention_days <= MAX_RETENTION_DAYS:
            raise ConfigError(f"retention_days: {self.retention_days} is not between "
                              f"{MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS}")
        if self.recordings_min_free_mb < 0:
            raise ConfigError("recordings_min_free_mb must be 0 (no check) or more")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"timezone: {self.timezone!r} is not a known time zone") from None

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"


def _coerce(name: str, value: Any, current: Any) -> Any:
    """Turn a file or environment value into the type of the default it replaces."""
    try:
        if isinstance(current, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if isinstance(current, int):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, Path):
            return Path(str(value))
        if isinstance(current, str):
            if not isinstance(value, str):
                raise ValueError(value)
            return value
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a valid {type(current).__name__}") from None
    raise ConfigError(f"{name}: cannot be set this way")


def _media_from(section: Mapping[str, Any], env: Mapping[str, str]) -> MediaConfig:
    base = MediaConfig()
    values: dict[str, Any] = {}
    unknown = set(section) - {f.name for f in fields(MediaConfig)}
    if unknown:
        raise ConfigError(f"media: unknown setting(s) {', '.join(sorted(unknown))}")
    announce = section.get("announce_addresses")
    env_announce = env.get(ENV_PREFIX + "ANNOUNCE_ADDRESSES")
    if env_announce is not None:
        announce = [a.strip() for a in env_announce.split(",") if a.strip()]
    if announce is not None:
        if not isinstance(announce, list | tuple):
            raise ConfigError("media.announce_addresses must be a list of IP addresses")
        values["announce_addresses"] = tuple(str(a) for a in announce)
    servers = section.get("ice_servers")
    if servers is not None:
        if not isinstance(servers, list):
            raise ConfigError("media.ice_servers must be a list of tables")
        parsed = []
        for entry in servers:
            if not isinstance(entry, dict) or "urls" not in entry:
                raise ConfigError("media.ice_servers: every entry needs urls")
            urls = entry["urls"]
            parsed.append(IceServer(
                urls=tuple([urls] if isinstance(urls, str) else urls),
                username=entry.get("username"),
                credential=entry.get("credential"),
            ))
        values["ice_servers"] = tuple(parsed)
    turn_urls = section.get("turn_urls")
    if turn_urls is not None:
        if isinstance(turn_urls, str):
            turn_urls = [turn_urls]
        if not isinstance(turn_urls, list) or not all(isinstance(u, str) for u in turn_urls):
            raise ConfigError("media.turn_urls must be a list of turn:/turns: urls")
        values["turn_urls"] = tuple(turn_urls)
    secret = env.get(ENV_PREFIX + "TURN_SECRET", section.get("turn_secret"))
    if secret is not None:
        if not isinstance(secret, str):
            raise ConfigError("media.turn_secret must be a string")
        values["turn_secret"] = secret
    for name in ("subscriber_queue", "empty_room_timeout", "reconnect_grace", "turn_ttl",
                 "video_codec"):
        raw = env.get(f"{ENV_PREFIX}MEDIA_{name.upper()}", section.get(name))
        if raw is not None:
            values[name] = _coerce(f"media.{name}", raw, getattr(base, name))
    if "video_codec" in values:
        values["video_codec"] = values["video_codec"].strip().lower()  # "H264" is fine too
    return replace(base, **values)


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the configuration: defaults, then the TOML file, then YUNZHEN_* variables."""
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    base = Config()
    known = {f.name for f in fields(Config)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for f in fields(Config):
        if f.name == "media":
            continue
        raw = env.get(ENV_PREFIX + f.name.upper(), data.get(f.name))
        if raw is not None:
            values[f.name] = _coerce(f.name, raw, getattr(base, f.name))
    media = data.get("media", {})
    if not isinstance(media, dict):
        raise ConfigError("media must be a table")
    values["media"] = _media_from(media, env)
    return replace(base, **values)
