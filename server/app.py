"""The app factory: one aiohttp application per process, with one cleanup context per resource,
in dependency order: Redis (its watch, and the private redis-server's supervisor), then the store
(and demo data), then signaling and rooms, then the storage watch and the export jobs; the HTTP
edge (server/http) on top."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from recordings import recovery
from recordings.archive import Archive
from recordings.audit import Audit
from recordings.jobs import EXPORTS_DIR, ExportJobs
from recordings.lease import Lease
from recordings.storage import watch_free_space
from rooms.manager import RoomManager
from server import gc_policy, http, looplag
from server.background import background
from server.config import Config
from server.data_keys import audit_key, data_key, notice_signer
from server.keys import (
    ACCOUNTS,
    ARCHIVE,
    AUDIT,
    BOOKINGS,
    CASES,
    CONFIG,
    CONSULT,
    DEVICES,
    DIRECTORY,
    DURABLE,
    EXPORTS,
    INTERPRETERS,
    LIMITS,
    MATTERS,
    NODE,
    NODES,
    NOTICES,
    REDIS,
    REDIS_URL,
    REDIS_WATCH,
    ROOM_CHANNEL,
    ROOMS,
    SESSIONS,
    SNAPSHOTS,
    SPEECH,
    STORE,
    TICKETS,
)
from server.redis_connect import RedisConnector
from server.redis_memory import watch_memory
from server.redis_server import EmbeddedRedis
from server.seed import load_departments_file, put_missing_departments, seed_demo
from server.speech import Speech
from signaling.accounts import Accounts
from signaling.adopt import Adoption
from signaling.bookings import Bookings
from signaling.calls import Calls, RoomHooks
from signaling.cases import Cases, watch_due
from signaling.clock import LEASE_TERM, Clock
from signaling.consult import Consult
from signaling.devices import Devices
from signaling.durable import Durable
from signaling.fanout import Fanout
from signaling.interpreters import Interpreters
from signaling.kiosk import KioskNamespace
from signaling.limits import Limits
from signaling.matters import Matters
from signaling.nodes import Nodes
from signaling.notice_store import Notices
from signaling.pubsub import PUBLISH_TIMEOUT_S, RedisPubSub
from signaling.redis_watch import RedisWatch
from signaling.room_channel import RoomNamespace
from signaling.room_directory import RoomDirectory
from signaling.sessions import Sessions
from signaling.snapshots import Snapshots
from signaling.socket_server import SocketServer
from signaling.staff import StaffNamespace
from signaling.staff_presence import StaffPresence
from signaling.stats_store import StatsConsumer
from signaling.store import LiveSockets, Store
from signaling.tasks import stop as stop_task
from signaling.tickets import Tickets

logger = logging.getLogger(__name__)

# Seconds a Redis command may take (the longest, the CSV exports of the logs, take well under a
# second), and a connection: a request that meets a stopped Redis answers 503 after this at most.
REDIS_SOCKET_TIMEOUT = 10.0
REDIS_CONNECT_TIMEOUT = 5.0


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[http.errors_and_headers], client_max_size=1024 * 1024,
                          handler_args={"logger": http.RequestLog()})
    app[CONFIG] = config

    # A bad departments file stops the start here, before anything runs.
    departments = load_departments_file(Path(config.departments_file)) \
        if config.departments_file else ()
    embedded = None if config.external_redis else EmbeddedRedis(
        config.redis_dir, config.redis_server_binary, config.redis_maxmemory_mb)
    # Every client below comes from here: a URL's, or Sentinel's current master.
    connector = RedisConnector(config, embedded.url if embedded else config.redis_url)
    # A bad key setting or key file stops the start here too.
    secrets_key = data_key(config, "secrets", config.secrets_key)
    audit_hmac_key = audit_key(config)
    signer = notice_signer(config)
    app[REDIS_URL] = connector.description

    pubsub = RedisPubSub(connector.client(socket_connect_timeout=PUBLISH_TIMEOUT_S),
                         channel="yunzhen-socketio")
    # A client event named like the connection's own (connect, disconnect, …) is refused there,
    # and what does not decode is dropped without a traceback.
    sio = SocketServer(
        async_mode="aiohttp",
        client_manager=pubsub,
        # engineio refuses a handshake whose Origin header is not one of these (a browser page
        # elsewhere riding a desk's cookie); clients that send no Origin (not browsers) pass.
        cors_allowed_origins=list(config.origins),
        max_http_buffer_size=1024 * 1024,
    )
    sio.attach(app)

    async def close_sockets(app: web.Application) -> None:
        # At shutdown, before aiohttp waits for the open requests to end (a socket's ends only
        # when the page's pings time out, 45 s later): every page sees its
        # connection close, as at a crash, and connects again by itself (to this server once it
        # is back, or through nginx to another worker). The namespaces' disconnect handlers run
        # as for a dropped network (a room's participant may come back within its grace).
        await sio.close_connections()

    app.on_shutdown.append(close_sockets)

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        if embedded is not None:
            await embedded.start()
        # A blocking pool: under a burst, a command waits for a free connection instead of
        # failing (redis-py's default pool raises past 100 connections). The timeouts turn a
        # stopped or unreachable Redis into errors (the watch's "unavailable") instead of hangs.
        client = connector.client(
            blocking=True, max_connections=64, pool_timeout=10, decode_responses=True,
            socket_timeout=REDIS_SOCKET_TIMEOUT, socket_connect_timeout=REDIS_CONNECT_TIMEOUT)
        # The watch pings on a connection of its own: a burst that holds every pooled connection
        # (2,000 sockets leaving at once) is not Redis going away.
        ping_client = connector.client(socket_timeout=REDIS_SOCKET_TIMEOUT,
                                       socket_connect_timeout=REDIS_CONNECT_TIMEOUT)
        watch = RedisWatch(ping_client)
        pubsub.redis_available = lambda: watch.available
        app[REDIS], app[REDIS_WATCH] = client, watch
        tasks = [asyncio.create_task(watch.run(), name="redis-watch")]
        if embedded is not None:
            tasks.append(asyncio.create_task(embedded.supervise(), name="redis-supervisor"))
        try:
            yield
        finally:
            for task in tasks:
                await stop_task(task)
            await client.aclose()
            await ping_client.aclose()
            await pubsub.close()
            await connector.aclose()
            if embedded is not None:
                await embedded.stop()

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = Store(app[REDIS], config.signaling)
        accounts = Accounts(app[REDIS], config.accounts, secrets_key=secrets_key)
        app[STORE], app[ACCOUNTS] = store, accounts
        app[SESSIONS] = Sessions(app[REDIS], accounts, config.accounts)
        if departments:
            added = await put_missing_departments(store, departments)
            logger.info("departments file: %d new department(s)", added)
        if config.demo:
            await seed_demo(store, accounts)
        await accounts.rebuild_members()
        if embedded is not None:
            # The private Redis serves this process alone: every process it knew is gone, so
            # clean up after them now rather than when their heartbeats run out.
            await store.forget_nodes(time.time())
        config.recordings_dir.mkdir(parents=True, exist_ok=True)
        audit = Audit(app[REDIS], audit_hmac_key, keep_days=config.audit_keep_days)
        archive = Archive(app[REDIS], config.recordings_dir, audit,
                          retention_days=config.retention_days)
        app[ARCHIVE], app[AUDIT] = archive, audit
        app[DEVICES] = Devices(app[REDIS], audit)
        app[NOTICES] = Notices(app[REDIS], signer)
        app[MATTERS] = Matters(app[REDIS])
        app[CASES] = Cases(app[REDIS], config.signaling, config.signaling.calendar(), audit)
        app[BOOKINGS] = Bookings(app[REDIS], store, config.signaling, audit)
        app[DURABLE] = Durable(app[REDIS], archive.alerts, config.wait_replicas,
                               config.redis_wait_timeout_ms)
        if config.wait_replicas:
            logger.info("tickets are acknowledged once %d Redis replica(s) have them (WAIT, "
                        "%d ms at most)", config.wait_replicas, config.redis_wait_timeout_ms)
        archive.start()  # the retention job; stopped and awaited below
        try:
            yield
        finally:
            await archive.close()

    async def signaling_ctx(app: web.Application) -> AsyncIterator[None]:
        # The queue domain's services, each given only what it uses; the namespaces on top.
        store, archive, accounts, sessions = app[STORE], app[ARCHIVE], app[ACCOUNTS], app[SESSIONS]
        node = secrets.token_hex(4)  # this process, in the room directory and the heartbeats
        directory = RoomDirectory(store)
        snapshots = Snapshots(store)
        fanout = Fanout(sio, store, snapshots, accounts)
        presence = StaffPresence(store, fanout, node)
        tickets = Tickets(config.signaling, store, fanout, archive, app[AUDIT], app[CASES], node)
        consult = Consult(store, accounts, directory, fanout, presence)
        hooks = RoomHooks(store, directory, archive, consult, fanout, app[NOTICES])
        rooms = RoomManager(config.media, config.recordings_dir, hooks.room_closed,
                            on_recording_failed=hooks.recording_failed, lease=Lease(LEASE_TERM))
        interpreters = Interpreters(store, consult, fanout)
        nodes = Nodes(store, node, name=config.node_name, base=config.node_path,
                      address=f"{config.host}:{config.port}",
                      room_sizes=lambda: [len(r.participants_info()) for r in rooms.rooms()
                                          if not r.closed])
        calls = Calls(store, accounts, directory, rooms, fanout, snapshots, consult,
                      interpreters, nodes)
        watch = app[REDIS_WATCH]
        app[NODE], app[ROOMS], app[DIRECTORY], app[NODES] = node, rooms, directory, nodes
        app[SNAPSHOTS], app[TICKETS], app[CONSULT] = snapshots, tickets, consult
        app[INTERPRETERS] = interpreters
        limits = Limits(app[REDIS], store, config.signaling, config.proxies, node)
        app[LIMITS] = limits
        kiosk = KioskNamespace(
            "/kiosk", config.signaling, watch, store=store, sessions=sessions,
            devices=app[DEVICES], tickets=tickets, calls=calls, snapshots=snapshots,
            fanout=fanout, limits=limits, bookings=app[BOOKINGS], durable=app[DURABLE])
        staff = StaffNamespace(
            "/staff", config.signaling, watch, store=store, sessions=sessions,
            presence=presence, calls=calls, consult=consult, tickets=tickets,
            snapshots=snapshots, fanout=fanout, proxies=config.proxies)
        room_channel = RoomNamespace("/room", config.signaling, watch, directory=directory,
                                     rooms=rooms, fanout=fanout, accounts=accounts, store=store,
                                     notices=app[NOTICES], matters=app[MATTERS],
                                     nodes=nodes)
        for namespace in (kiosk, staff, room_channel):
            sio.register_namespace(namespace)
        app[ROOM_CHANNEL] = room_channel

        async def live_sockets() -> LiveSockets:
            tickets, addresses = await kiosk.live_sockets()
            return LiveSockets(staff=staff.live_desks(), tickets=tickets, addresses=addresses)

        clock = Clock(store, fanout, directory, rooms, tickets, node, watch, live_sockets,
                      Adoption(store, directory, rooms, fanout, node), room_channel.moved,
                      peer_sees_redis=nodes.redis_seen_by_peer)

        # A Redis outage: the pages are told, and once the clock has put this process right in
        # Redis again (before anything else runs), told again, sent their state, and the calls
        # that ended meanwhile are finished.
        async def redis_lost() -> None:
            await fanout.service_state("degraded")

        async def redis_back() -> None:
            await fanout.service_state("ok")
            await hooks.finish_unfinished()
            await staff.resync()
            await kiosk.resync()

        watch.add_hooks(lost=redis_lost, recover=clock.recover, back=redis_back)
        await clock.start()
        # Ended login sessions (any process) close their sockets here.
        session_watch = asyncio.create_task(sessions.watch([staff.cut, room_channel.cut]),
                                            name="session-watch")
        # Revoked kiosks (any process) lose their sockets here.
        device_watch = asyncio.create_task(app[DEVICES].watch([kiosk.cut_device]),
                                           name="device-watch")
        # Recordings left incomplete by a process that died (this one before a restart, or
        # another on a shared Redis) are closed, indexed and sealed; not while a Redis outage
        # may make live processes look dead.
        recovery_task = asyncio.create_task(
            recovery.run(archive, lambda: [room.room_id for room in rooms.rooms()],
                         paused=lambda: not clock.settled),
            name="recording-recovery")
        try:
            yield
        finally:
            watch.remove_hooks(lost=redis_lost, recover=clock.recover, back=redis_back)
            for task in (recovery_task, session_watch, device_watch):
                await stop_task(task)
            await clock.close()
            await nodes.close()
            await rooms.close()
            await sio.shutdown()
            # The Redis manager's listener task is not stopped by shutdown(); stop it before
            # Redis goes away.
            listener = getattr(sio.manager, "thread", None)
            if isinstance(listener, asyncio.Task):
                await stop_task(listener)

    async def storage_watch(app: web.Application) -> None:
        await watch_free_space(app[ARCHIVE].alerts, config.recordings_dir,
                               config.recordings_min_free_mb)

    async def redis_memory_watch(app: web.Application) -> None:
        await watch_memory(app[REDIS], app[ARCHIVE].alerts, config.redis_memory_alert_percent)

    async def case_alerts(app: web.Application) -> None:
        await watch_due(app[CASES], app[ARCHIVE].alerts)

    async def booking_no_shows(app: web.Application) -> None:
        await app[BOOKINGS].run()

    async def stats_rollups(app: web.Application) -> None:
        await StatsConsumer(app[REDIS], config.signaling.zone, app[NODE]).run()

    async def exports_ctx(app: web.Application) -> AsyncIterator[None]:
        archive = app[ARCHIVE]
        jobs = ExportJobs(app[REDIS], archive, config.data_dir / EXPORTS_DIR,
                          timezone=config.timezone)
        app[EXPORTS] = jobs
        archive.purge_hooks.append(jobs.purge)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                archive.purge_hooks.remove(jobs.purge)
            await jobs.close()

    async def speech_ctx(app: web.Application) -> AsyncIterator[None]:
        speech = Speech(config.speech_dir, voice=config.speech_voice,
                        max_files=config.speech_cache_files)
        app[SPEECH] = speech
        try:
            yield
        finally:
            await speech.close()

    async def node_registry(app: web.Application) -> AsyncIterator[None]:
        # This node's entry in the registry and its command channel (signaling/nodes.py).
        nodes = app[NODES]
        task = asyncio.create_task(nodes.run(), name="node-registry")
        try:
            yield
        finally:
            await stop_task(task)
            await nodes.forget()

    app.cleanup_ctx.extend([redis_ctx, store_ctx, signaling_ctx, node_registry])
    lag_probe = looplag.from_env()  # benchmarks only (bench/rooms.py)
    if lag_probe is not None:
        app.cleanup_ctx.append(background("loop-lag-probe", lag_probe.run_for))
    # After the archive's and the rooms' contexts, which they use.
    app.cleanup_ctx.extend([background("storage-alerts", storage_watch),
                            background("redis-memory-alerts", redis_memory_watch), exports_ctx,
                            background("case-alerts", case_alerts),
                            background("stats-rollups", stats_rollups),
                            background("booking-no-shows", booking_no_shows)])
    if config.speech:
        app.cleanup_ctx.append(speech_ctx)
    app.cleanup_ctx.append(gc_policy.freeze_startup)  # last: after everything startup builds
    http.setup(app)
    return app
