"""The server's Ed25519 signature on a sealed 一次性告知单: the envelope kept with the recording
and shown on the applicant's phone, and its check. The key is 32 bytes of seed (server/data_keys.py
keeps it in keys/notice.key); the public key is published at /.well-known/yunzhen-notice-key."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signaling.notice import canonical

ALGORITHM = "Ed25519"


class NoticeSigner:
    """Signs sealed notices with one Ed25519 key (made from a 32-byte seed)."""

    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed[:32])
        self.public_key = self._key.public_key()
        raw = self.public_key.public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
        # Names the key in every envelope, so a rotated key still tells which one signed.
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def envelope(self, document: dict[str, Any]) -> dict[str, Any]:
        """The signed form: the document, and the signature over its canonical JSON."""
        signature = self._key.sign(canonical(document))
        return {"document": document, "algorithm": ALGORITHM, "key_id": self.key_id,
                "signature": base64.b64encode(signature).decode()}


def verify(envelope: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    """Whether the envelope's signature matches its document under the key (any change to the
    document, one byte of its canonical JSON, fails)."""
    try:
        signature = base64.b64decode(str(envelope["signature"]), validate=True)
        public_key.verify(signature, canonical(envelope["document"]))
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return True


def verify_bytes(data: bytes, public_key: Ed25519PublicKey) -> bool:
    """The check of a stored envelope file as it is on disk."""
    try:
        envelope = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(envelope, dict) and verify(envelope, public_key)
