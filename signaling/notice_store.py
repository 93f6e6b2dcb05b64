"""The 一次性告知单 of each live room in Redis: every edit is one small operation applied under
WATCH (read, change, write back or retry), so concurrent edits from several desks never lose each
other; sealing is one more such step, after which nothing changes. The applicant's read-only links
are kept as the SHA-256 of their random tokens (keys in signaling/keys.py)."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from signaling import keys, notice
from signaling.errors import SignalError
from signaling.notice_seal import NoticeSigner

logger = logging.getLogger(__name__)

# A live notice lasts as long as a room may (refreshed by every edit); a sealed one and its
# links stay this long in Redis (the recording keeps its own copy, notice.json).
LIVE_TTL = 24 * 3600
SEALED_TTL = 90 * 24 * 3600
MAX_LINKS = 20  # read-only links made for one notice
_RETRIES = 50

class Notices:
    def __init__(self, redis: aioredis.Redis, signer: NoticeSigner, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis: Any = redis  # decode_responses=True
        self.signer = signer
        self._clock = clock

    async def get(self, room_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.NOTICE(room_id))
        return json.loads(raw) if raw else None

    async def edit(self, room_id: str, fresh: Callable[[float], dict[str, Any]],
                   change: notice.Change) -> dict[str, Any]:
        """Apply one change to the room's notice atomically (made with `fresh` if it has none
        yet) and return the new document; a refusal from `change` leaves it as it was."""
        key = keys.NOTICE(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(_RETRIES):
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    now = self._clock()
                    doc = json.loads(raw) if raw else fresh(now)
                    change(doc)
                    doc["revision"] += 1
                    doc["updated_at"] = now
                    notice.check_size(doc)
                    pipe.multi()
                    pipe.set(key, json.dumps(doc, ensure_ascii=False), ex=LIVE_TTL)
                    await pipe.execute()
                    return doc
                except aioredis.WatchError:
                    continue
        logger.warning("room %s: notice edit gave up after %d conflicts", room_id, _RETRIES)
        raise SignalError("limit.rate")

    async def seal(self, room_id: str) -> dict[str, Any] | None:
        """Freeze the room's notice and sign it; None when it has no matter (nothing to give
        then). Sealing twice answers the first seal."""
        key, sealed_key = keys.NOTICE(room_id), keys.NOTICE_SEALED(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key, sealed_key)
                    done = await pipe.get(sealed_key)
                    if done:
                        await pipe.unwatch()
                        return json.loads(done)  # type: ignore[no-any-return]
                    raw = await pipe.get(key)
                    doc = json.loads(raw) if raw else None
                    if doc is None:
                        await pipe.unwatch()
                        return None
                    doc["sealed_at"] = self._clock()
                    doc["revision"] += 1
                    pipe.multi()
                    if not notice.has_matters(doc):
                        # Kept sealed a while, so an edit still in flight is refused.
                        pipe.set(key, json.dumps(doc, ensure_ascii=False), ex=LIVE_TTL)
                        await pipe.execute()
                        return None
                    # Parts nobody touched after picking are kept; empty ones say nothing.
                    doc["parts"] = {dept: part for dept, part in doc["parts"].items()
                                    if part["matters"]}
                    envelope = self.signer.envelope(doc)
                    pipe.set(key, json.dumps(doc, ensure_ascii=False), ex=SEALED_TTL)
                    pipe.set(sealed_key, json.dumps(envelope, ensure_ascii=False),
                             ex=SEALED_TTL)
                    await pipe.execute()
                    logger.info("room %s: notice sealed (%d part(s))", room_id,
                                len(doc["parts"]))
                    return envelope
                except aioredis.WatchError:
                    continue

    async def sealed(self, room_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.NOTICE_SEALED(room_id))
        return json.loads(raw) if raw else None

    async def sealed_or_live(self, room_id: str,
                             ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The sealed envelope and the live document, read together (one MGET): a seal cannot
        fall between the two reads, which would show a just-sealed notice as sealed in the
        live document but not sealed yet in the other."""
        sealed, live = await self.redis.mget(keys.NOTICE_SEALED(room_id), keys.NOTICE(room_id))
        return (json.loads(sealed) if sealed else None), (json.loads(live) if live else None)

    async def make_link(self, room_id: str) -> str:
        """A new random token for the sealed notice's read-only page; only its hash is kept."""
        token = secrets.token_urlsafe(24)
        key = keys.NOTICE_LINKS(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, keys.hash_token(token))
            pipe.expire(key, SEALED_TTL)
            pipe.scard(key)
            _, _, count = await pipe.execute()
        if count > MAX_LINKS:
            await self.redis.srem(key, keys.hash_token(token))
            raise SignalError("limit.rate")
        return token

    async def link_valid(self, room_id: str, token: str) -> bool:
        if not token or len(token) > 128:
            return False
        return bool(await self.redis.sismember(keys.NOTICE_LINKS(room_id),
                                               keys.hash_token(token)))
