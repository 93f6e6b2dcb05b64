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

# The login session's cookie: set by the HTTP login, read by the staff and kiosk sockets too.
SESSION_COOKIE = "yz_session"

_N, _R, _P = 2**14, 8, 1


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
