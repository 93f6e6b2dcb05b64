"""Registered kiosks: the hall screens an admin enrols (name, hall, location), each with a secret
device token that is shown once and kept only as its SHA-256. Enrolment and revocation are
audited; a revocation deletes the token and is announced on a Redis channel, so every process
closes that device's kiosk sockets at once (signaling/kiosk.py). The queue script lets a device
hold one open ticket at a time (queue.lua, `enqueue`)."""

from __future__ import annotations

import json
import logging
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from recordings.audit import Audit
from signaling import channels, keys
from signaling.account_admin import Actor
from signaling.errors import SignalError

logger = logging.getLogger(__name__)

# The cookie a registered kiosk's browser keeps its device token in (server/http/devices.py
# sets it when the enrolment URL is opened on the screen).
DEVICE_COOKIE = "yz_device"
MAX_NAME = 64
MAX_HALL = 64
MAX_LOCATION = 128

# What a cut handler is told: the device that was revoked.
Revoked = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Device:
    device_id: str
    name: str
    hall: str
    location: str
    created_at: float
    created_by: str
    last_seen: float | None = None
    revoked_at: float | None = None
    revoked_by: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_hash(cls, row: dict[str, str]) -> Device:
        def moment(name: str) -> float | None:
            value = row.get(name)
            return float(value) if value else None

        return cls(device_id=row["device_id"], name=row.get("name", ""),
                   hall=row.get("hall", ""), location=row.get("location", ""),
                   created_at=float(row.get("created_at") or 0),
                   created_by=row.get("created_by", ""), last_seen=moment("last_seen"),
                   revoked_at=moment("revoked_at"), revoked_by=row.get("revoked_by", ""))

    def admin_view(self) -> dict[str, Any]:
        """What the admin page lists (never the token, nor its hash)."""
        return {"device_id": self.device_id, "name": self.name, "hall": self.hall,
                "location": self.location, "created_at": self.created_at,
                "created_by": self.created_by, "last_seen": self.last_seen,
                "state": "active" if self.active else "revoked",
                "revoked_at": self.revoked_at, "revoked_by": self.revoked_by}

    def audit_view(self) -> dict[str, Any]:
        return {"name": self.name, "hall": self.hall, "location": self.location,
                "state": "active" if self.active else "revoked"}


def _text(name: str, value: Any, max_len: int, *, required: bool) -> str:
    if not isinstance(value, str):
        raise SignalError("invalid_payload.device", reason=f"{name} 应为文字")
    value = value.strip()
    if required and not value:
        raise SignalError("invalid_payload.device", reason=f"请填写 {name}")
    if len(value) > max_len:
        raise SignalError("invalid_payload.device", reason=f"{name} 最多 {max_len} 个字")
    # Shown on the admin page and kept on tickets: no control or format characters.
    if any(unicodedata.category(c)[0] == "C" for c in value):
        raise SignalError("invalid_payload.device", reason=f"{name} 含有不可见字符")
    return value


def check_profile(name: Any, hall: Any, location: Any) -> tuple[str, str, str]:
    """A device's name, hall and location (location may be empty), trimmed; refused with
    `invalid_payload.device` saying which is wrong."""
    return (_text("name", name, MAX_NAME, required=True),
            _text("hall", hall, MAX_HALL, required=True),
            _text("location", location, MAX_LOCATION, required=False))


class Devices:
    def __init__(self, redis: aioredis.Redis, audit: Audit,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis: Any = redis
        self.audit = audit
        self.clock = clock

    async def create(self, actor: Actor, name: Any, hall: Any, location: Any
                     ) -> tuple[Device, str]:
        """Enrol a device; returns it and its token (shown once: only its hash is kept)."""
        name, hall, location = check_profile(name, hall, location)
        device_id = secrets.token_hex(6)
        token = secrets.token_urlsafe(32)
        sha = keys.hash_token(token)
        now = self.clock()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.DEVICE(device_id), mapping={
                "device_id": device_id, "name": name, "hall": hall, "location": location,
                "created_at": f"{now:.3f}", "created_by": actor.who, "token_sha": sha})
            pipe.set(keys.DEVICE_TOKEN(sha), device_id)
            pipe.zadd(keys.DEVICES, {device_id: now})
            await pipe.execute()
        device = await self._get(device_id)
        await self.audit.append(actor.who, "device_create", remote=actor.remote,
                                target=device_id, after=device.audit_view())
        logger.info("%s enrolled kiosk %s (%s, %s)", actor.who, device_id, name, hall)
        return device, token

    async def devices(self) -> list[Device]:
        """Every device ever enrolled (revoked ones too), newest first."""
        ids = await self.redis.zrevrange(keys.DEVICES, 0, -1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for device_id in ids:
                pipe.hgetall(keys.DEVICE(device_id))
            rows = await pipe.execute()
        return [Device.from_hash(row) for row in rows if row]

    async def device(self, device_id: str) -> Device | None:
        row = await self.redis.hgetall(keys.DEVICE(device_id))
        return Device.from_hash(row) if row else None

    async def _get(self, device_id: str) -> Device:
        device = await self.device(device_id)
        if device is None:
            raise SignalError("not_found.device")
        return device

    async def by_token(self, token: str) -> Device | None:
        """The active device of a device token, or None (unknown or revoked)."""
        return await self.by_sha(keys.hash_token(token))

    async def by_sha(self, sha: str) -> Device | None:
        device_id = await self.redis.get(keys.DEVICE_TOKEN(sha))
        device = await self.device(device_id) if device_id else None
        return device if device is not None and device.active else None

    async def seen(self, device_id: str) -> None:
        await self.redis.hset(keys.DEVICE(device_id), "last_seen", f"{self.clock():.3f}")

    async def revoke(self, actor: Actor, device_id: str) -> Device:
        """Revoke a device: its token stops working and its kiosk sockets are closed in every
        process. A device is revoked once (HSETNX decides between two admins at once)."""
        before = await self._get(device_id)
        key = keys.DEVICE(device_id)
        now = self.clock()
        if not before.active or not await self.redis.hsetnx(key, "revoked_at", f"{now:.3f}"):
            raise SignalError("bad_state.device_revoked")
        sha = await self.redis.hget(key, "token_sha")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "revoked_by", actor.who)
            if sha:
                pipe.delete(keys.DEVICE_TOKEN(sha))
            await pipe.execute()
        await self.redis.publish(keys.DEVICES_REVOKED, json.dumps({"device_id": device_id}))
        after = await self._get(device_id)
        await self.audit.append(actor.who, "device_revoke", remote=actor.remote,
                                target=device_id, before=before.audit_view(),
                                after=after.audit_view())
        logger.info("%s revoked kiosk %s (%s, %s)", actor.who, device_id, before.name,
                    before.hall)
        return after

    async def watch(self, handlers: list[Revoked]) -> None:
        """Run the cut handlers for every device revoked by any process (this one included),
        until cancelled."""
        async def on_message(data: str) -> None:
            try:
                device_id = str(json.loads(data)["device_id"])
            except (TypeError, ValueError, KeyError):
                logger.warning("ignored a malformed revoked-device message")
                return
            for handler in handlers:
                try:
                    await handler(device_id)
                except Exception:
                    logger.exception("cutting the sockets of kiosk %s failed", device_id)

        await channels.listen(self.redis, keys.DEVICES_REVOKED, on_message)
