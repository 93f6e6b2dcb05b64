"""Accounts: who may sign in (a User, as the stored record reads), the rules their passwords follow,
lockout after failed sign-ins, and the second factor. Passwords are hashed with scrypt from the
standard library, in a thread (never on the event loop that forwards media), and are never stored or
logged in plain text. Records live in Redis (signaling/keys.py: USER, USERS, PASSWORDS, FAILURES,
LOCKED, ADDRESS_FAILURES); sessions are signaling/sessions.py's."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from rooms.config import ConfigError
from rooms.roles import ACCOUNT_ROLES, Role
from signaling import keys, totp
from signaling.errors import SignalError

logger = logging.getLogger(__name__)

# The login session's cookie: set by the HTTP login, read by the staff and kiosk sockets too.
SESSION_COOKIE = "yz_session"
# Usernames: what an admin may choose (they appear in URLs, logs and participant ids).
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")
MAX_USERNAME = 32
MAX_DISPLAY_NAME = 32
MAX_PASSWORD = 128
# The roles whose accounts must use a second factor (demo accounts excepted).
TOTP_ROLES = frozenset({Role.ADMIN, Role.AUDITOR, Role.SUPERVISOR})

_N, _R, _P = 2**14, 8, 1
# The hashing threads' Linux nice (per thread): below the event loop that forwards the calls'
# media. On two cores two busy hashing threads otherwise take the loop's core whenever anything
# else runs: bench/auth.py measured a call's loop-lag p99 at 13-26 ms during 25 sign-ins/s on a
# saturated machine, 4-5 ms with the threads at nice 10 (idle: ~2 ms).
HASHING_NICE = 10


def _below_the_calls() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


# scrypt costs ~30 ms of CPU: two threads at most, so a burst of sign-ins queues here instead of
# taking every core from the media forwarding.
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scrypt",
                              initializer=_below_the_calls)


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

    def needs_totp(self, user: User) -> bool:
        return not user.demo and (self.totp_for_everyone or user.role in TOTP_ROLES)


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    departments: tuple[str, ...]  # pools: departments and backup groups
    disabled: bool = False
    # Demo accounts (demo mode): no second factor, no forced change, no expiry.
    demo: bool = False
    must_change: bool = False
    password_changed_at: float = 0.0
    created_at: float = 0.0
    totp_enrolled: bool = False
    # Computed when read: the account is locked for this many more seconds.
    locked_for: int = field(default=0, compare=False)

    @classmethod
    def from_hash(cls, row: Mapping[str, str], locked_for: int = 0) -> User:
        return cls(username=row["username"],
                   display_name=row.get("display_name", row["username"]), role=row["role"],
                   departments=tuple(d for d in row.get("departments", "").split(",") if d),
                   disabled=row.get("disabled") == "1", demo=row.get("demo") == "1",
                   must_change=row.get("must_change") == "1",
                   password_changed_at=float(row.get("password_changed_at") or 0),
                   created_at=float(row.get("created_at") or 0),
                   totp_enrolled=bool(row.get("totp_secret")), locked_for=locked_for)

    def public(self) -> dict[str, Any]:
        """What the pages may know of the signed-in account."""
        return {"username": self.username, "display_name": self.display_name, "role": self.role,
                "departments": list(self.departments)}

    def admin_view(self) -> dict[str, Any]:
        """An account as the admin page lists it (no secret, no hash)."""
        return {**self.public(), "disabled": self.disabled, "demo": self.demo,
                "must_change": self.must_change, "totp_enrolled": self.totp_enrolled,
                "password_changed_at": self.password_changed_at, "created_at": self.created_at,
                "locked_for": self.locked_for}

    def audit_view(self) -> dict[str, Any]:
        """An account's state as an audit entry's before/after records it."""
        return {"display_name": self.display_name, "role": self.role,
                "departments": list(self.departments), "disabled": self.disabled}


# passwords -------------------------------------------------------------------------------------
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


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(
        _HASHING, verify_password, password, stored)


# An unknown username is checked against this hash, so it costs what a known one costs and the
# answer's timing does not tell which usernames exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def password_problem(password: str, username: str, policy: AccountPolicy) -> SignalError | None:
    """Why a new password is refused (length, classes, the username), or None."""
    if len(password) < policy.password_min_length:
        return SignalError("weak_password.length", min=policy.password_min_length)
    if len(password) > MAX_PASSWORD:
        return SignalError("invalid_payload.too_large")
    classes = sum(any(test(c) for c in password) for test in (
        str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum()))
    if classes < 3:
        return SignalError("weak_password.classes")
    if username and username.lower() in password.lower():
        return SignalError("weak_password.username")
    return None


def temporary_password() -> str:
    """A one-time password an admin hands over: meets the rules, easy to read out."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        body = "".join(secrets.choice(alphabet) for _ in range(12))
        candidate = f"{body[:4]}-{body[4:8]}-{body[8:]}"
        if password_problem(candidate, "", AccountPolicy()) is None:
            return candidate


