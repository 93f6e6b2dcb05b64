"""The service configuration: one frozen, typed object, read from a TOML file and the environment,
checked at start so that a bad value stops the start with a message naming it."""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rooms.config import ConfigError, IceServer, MediaConfig
from server import event_loop
from signaling.accounts import AccountPolicy
from signaling.config import SignalingConfig
from signaling.forwarded import TrustedProxies

__all__ = ["Config", "ConfigError", "IceServer", "MediaConfig", "load_config"]

ENV_PREFIX = "YUNZHEN_"
# Bounds of retention_days, how long recordings are kept (days).
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 36500
# Bounds of redis_maxmemory_mb: below a few MB the service cannot even start.
MIN_REDIS_MAXMEMORY_MB = 16
MAX_REDIS_MAXMEMORY_MB = 1024 * 1024
# A worker's name (node_name) and the nginx path prefix that reaches it alone (node_path).
NODE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
NODE_PATH = re.compile(r"/n/[a-z0-9][a-z0-9-]{0,31}")
# redis_wait_replicas' value for "1 with Sentinel, 0 without".
WAIT_REPLICAS_AUTO = -1
# Bounds of redis_wait_timeout_ms: a replica on the same network answers WAIT in well under a
# millisecond; past a few seconds an applicant's ticket would hang on a dead replica.
MIN_WAIT_TIMEOUT_MS = 10
MAX_WAIT_TIMEOUT_MS = 5000
_SENTINEL = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>[0-9]{1,5})")
_MASTER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    # Empty: start a private redis-server under data_dir (unless redis_sentinels is set).
    # Otherwise redis:// or unix:// URL.
    redis_url: str = ""
    # Redis Sentinel (server/redis_connect.py): the sentinels as host:port (YUNZHEN_REDIS_SENTINELS
    # is comma-separated); every client asks them for the current master of redis_master, so a
    # failover is followed by itself. Not with redis_url; no private redis-server is started.
    redis_sentinels: tuple[str, ...] = ()
    redis_master: str = "yunzhen"
    # The sentinels' own password (requirepass in sentinel.conf), and the master's and replicas'
    # (their requirepass / masterauth); with redis_url the password goes into the URL.
    redis_sentinel_password: str = ""
    redis_password: str = ""
    # A ticket (or callback request) is acknowledged to the applicant only after this many
    # replicas have it (Redis WAIT, signaling/durable.py), waiting at most redis_wait_timeout_ms.
    # -1: 1 with redis_sentinels, 0 (no WAIT) without.
    redis_wait_replicas: int = WAIT_REPLICAS_AUTO
    redis_wait_timeout_ms: int = 500
    redis_server_binary: str = "redis-server"
    # The private redis-server's maxmemory in MB (policy noeviction: a write past it is refused,
    # nothing is evicted). An external Redis keeps its own setting.
    redis_maxmemory_mb: int = 512
    # Supervisors are alerted when Redis uses more than this share of its maxmemory (the
    # private one's, or an external one's when it has one).
    redis_memory_alert_percent: int = 80
    data_dir: Path = Path("var")
    # Demo mode seeds departments and demo accounts (password demo12345) on the first run.
    demo: bool = False
    # The origins (scheme://host[:port]) browsers reach the service at. Socket.IO connections and
    # state-changing API requests from any other origin are refused. Empty: http://127.0.0.1 and
    # http://localhost on `port`, and http://host:port when `host` is a concrete address.
    public_origins: tuple[str, ...] = ()
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For / X-Forwarded-Proto are
    # believed; from anybody else those headers are ignored.
    trusted_proxies: tuple[str, ...] = ()
    # Sessions and accounts (signaling/accounts.py AccountPolicy): seconds a login session lasts
    # at most and without a request; password rules, lockout and the second factor.
    session_ttl: int = AccountPolicy.session_ttl
    idle_timeout: int = AccountPolicy.idle_timeout
    password_min_length: int = AccountPolicy.password_min_length
    password_history: int = AccountPolicy.password_history
    password_max_age_days: int = AccountPolicy.password_max_age_days
    lockout_failures: int = AccountPolicy.lockout_failures
    lockout_minutes: int = AccountPolicy.lockout_minutes
    address_failures: int = AccountPolicy.address_failures
    totp_for_everyone: bool = AccountPolicy.totp_for_everyone
    # The audit log's HMAC key, hex (at least 32 bytes). Empty: keys/audit.key under data_dir,
    # created on first start (mode 0600).
    audit_key: str = ""
    # The key second-factor secrets are encrypted with in Redis (AES-256-GCM), hex. Empty:
    # keys/secrets.key under data_dir, created on first start (mode 0600).
    secrets_key: str = ""
    # The Ed25519 key sealed 一次性告知单 are signed with: its 32-byte seed, hex. Empty:
    # keys/notice.key under data_dir, created on first start (mode 0600).
    notice_key: str = ""
    # Days the audit log keeps entries (at least 190: 等保2.0 asks for six months).
    audit_keep_days: int = 190
    # Days a call-back request (a phone number) is kept before it is deleted.
    callback_keep_days: int = 30
    # The kiosk's privacy wipe (web/static/js/wipe.js): seconds without a touch before the screen
    # is wiped, and the visible countdown before it (the last seconds of that time).
    kiosk_idle_seconds: int = 60
    kiosk_idle_warning_seconds: int = 10
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
    # The queue's policy times in seconds (see signaling/config.py): a staff member's and an
    # applicant's reconnect grace, and how long a decline or a missed ring keeps the ticket away.
    staff_grace: float = SignalingConfig.staff_grace
    ticket_grace: float = SignalingConfig.ticket_grace
    decline_cooldown: float = SignalingConfig.decline_cooldown
    # Hours an ended ticket is kept, and the abuse limits (signaling/config.py; 0: no limit).
    ticket_keep_hours: int = SignalingConfig.ticket_keep_hours
    max_tickets_per_socket: int = SignalingConfig.max_tickets_per_socket
    max_tickets_per_address: int = SignalingConfig.max_tickets_per_address
    ticket_creations_per_minute: int = SignalingConfig.ticket_creations_per_minute
    callbacks_per_minute: int = SignalingConfig.callbacks_per_minute
    callbacks_per_phone_per_day: int = SignalingConfig.callbacks_per_phone_per_day
    max_sockets_per_address: int = SignalingConfig.max_sockets_per_address
    events_per_second: float = SignalingConfig.events_per_second
    event_burst: int = SignalingConfig.event_burst
    # 好差评 cases (signaling/config.py): the deadline and the near-due warning in working days,
    # and the extra holidays/working days (YYYY-MM-DD) the Chinese calendar does not know.
    case_due_working_days: int = SignalingConfig.case_due_working_days
    case_warn_working_days: int = SignalingConfig.case_warn_working_days
    extra_holidays: tuple[str, ...] = SignalingConfig.extra_holidays
    extra_workdays: tuple[str, ...] = SignalingConfig.extra_workdays
    # Spoken prompts at the kiosk (server/speech.py): off silences them; the espeak-ng voice;
    # how many rendered prompts the cache folder (data_dir/speech) keeps.
    speech: bool = True
    speech_voice: str = "cmn"
    speech_cache_files: int = 500
    # Several processes (server/workers.py): this process's stable name among them (w1, w2, …;
    # a restarted worker keeps its name and gets a new node id), and the path prefix under which
    # the public nginx forwards to this process alone ("/n/w1"; empty when nothing does).
    node_name: str = ""
    node_path: str = ""
    # The serving process's event loop (server/event_loop.py): uvloop, or asyncio's own.
    event_loop: str = "uvloop"
    media: MediaConfig = field(default_factory=MediaConfig)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port: {self.port} is not between 1 and 65535")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"redis_url: {self.redis_url!r} must start with redis://, "
                              "rediss:// or unix://")
        self._check_redis_target()
        if self.audit_keep_days < 190:
            raise ConfigError(f"audit_keep_days: {self.audit_keep_days} is below 190 (six months)")
        for origin in self.public_origins:
            if not origin.startswith(("http://", "https://")) or origin.rstrip("/") != origin \
                    or origin.count("/") != 2:
                raise ConfigError(f"public_origins: {origin!r} is not scheme://host[:port]")
        if self.node_name and not NODE_NAME.fullmatch(self.node_name):
            raise ConfigError(f"node_name: {self.node_name!r} is not 1-32 of a-z, 0-9, -")
        if self.node_path and not NODE_PATH.fullmatch(self.node_path):
            raise ConfigError(f"node_path: {self.node_path!r} is not /n/<name>")
        _ = self.accounts  # a bad password, lockout or session setting stops the start here
        try:
            _ = self.proxies
        except ValueError as exc:
            raise ConfigError(f"trusted_proxies: {exc}") from None
        if self.event_loop not in event_loop.LOOPS:
            raise ConfigError(f"event_loop: {self.event_loop!r} is not one of "
                              f"{', '.join(event_loop.LOOPS)}")
        if not MIN_RETENTION_DAYS <= self.retention_days <= MAX_RETENTION_DAYS:
            raise ConfigError(f"retention_days: {self.retention_days} is not between "
                              f"{MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS}")
        if self.recordings_min_free_mb < 0:
            raise ConfigError("recordings_min_free_mb must be 0 (no check) or more")
        if not MIN_REDIS_MAXMEMORY_MB <= self.redis_maxmemory_mb <= MAX_REDIS_MAXMEMORY_MB:
            raise ConfigError(f"redis_maxmemory_mb: {self.redis_maxmemory_mb} is not between "
                              f"{MIN_REDIS_MAXMEMORY_MB} and {MAX_REDIS_MAXMEMORY_MB}")
        if not 1 <= self.redis_memory_alert_percent <= 100:
            raise ConfigError(f"redis_memory_alert_percent: {self.redis_memory_alert_percent} "
                              "is not between 1 and 100")
        if not re.fullmatch(r"[A-Za-z0-9_+-]{1,40}", self.speech_voice):
            raise ConfigError(f"speech_voice: {self.speech_voice!r} is not an espeak-ng voice name")
        if self.speech_cache_files < 1:
            raise ConfigError("speech_cache_files must be 1 or more")
        if not 2 <= self.kiosk_idle_seconds <= 3600:
            raise ConfigError(f"kiosk_idle_seconds: {self.kiosk_idle_seconds} is not between 2 "
                              "and 3600")
        if not 1 <= self.kiosk_idle_warning_seconds < self.kiosk_idle_seconds:
            raise ConfigError(f"kiosk_idle_warning_seconds: {self.kiosk_idle_warning_seconds} is "
                              "not between 1 and kiosk_idle_seconds - 1")
        # A bad timezone, payload limit, policy time or callback_keep_days stops the start here.
        _ = self.signaling

    def _check_redis_target(self) -> None:
        """Where Redis is: the private one, redis_url, or the sentinels; never two of them."""
        if self.redis_sentinels and self.redis_url:
            raise ConfigError("redis_url and redis_sentinels both name the Redis to use: set one "
                              "(with Sentinel the master is asked of the sentinels)")
        _ = self.sentinels  # a malformed host:port stops the start here
        if not _MASTER_NAME.fullmatch(self.redis_master):
            raise ConfigError(f"redis_master: {self.redis_master!r} is not a Sentinel master name "
                              "(letters, digits, . _ -)")
        if not self.redis_sentinels:
            for name in ("redis_sentinel_password", "redis_password"):
                if getattr(self, name):
                    raise ConfigError(f"{name} is only used with redis_sentinels (with redis_url, "
                                      "put the password in the URL)")
        if self.redis_wait_replicas < WAIT_REPLICAS_AUTO:
            raise ConfigError(f"redis_wait_replicas: {self.redis_wait_replicas} is neither a "
                              "count (0 or more) nor -1 (1 with redis_sentinels, 0 without)")
        if self.redis_wait_replicas > 0 and not self.external_redis:
            raise ConfigError(f"redis_wait_replicas: {self.redis_wait_replicas} replicas, but the "
                              "private redis-server has none (set redis_url or redis_sentinels)")
        if not MIN_WAIT_TIMEOUT_MS <= self.redis_wait_timeout_ms <= MAX_WAIT_TIMEOUT_MS:
            raise ConfigError(f"redis_wait_timeout_ms: {self.redis_wait_timeout_ms} is not "
                              f"between {MIN_WAIT_TIMEOUT_MS} and {MAX_WAIT_TIMEOUT_MS}")

    @property
    def sentinels(self) -> tuple[tuple[str, int], ...]:
        """redis_sentinels as (host, port) pairs."""
        out = []
        for entry in self.redis_sentinels:
            match = _SENTINEL.fullmatch(entry)
            if match is None or not 0 < int(match["port"]) < 65536:
                raise ConfigError(f"redis_sentinels: {entry!r} is not host:port "
                                  "(an IPv6 address in brackets)")
            out.append((match["v6"] or match["host"], int(match["port"])))
        if len(set(out)) != len(out):
            raise ConfigError("redis_sentinels: a sentinel is named twice")
        return tuple(out)

    @property
    def external_redis(self) -> bool:
        """Redis is somebody else's (redis_url or Sentinel): no private redis-server."""
        return bool(self.redis_url or self.redis_sentinels)

    @property
    def wait_replicas(self) -> int:
        """The replicas a ticket must reach before it is acknowledged (0: no WAIT)."""
        if self.redis_wait_replicas == WAIT_REPLICAS_AUTO:
            return 1 if self.redis_sentinels else 0
        return self.redis_wait_replicas

    @property
    def signaling(self) -> SignalingConfig:
        return SignalingConfig(**{f.name: getattr(self, f.name)
                                  for f in fields(SignalingConfig)})

    @property
    def accounts(self) -> AccountPolicy:
        return AccountPolicy(**{f.name: getattr(self, f.name) for f in fields(AccountPolicy)})

    @functools.cached_property
    def proxies(self) -> TrustedProxies:
        """trusted_proxies, parsed once (read on every request)."""
        return TrustedProxies(self.trusted_proxies)

    @property
    def origins(self) -> tuple[str, ...]:
        """The origins browsers may send requests and open sockets from."""
        if self.public_origins:
            return self.public_origins
        hosts = ["127.0.0.1", "localhost"]
        if self.host not in ("0.0.0.0", "::", "", *hosts):
            hosts.append(f"[{self.host}]" if ":" in self.host else self.host)
        return tuple(f"http://{host}:{self.port}" for host in hosts)

    @property
    def https(self) -> bool:
        """Served to browsers over HTTPS (behind a TLS proxy): Secure cookies and HSTS."""
        return any(origin.startswith("https://") for origin in self.origins)

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def speech_dir(self) -> Path:
        return self.data_dir / "speech"


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
        if isinstance(current, tuple):
            # A TOML list of strings, or one comma-separated string (the environment).
            items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
                raise ValueError(value)
            return tuple(v for v in items if v)
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
                 "video_codec", "forwarding"):
        raw = env.get(f"{ENV_PREFIX}MEDIA_{name.upper()}", section.get(name))
        if raw is not None:
            values[name] = _coerce(f"media.{name}", raw, getattr(base, name))
    if "video_codec" in values:
        values["video_codec"] = values["video_codec"].strip().lower()  # "H264" is fine too
    if "forwarding" in values:
        values["forwarding"] = values["forwarding"].strip().lower()
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
