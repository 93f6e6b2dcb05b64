"""Accounts: who may sign in (a User, as the stored record reads), their passwords, hashed with
scrypt from the standard library and never stored or logged in plain text, and the login
session's cookie. The records and sessions live in Redis (signaling/keys.py: USER, SESSION)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rooms.config import ConfigError

# The login session's cookie: set by the HTTP login, read by the staff and kiosk sockets too.
SESSION_COOKIE = "yz_session"

_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class AccountPolicy:
    """The rules every account follows (demo accounts excepted): passwords, lockout, second
    factor and sessions. Composed by the service's config loader from top-level settings."""

    # Passwords: at least this long, with three of four character classes (lower, upper, digit,
    # other), not the username, none of the last `password_history`; changed every
    # `password_max_age_days` (0: never expires).
    password_min_length: int = 10
    password_history: int = 5
    password_max_age_days: int = 90
    # This many wrong passwords or codes in a row lock the account for `lockout_minutes`.
    lockout_failures: int = 5
    lockout_minutes: int = 15
    # Failed sign-ins one client address may make per `lockout_minutes`, whichever accounts.
    address_failures: int = 20
    # The second factor (TOTP) is required of admin, auditor and supervisor; with this, of every
    # account (otherwise optional for staff and guides).
    totp_for_everyone: bool = False
    # Seconds a login session lasts without a request (idle), and at most (absolute).
    idle_timeout: int = 30 * 60
    session_ttl: int = 12 * 3600

    def __post_init__(self) -> None:
        for name, low, high in (("password_min_length", 8, 128), ("password_history", 0, 24),
                                ("password_max_age_days", 0, 3650), ("lockout_failures", 1, 100),
                                ("lockout_minutes", 1, 24 * 60), ("address_failures", 1, 10000),
                                ("idle_timeout", 60, 24 * 3600),
                                ("session_ttl", 60, 30 * 24 * 3600)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name}: {value} is not between {low} and {high}")
        if self.idle_timeout > self.session_ttl:
            raise ConfigError("idle_timeout must not be longer than session_ttl")


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    departments: tuple[str, ...]  # pools: departments and backup groups

    @classmethod
    def from_hash(cls, row: Mapping[str, str]) -> User:
        return cls(username=row["username"],
                   display_name=row.get("display_name", row["username"]), role=row["role"],
                   departments=tuple(d for d in row.get("departments", "").split(",") if d))

    def public(self) -> dict[str, Any]:
        return {"username": self.username, "display_name": self.display_name, "role": self.role,
                "departments": list(self.departments)}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encoded = [base64.b64encode(value).decode() for value in (salt, digest)]
    return "$".join(["scrypt", str(_N), str(_R), str(_P), *encoded])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)