def check_username(username: str) -> None:
    if not 2 <= len(username) <= MAX_USERNAME or not set(username) <= USERNAME_CHARS:
        raise SignalError("invalid_payload.account",
                          reason="用户名为 2–32 位小写字母、数字或 _ - .")


def check_profile(display_name: str, role: str, departments: Iterable[str],
                  known_departments: Iterable[str]) -> None:
    if not display_name.strip() or len(display_name) > MAX_DISPLAY_NAME:
        raise SignalError("invalid_payload.account", reason="姓名为 1–32 个字")
    if role not in ACCOUNT_ROLES:
        raise SignalError("invalid_payload.account", reason=f"没有 {role} 这个角色")
    unknown = set(departments) - set(known_departments)
    if unknown:
        raise SignalError("invalid_payload.account",
                          reason="没有这些部门：" + ", ".join(sorted(unknown)))


@dataclass(frozen=True)
class SignIn:
    """A sign-in whose password (and code, when one is needed) was right. `stage` says what the
    person must do before the service is theirs: "password" (change it), "enroll" (set up the
    second factor) or "" (nothing)."""

    user: User
    stage: str


class Accounts:
    """The accounts in Redis: sign-in with lockout and throttling, password changes, the second
    factor, and what an admin does to an account."""

    def __init__(self, redis: aioredis.Redis, policy: AccountPolicy,
                 clock: Any = time.time, *, secrets_key: bytes = b"") -> None:
        self.redis: Any = redis
        self.policy = policy
        self.clock = clock
        # Second-factor secrets are stored encrypted with this key (server/data_keys.py).
        self._secrets_key = secrets_key

    # reading ------------------------------------------------------------------------------------
    async def user(self, username: str) -> User | None:
        row, locked = await self._row(username)
        return User.from_hash(row, locked) if row else None

    async def _row(self, username: str) -> tuple[dict[str, str], int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.USER(username))
            pipe.ttl(keys.LOCKED(username))
            row, locked = await pipe.execute()
        return row, max(int(locked), 0)

    async def users(self) -> list[User]:
        names = sorted(await self.redis.smembers(keys.USERS))
        out = []
        for name in names:
            found = await self.user(name)
            if found is not None:
                out.append(found)
        return out

    async def has_admin(self) -> bool:
        return any(u.role == Role.ADMIN and not u.disabled for u in await self.users())

    async def has_users(self) -> bool:
        return bool(await self.redis.scard(keys.USERS))

    async def staff_users(self) -> list[User]:
        names = sorted(await self.redis.smembers(keys.STAFF_USERS))
        users = [await self.user(name) for name in names]
        return [u for u in users if u is not None]

    # sign-in -----------------------------------------------------------------------------------
    async def sign_in(self, username: str, password: str, code: str, remote: str) -> SignIn:
        """Check a sign-in; raises the refusal (bad_credentials, locked, throttled,
        totp_required, bad_totp). Failures count towards the account's lockout and the address's
        throttle, whether the username exists or not."""
        address_key = keys.ADDRESS_FAILURES(remote or "unknown")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(address_key)
            pipe.ttl(address_key)
            pipe.ttl(keys.LOCKED(username))
            address_count, address_ttl, locked = await pipe.execute()
        if int(address_count or 0) >= self.policy.address_failures:
            raise self._wait("throttled", int(address_ttl))
        if int(locked) > 0:
            raise self._wait("locked", int(locked))
        row, _ = await self._row(username)
        stored = row.get("password") or _DUMMY_HASH
        right = await verify_password_async(password, stored)
        if not row or not right or row.get("disabled") == "1":
            await self._failed(username, address_key)
            raise SignalError("bad_credentials")
        user = User.from_hash(row)
        if user.totp_enrolled:
            if not code:
                raise SignalError("totp_required")
            if not await self._second_factor(user, row, code):
                await self._failed(username, address_key)
                raise SignalError("bad_totp")
        await self.redis.delete(keys.FAILURES(username))
        return SignIn(user, self.stage(user))

    def stage(self, user: User) -> str:
        if user.demo:
            return ""
        max_age = self.policy.password_max_age_days * 86400
        if user.must_change or (max_age and self.clock() - user.password_changed_at > max_age):
            return "password"
        if self.policy.needs_totp(user) and not user.totp_enrolled:
            return "enroll"
        return ""

    def _wait(self, name: str, seconds: int, detail: str = "") -> SignalError:
        seconds = max(seconds, 1)
        return SignalError(name, detail, extra={"retry_after": seconds},
                           minutes=-(-seconds // 60))

    async def _failed(self, username: str, address_key: str) -> None:
        window = self.policy.lockout_minutes * 60
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(keys.FAILURES(username))
            pipe.expire(keys.FAILURES(username), window)
            pipe.incr(address_key)
            pipe.expire(address_key, window, nx=True)
            failures = (await pipe.execute())[0]
        if failures >= self.policy.lockout_failures:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(keys.LOCKED(username), "1", ex=window)
                pipe.delete(keys.FAILURES(username))
                await pipe.execute()
            logger.warning("account %r locked after %d failed sign-ins", username[:64], failures)
            raise self._wait("locked", window, "locked now")

    async def _second_factor(self, user: User, row: Mapping[str, str], code: str) -> bool:
        """A current TOTP code not used before, or one of the unused recovery codes."""
        secret = totp.unseal(self._secrets_key, row["totp_secret"], user.username) \
            if self._secrets_key else None
        if secret is None:
            logger.error("account %s: its second factor does not open with this server's key "
                         "(keys/secrets.key differs between processes?)", user.username)
        step = totp.verify(secret, code, self.clock()) if secret else None
        if step is not None:
            # A code is good once: its time step must be after the last one used.
            last = int(row.get("totp_last_step") or 0)
            if step <= last:
                return False
            await self.redis.hset(keys.USER(user.username), "totp_last_step", step)
            return True
        hashes = [h for h in row.get("recovery", "").split(",") if h]
        spent = totp.recovery_hash(code)
        if spent in hashes:
            hashes.remove(spent)
            await self.redis.hset(keys.USER(user.username), "recovery", ",".join(hashes))
            logger.info("account %s used a recovery code (%d left)", user.username, len(hashes))
            return True
        return False

    # changes by the person -----------------------------------------------------------------------
    async def change_password(self, username: str, current: str, new: str) -> User:
        row, _ = await self._row(username)
        if not row:
            raise SignalError("not_found.account")
        if not await verify_password_async(current, row["password"]):
            raise SignalError("bad_credentials.current_password")
        problem = password_problem(new, username, self.policy)
        if problem is not None:
            raise problem
        if new == current:
            raise SignalError("weak_password.reused", count=self.policy.password_history)
        for old in [row["password"], *await self.redis.lrange(keys.PASSWORDS(username), 0, -1)]:
            if await verify_password_async(new, old):
                raise SignalError("weak_password.reused", count=self.policy.password_history)
        await self._set_password(username, row["password"], await hash_password_async(new),
                                 must_change=False)
        found = await self.user(username)
        assert found is not None
        return found

    async def _set_password(self, username: str, previous: str, new_hash: str, *,
                            must_change: bool) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.USER(username), mapping={
                "password": new_hash, "must_change": "1" if must_change else "",
                "password_changed_at": f"{self.clock():.3f}"})
            if previous and self.policy.password_history:
                pipe.lpush(keys.PASSWORDS(username), previous)
                pipe.ltrim(keys.PASSWORDS(username), 0, self.policy.password_history - 2)
            await pipe.execute()

    async def enroll_totp(self, username: str, secret: str, code: str) -> list[str]:
        """Save a second factor the person proved they hold (a current code); returns the new
        one-time recovery codes (shown once; only their hashes are kept)."""
        if not self._secrets_key:
            raise RuntimeError("Accounts needs secrets_key to store a second factor")
        step = totp.verify(secret, code, self.clock())
        if step is None:
            raise SignalError("bad_totp")
        codes = totp.recovery_codes()
        await self.redis.hset(keys.USER(username), mapping={
            "totp_secret": totp.seal(self._secrets_key, secret, username),
            "totp_last_step": step,
            "recovery": ",".join(totp.recovery_hash(c) for c in codes)})
        return codes

    # changes by an admin ----------------------------------------------------------------------
    async def create(self, username: str, *, display_name: str, role: str,
                     departments: tuple[str, ...], password: str | None = None,
                     demo: bool = False) -> tuple[User, str]:
        """A new account; returns it and its one-time password, which the person must change at
        first sign-in (demo accounts: the given demo password, kept)."""
        check_username(username)
        secret = password or temporary_password()
        now = f"{self.clock():.3f}"
        created = await self.redis.hsetnx(keys.USER(username), "username", username)
        if not created:
            raise SignalError("exists.account")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.USER(username), mapping={
                "display_name": display_name, "role": role, "departments": ",".join(departments),
                "password": await hash_password_async(secret), "created_at": now,
                "password_changed_at": now, "must_change": "" if demo else "1",
                "demo": "1" if demo else "", "disabled": ""})
            pipe.sadd(keys.USERS, username)
            await pipe.execute()
        await self._index(username, role, departments, ())
        user = await self.user(username)
        assert user is not None
        return user, secret

    async def put(self, username: str, *, display_name: str, role: str,
                  departments: tuple[str, ...], password_hash: str, demo: bool = True) -> None:
        """Write an account as given (demo seeding, tests, benchmarks): no rules, no forced
        change; a demo account has no second factor."""
        now = f"{self.clock():.3f}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.USER(username), mapping={
                "username": username, "display_name": display_name, "role": role,
                "departments": ",".join(departments), "password": password_hash,
                "created_at": now, "password_changed_at": now, "demo": "1" if demo else "",
                "must_change": "", "disabled": ""})
            pipe.sadd(keys.USERS, username)
            await pipe.execute()
        await self._index(username, role, departments, ())

    async def update(self, username: str, *, display_name: str, role: str,
                     departments: tuple[str, ...]) -> tuple[User, User]:
        before = await self.user(username)
        if before is None:
            raise SignalError("not_found.account")
        await self.redis.hset(keys.USER(username), mapping={
            "display_name": display_name, "role": role, "departments": ",".join(departments)})
        await self._index(username, role, departments, before.departments)
        after = await self.user(username)
        assert after is not None
        return before, after

    async def _index(self, username: str, role: str, departments: tuple[str, ...],
                     previous: tuple[str, ...]) -> None:
        """The staff sets the queue script reads: staff accounts and each pool's members."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for pool in previous:
                pipe.srem(keys.MEMBERS(pool), username)
            if role == Role.STAFF:
                pipe.sadd(keys.STAFF_USERS, username)
                for pool in departments:
                    pipe.sadd(keys.MEMBERS(pool), username)
            else:
                pipe.srem(keys.STAFF_USERS, username)
            await pipe.execute()

    async def set_disabled(self, username: str, disabled: bool) -> tuple[User, User]:
        before = await self.user(username)
        if before is None:
            raise SignalError("not_found.account")
        await self.redis.hset(keys.USER(username), "disabled", "1" if disabled else "")
        after = await self.user(username)
        assert after is not None
        return before, after

    async def reset_password(self, username: str) -> str:
        """A new temporary password, to be changed at the next sign-in. A demo account becomes
        an ordinary one: its password is no longer the demo password, and the rules apply."""
        row, _ = await self._row(username)
        if not row:
            raise SignalError("not_found.account")
        secret = temporary_password()
        await self._set_password(username, row["password"], await hash_password_async(secret),
                                 must_change=True)
        await self.redis.hset(keys.USER(username), "demo", "")
        return secret

    async def reset_totp(self, username: str) -> None:
        """Forget the second factor: the person enrols again at the next sign-in."""
        if not await self.redis.exists(keys.USER(username)):
            raise SignalError("not_found.account")
        await self.redis.hdel(keys.USER(username), "totp_secret", "totp_last_step", "recovery")

    async def unlock(self, username: str) -> None:
        if not await self.redis.exists(keys.USER(username)):
            raise SignalError("not_found.account")
        await self.redis.delete(keys.LOCKED(username), keys.FAILURES(username))

    async def rebuild_members(self) -> None:
        """Rebuild the pool membership sets from the accounts (data written before they existed,
        or accounts edited by hand)."""
        async for key in self.redis.scan_iter(match=keys.USER("*"), count=200):
            username = key[len(keys.USER("")):]
            await self.redis.sadd(keys.USERS, username)
        for user in await self.staff_users():
            for pool in user.departments:
                await self.redis.sadd(keys.MEMBERS(pool), user.username)
