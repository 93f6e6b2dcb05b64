"""The second factor: time-based one-time codes (RFC 6238, 30 s steps, 6 digits, via pyotp), the
otpauth URI its enrolment QR code shows (signaling/qr.py), and one-time recovery codes, of which
only hashes are kept."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ISSUER = "云诊 Yunzhen"
STEP = 30
RECOVERY_CODES = 10


SEALED = "v1:"


def seal(key: bytes, secret: str, username: str) -> str:
    """A secret encrypted for storage (AES-256-GCM, bound to its account)."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key[:32]).encrypt(nonce, secret.encode(), username.encode())
    return SEALED + base64.b64encode(nonce + sealed).decode()


def unseal(key: bytes, stored: str, username: str) -> str | None:
    """The secret of a stored value, or None when it does not open with this key."""
    if not stored.startswith(SEALED):
        return None
    try:
        raw = base64.b64decode(stored[len(SEALED):])
        return AESGCM(key[:32]).decrypt(raw[:12], raw[12:], username.encode()).decode()
    except (ValueError, InvalidTag):
        return None


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def verify(secret: str, code: str, now: float) -> int | None:
    """The time step of `code` when it is right now (one step either side allowed for clock
    drift), else None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // STEP)
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def recovery_codes() -> list[str]:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return ["-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(2))
            for _ in range(RECOVERY_CODES)]


def recovery_hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().encode()).hexdigest()
