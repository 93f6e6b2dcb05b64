"""The service's own secret keys: from a setting (hex, e.g. an environment variable) or from a
file under the data directory's ``keys/``, created with 32 random bytes on first start (file mode
0600, directory 0700). Every process of one installation must use the same keys (a shared data
directory, or the same setting)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from server.config import Config, ConfigError
from signaling.notice_seal import NoticeSigner

KEY_BYTES = 32
KEYS_DIR = "keys"


def data_key(config: Config, name: str, setting: str) -> bytes:
    """The key ``name``: ``setting`` (hex) when given, else ``keys/<name>.key``."""
    if setting:
        try:
            key = bytes.fromhex(setting)
        except ValueError:
            raise ConfigError(f"{name} key: not hexadecimal") from None
        if len(key) < KEY_BYTES:
            raise ConfigError(f"{name} key: at least {KEY_BYTES} bytes ({2 * KEY_BYTES} hex "
                              "digits)")
        return key
    directory = config.data_dir / KEYS_DIR
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{name}.key"
    if not path.exists():
        # Written whole under a name of its own, then linked into place: two processes starting
        # at once on a shared directory agree on one key, and neither reads a half-written file.
        draft = directory / f".{name}.key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(KEY_BYTES) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process was first: its key it is
        finally:
            draft.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a key ({exc})") from None
    if len(key) < KEY_BYTES:
        raise ConfigError(f"{path}: the key is too short")
    return key


def audit_key(config: Config, *, create: bool = True) -> bytes:
    """The audit log's HMAC key: ``audit_key`` (YUNZHEN_AUDIT_KEY), else keys/audit.key. A tool
    that only checks the log passes create=False: a new key would verify nothing."""
    if not create and not config.audit_key \
            and not (config.data_dir / KEYS_DIR / "audit.key").exists():
        raise ConfigError(f"no audit key: {config.data_dir / KEYS_DIR / 'audit.key'} does not "
                          "exist and audit_key is not set (the service makes the file on its "
                          "first start)")
    return data_key(config, "audit", config.audit_key)


def notice_signer(config: Config) -> NoticeSigner:
    """The 一次性告知单 signing key: ``notice_key`` (YUNZHEN_NOTICE_KEY), else keys/notice.key
    (its first 32 bytes are the Ed25519 seed)."""
    return NoticeSigner(data_key(config, "notice", config.notice_key))
