"""The audit log's HMAC key: the configured `audit_key` (hex; env YUNZHEN_AUDIT_KEY), else the
file keys/audit.key under the data directory, made on first start (32 random bytes as hex, mode
0600, its directory 0700). Every process writing to one Redis must use the same key."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from recordings.audit import MIN_KEY_BYTES
from server.config import Config, ConfigError

logger = logging.getLogger(__name__)

KEY_FILE = Path("keys") / "audit.key"


def key_path(config: Config) -> Path:
    return config.data_dir / KEY_FILE


def _parse(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: the audit key is not hex") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{where}: the audit key is shorter than {MIN_KEY_BYTES} bytes")
    return key


def load_audit_key(config: Config, *, create: bool = True) -> bytes:
    """The key; with ``create``, the key file is made when there is none (the service's first
    start). A command-line tool passes create=False: a new key would not verify the old log."""
    if config.audit_key:
        return _parse(config.audit_key, "audit_key")
    path = key_path(config)
    if path.exists():
        if path.stat().st_mode & 0o077:
            logger.warning("%s can be read by other users: chmod 600 it", path)
        return _parse(path.read_text(encoding="ascii", errors="replace"), str(path))
    if not create:
        raise ConfigError(f"no audit key: {path} does not exist and audit_key is not set (the "
                          "service makes the file on its first start)")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written under a temporary name and linked into place: of two processes starting at once,
    # one key wins and both use it; nobody ever reads a half-written file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
            logger.info("audit key made: %s (keep a copy with the backups)", path)
    finally:
        temporary.unlink(missing_ok=True)
    return _parse(path.read_text(encoding="ascii", errors="replace"), str(path))
