"""Typed application keys: every shared object the app holds, declared once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from recordings.archive import Archive
    from recordings.jobs import ExportJobs
    from rooms.manager import RoomManager
    from server.config import Config
    from signaling.hub import Hub
    from signaling.store import Store

CONFIG: web.AppKey[Config] = web.AppKey("config")
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
REDIS_URL: web.AppKey[str] = web.AppKey("redis_url")
STORE: web.AppKey[Store] = web.AppKey("store")
ARCHIVE: web.AppKey[Archive] = web.AppKey("archive")
ROOMS: web.AppKey[RoomManager] = web.AppKey("rooms")
HUB: web.AppKey[Hub] = web.AppKey("hub")
EXPORTS: web.AppKey[ExportJobs] = web.AppKey("exports")
