"""Typed application keys: every shared object the app holds, declared once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from recordings.archive import Archive
    from recordings.audit import Audit
    from recordings.jobs import ExportJobs
    from rooms.manager import RoomManager
    from server.config import Config
    from server.speech import Speech
    from signaling.accounts import Accounts
    from signaling.bookings import Bookings
    from signaling.cases import Cases
    from signaling.consult import Consult
    from signaling.devices import Devices
    from signaling.durable import Durable
    from signaling.interpreters import Interpreters
    from signaling.limits import Limits
    from signaling.matters import Matters
    from signaling.nodes import Nodes
    from signaling.notice_store import Notices
    from signaling.redis_watch import RedisWatch
    from signaling.room_channel import RoomNamespace
    from signaling.room_directory import RoomDirectory
    from signaling.sessions import Sessions
    from signaling.snapshots import Snapshots
    from signaling.store import Store
    from signaling.tickets import Tickets

CONFIG: web.AppKey[Config] = web.AppKey("config")
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
# Where Redis is, for the start banner: a URL, or the sentinels and the master's name.
REDIS_URL: web.AppKey[str] = web.AppKey("redis_url")
# Waits for the Redis replicas before a ticket is acknowledged (signaling/durable.py).
DURABLE: web.AppKey[Durable] = web.AppKey("durable")
# Whether Redis answers (signaling/redis_watch.py): /healthz, and the API's 503 while it does not.
REDIS_WATCH: web.AppKey[RedisWatch] = web.AppKey("redis_watch")
STORE: web.AppKey[Store] = web.AppKey("store")
# Accounts and their login sessions (signaling/accounts.py, signaling/sessions.py).
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions")
# Registered kiosks (signaling/devices.py).
DEVICES: web.AppKey[Devices] = web.AppKey("devices")
# The matter catalogue (signaling/matters.py).
MATTERS: web.AppKey[Matters] = web.AppKey("matters")
ARCHIVE: web.AppKey[Archive] = web.AppKey("archive")
# The security audit log (recordings/audit.py): every handler that audits appends here.
AUDIT: web.AppKey[Audit] = web.AppKey("audit")
# The rooms hosted by this process, and its node id in the room directory.
ROOMS: web.AppKey[RoomManager] = web.AppKey("rooms")
NODE: web.AppKey[str] = web.AppKey("node")
# This node in the node registry (its name, base and load; placement; commands to other nodes).
NODES: web.AppKey[Nodes] = web.AppKey("nodes")
DIRECTORY: web.AppKey[RoomDirectory] = web.AppKey("room_directory")
# The /room namespace (its sockets are closed when the clock lets a moved room go).
ROOM_CHANNEL: web.AppKey[RoomNamespace] = web.AppKey("room_channel")
SNAPSHOTS: web.AppKey[Snapshots] = web.AppKey("snapshots")
TICKETS: web.AppKey[Tickets] = web.AppKey("tickets")
CONSULT: web.AppKey[Consult] = web.AppKey("consult")
INTERPRETERS: web.AppKey[Interpreters] = web.AppKey("interpreters")
EXPORTS: web.AppKey[ExportJobs] = web.AppKey("exports")
# The 一次性告知单 of the rooms (signaling/notice_store.py) and the key that signs them.
NOTICES: web.AppKey[Notices] = web.AppKey("notices")
# 差评 rectification cases (signaling/cases.py).
CASES: web.AppKey[Cases] = web.AppKey("cases")
# The kiosk's spoken prompts (server/speech.py).
SPEECH: web.AppKey[Speech] = web.AppKey("speech")
BOOKINGS: web.AppKey[Bookings] = web.AppKey("bookings")
LIMITS: web.AppKey[Limits] = web.AppKey("limits")
