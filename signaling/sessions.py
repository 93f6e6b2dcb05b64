"""Login sessions: created at sign-in, refused after `idle_timeout` without activity or
`session_ttl` after sign-in, ended at sign-out, and all of an account's ended at once when it is
disabled or its password changes. Ending is announced on a Redis channel so every process cuts the
live sockets of the ended sessions (signaling/staff.py, signaling/room_channel.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from signaling import keys
from signaling.accounts import AccountPolicy, Accounts, User
from signaling.errors import SignalError
from signaling.redis_watch import UNREACHABLE

logger = logging.getLogger(__name__)

# What a cut handler is told: the account whose sessions ended (all of them but `keep`), or one
# session (`sha`) that ended.
Ended = Callable[["EndedSessions"], Awaitable[None]]


@dataclass(frozen=True)
class EndedSessions:
    username: str
    sha: str = ""  # one session; empty: every session of the account but `keep`
    keep: str = ""
    reason: str = ""

    def covers(self, username: str, sha: str) -> bool:
        if self.sha:
            return sha == self.sha
        return username == self.username and sha != self.keep


@dataclass(frozen=True)
class Session:
    sha: str
    user: User
    stage: str  # see accounts.SignIn
    created_at: float
    last_seen: float
    totp_pending: str = ""  # a second factor being set up, until its first code proves it


class Sessions:
    def __init__(self, redis: aioredis.Redis, accounts: Accounts, policy: AccountPolicy,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis: Any = redis
        self.accounts = accounts
        self.policy = policy
        self.clock = clock

    async def create(self, user: User, stage: str, remote: str) -> str:
        token = secrets.token_urlsafe(32)
        sha = keys.hash_token(token)
        now = self.clock()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.SESSION(sha), mapping={
                "username": user.username, "created_at": f"{now:.3f}",
                "last_seen": f"{now:.3f}", "stage": stage, "remote": remote})
            pipe.expire(keys.SESSION(sha), self.policy.idle_timeout)
            pipe.sadd(keys.USER_SESSIONS(user.username), sha)
            pipe.expire(keys.USER_SESSIONS(user.username), self.policy.session_ttl)
            await pipe.execute()
        return token

    async def get(self, token: str) -> Session:
        """The session of a cookie, or the refusal: `session_expired` for a cookie whose session
        is over (idle, too old, signed out, account disabled)."""
        return await self.by_sha(keys.hash_token(token))

    async def by_sha(self, sha: str) -> Session:
        row = await self.redis.hgetall(keys.SESSION(sha))
        if not row:
            raise SignalError("session_expired")
        created = float(row.get("created_at") or 0)
        user = await self.accounts.user(row["username"])
        if user is None or user.disabled or self.clock() - created > self.policy.session_ttl:
            await self.end(sha, row["username"], "expired")
            raise SignalError("session_expired")
        return Session(sha, user, row.get("stage", ""), created, float(row.get("last_seen") or 0),
                       row.get("totp_pending", ""))

    async def touch(self, session: Session) -> float:
        """Activity: the idle timeout starts again. Returns the seconds until it runs out."""
        now = self.clock()
        left = min(self.policy.idle_timeout,
                   session.created_at + self.policy.session_ttl - now)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.SESSION(session.sha), "last_seen", f"{now:.3f}")
            pipe.expire(keys.SESSION(session.sha), max(int(left), 1))
            await pipe.execute()
        return left

    async def update(self, session: Session, **fields: str) -> None:
        await self.redis.hset(keys.SESSION(session.sha), mapping=fields)

    async def end(self, sha: str, username: str, reason: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.SESSION(sha))
            pipe.srem(keys.USER_SESSIONS(username), sha)
            await pipe.execute()
        await self._announce(EndedSessions(username, sha=sha, reason=reason))

    async def end_user(self, username: str, reason: str, keep: str = "") -> int:
        """End every session of an account (but `keep`, the one that asked) and its sockets."""
        shas = [s for s in await self.redis.smembers(keys.USER_SESSIONS(username)) if s != keep]
        if shas:
            async with self.redis.pipeline(transaction=True) as pipe:
                for sha in shas:
                    pipe.delete(keys.SESSION(sha))
                pipe.srem(keys.USER_SESSIONS(username), *shas)
                await pipe.execute()
        await self._announce(EndedSessions(username, keep=keep, reason=reason))
        logger.info("ended %d session(s) of %s (%s)", len(shas), username, reason)
        return len(shas)

    async def _announce(self, ended: EndedSessions) -> None:
        await self.redis.publish(keys.SESSIONS_ENDED, json.dumps(ended.__dict__))

    async def watch(self, handlers: list[Ended]) -> None:
        """Run the cut handlers for every ended session announced by any process (this one
        included), until cancelled. While Redis is away it subscribes again every second,
        quietly (the service's Redis watch logs the outage)."""
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.SESSIONS_ENDED)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        ended = EndedSessions(**json.loads(message["data"]))
                    except (TypeError, ValueError):
                        logger.warning("ignored a malformed ended-session message")
                        continue
                    for handler in handlers:
                        try:
                            await handler(ended)
                        except Exception:
                            logger.exception("cutting the sockets of %s failed", ended.username)
            except UNREACHABLE as exc:
                logger.debug("session watch lost Redis (%s); subscribing again", exc)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
