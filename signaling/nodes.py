"""The node registry: what every server process (node) tells the others about itself each second
(name, the nginx path that reaches it alone, address, load), the choice of the least-loaded live
node for a new room, and the command channel through which one node asks another to do something
(open a room) and waits for the answer. A node that cannot reach Redis asks the others it last
saw live whether they can (`redis_seen_by_peer`): if one can, it alone is cut off.

Keys: signaling/keys.py (yz:nodeinfo, yz:nodecmd, yz:nodereply); liveness is the heartbeat zset
yz:nodes that signaling/clock.py keeps, not this registry."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from redis.exceptions import RedisError

from signaling import keys
from signaling.store import Store

logger = logging.getLogger(__name__)

# Seconds between two writes of a node's own entry, and how long an entry outlives its writer.
INTERVAL = 1.0
INFO_TTL = 10
# How long a node waits for another to answer a command before it does the work itself.
COMMAND_TIMEOUT = 2.0
REPLY_TTL = 30
# A room just opened counts as this many participants until they have joined: the next accepts
# within the same second must not all land on the node that looked emptiest.
OPENING_PARTICIPANTS = 2
# How long a node that cannot reach Redis waits for another's health check.
PEER_CHECK_TIMEOUT = 1.0

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class PeerAnswer:
    """What another node says while this one cannot reach Redis: Redis answers it (at
    `address`), and Redis has this node `registered` still (False: the sweep took this node for
    dead and moved its rooms)."""
    address: str
    registered: bool


def load_of(room_sizes: list[int]) -> int:
    """A node's load: the participants of its rooms, a room with fewer than two counting as two
    (it is about to get them). A participant's media cost grows with the room's size, but every
    call here has 2-4 people, so participants track the measured CPU closely."""
    return sum(max(size, OPENING_PARTICIPANTS) for size in room_sizes)


@dataclass(frozen=True)
class NodeInfo:
    """A live node as its last registry write describes it."""
    node: str
    name: str
    base: str  # "/n/w2", or "" when nothing forwards to this node alone
    address: str
    pid: int
    rooms: int
    participants: int
    cpu: float  # % of one core used by the process over the last interval
    load: float

    @classmethod
    def from_hash(cls, row: Mapping[str, str]) -> NodeInfo | None:
        if not row.get("node"):
            return None
        try:
            return cls(node=row["node"], name=row.get("name", ""), base=row.get("base", ""),
                       address=row.get("address", ""), pid=int(row.get("pid") or 0),
                       rooms=int(row.get("rooms") or 0),
                       participants=int(row.get("participants") or 0),
                       cpu=float(row.get("cpu") or 0), load=float(row.get("load") or 0))
        except ValueError:
            return None

    def public(self) -> dict[str, Any]:
        return {"node": self.node, "name": self.name, "base": self.base,
                "address": self.address, "rooms": self.rooms,
                "participants": self.participants, "cpu": round(self.cpu, 1),
                "load": self.load}


def least_loaded(nodes: list[NodeInfo]) -> NodeInfo | None:
    """The node a new room goes to: the lowest load, then the lowest CPU, then the name (so the
    choice is stable between equal nodes)."""
    return min(nodes, key=lambda n: (n.load, n.cpu, n.name, n.node), default=None)


class Nodes:
    """This node's entry in the registry (written by `run`), the live nodes, and the commands
    between nodes."""

    def __init__(self, store: Store, node: str, *, name: str, base: str, address: str,
                 room_sizes: Callable[[], list[int]]) -> None:
        self._redis: Any = store.redis
        self.node, self.name, self.base, self.address = node, name or node, base, address
        self._room_sizes = room_sizes
        self._handlers: dict[str, Handler] = {}
        self._cpu_mark = (time.monotonic(), time.process_time())
        # The addresses of the other nodes live at the last registry write.
        self._peers: list[str] = []
        # The peer checks' HTTP client: opened at the first check (an outage), closed by close().
        self._http: aiohttp.ClientSession | None = None

    def on(self, op: str, handler: Handler) -> None:
        """`handler` answers the command `op` sent to this node."""
        self._handlers[op] = handler

    # this node's entry -------------------------------------------------------------------------
    def _cpu(self) -> float:
        wall, used = time.monotonic(), time.process_time()
        last_wall, last_used = self._cpu_mark
        self._cpu_mark = (wall, used)
        return 100.0 * (used - last_used) / max(wall - last_wall, 1e-3)

    async def write(self) -> None:
        sizes = self._room_sizes()
        key = keys.NODE_INFO(self.node)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "node": self.node, "name": self.name, "base": self.base,
                "address": self.address, "pid": os.getpid(), "rooms": len(sizes),
                "participants": sum(sizes), "cpu": f"{self._cpu():.1f}",
                "load": load_of(sizes), "updated": f"{time.time():.3f}"})
            pipe.expire(key, INFO_TTL)
            await pipe.execute()

    async def run(self) -> None:
        """Write this node's entry every second and answer the commands sent to it, until
        cancelled; a Redis outage only pauses both."""
        listener = asyncio.create_task(self._listen(), name="node-commands")
        try:
            while True:
                try:
                    await self.write()
                    self._peers = [n.address for n in await self.live()
                                   if n.node != self.node and n.address]
                except (RedisError, OSError) as exc:
                    logger.debug("node %s: registry write failed (%s)", self.node, exc)
                await asyncio.sleep(INTERVAL)
        finally:
            listener.cancel()
            try:
                await listener
            except asyncio.CancelledError:
                pass

    async def forget(self) -> None:
        """A stopping node takes its entry out at once."""
        try:
            await self._redis.delete(keys.NODE_INFO(self.node))
        except (RedisError, OSError):
            pass

    # other nodes ------------------------------------------------------------------------------
    async def live(self, now: float | None = None) -> list[NodeInfo]:
        """Every node whose heartbeat is current and that has a registry entry."""
        now = time.time() if now is None else now
        ids = await self._redis.zrangebyscore(keys.NODES, now, "+inf")
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for node in ids:
                pipe.hgetall(keys.NODE_INFO(node))
            rows = await pipe.execute()
        return [info for row in rows if (info := NodeInfo.from_hash(row)) is not None]

    async def redis_seen_by_peer(self) -> PeerAnswer | None:
        """Another node (of those live when this one last reached Redis) whose health check
        says Redis answers it now, and whether Redis still has this node registered; None when
        none does, or none answers. Asked when this node cannot reach Redis: with an answer,
        this node alone is cut off from it (a partition), not Redis down for everybody."""
        peers = self._peers
        if not peers:
            return None
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PEER_CHECK_TIMEOUT))
        http = self._http

        async def ask(address: str) -> PeerAnswer | None:
            try:
                async with http.get(f"http://{address}/healthz",
                                    params={"node": self.node}) as response:
                    health = await response.json()
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                return None
            if not isinstance(health, dict) or health.get("redis") != "ok":
                return None
            # Only a definite False counts: a peer still recovering answers without it.
            return PeerAnswer(address, health.get("node_registered") is not False)

        answers = await asyncio.gather(*(ask(address) for address in peers))
        return next((answer for answer in answers if answer is not None), None)

    async def close(self) -> None:
        """Close the peer checks' HTTP client, if a check opened it."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def base_of(self, node: str) -> str:
        """The path prefix that reaches `node` ("" for this one, or one nothing forwards to)."""
        if node == self.node:
            return self.base
        return str(await self._redis.hget(keys.NODE_INFO(node), "base") or "")

    async def choose(self) -> NodeInfo | None:
        """The least-loaded live node a page can reach, counted at once as carrying one more
        room (so that the next choices before its own write see it). Pages reach another node
        only through its path (`base`, forwarded by nginx): a node without one places nothing
        elsewhere (None: the room opens here), and one with a path chooses among those with one."""
        if not self.base:
            return None
        chosen = least_loaded([n for n in await self.live() if n.base])
        if chosen is not None:
            await self._redis.hincrbyfloat(keys.NODE_INFO(chosen.node), "load",
                                           OPENING_PARTICIPANTS)
        return chosen

    # commands ---------------------------------------------------------------------------------
    async def command(self, node: str, op: str, args: dict[str, Any],
                      timeout: float = COMMAND_TIMEOUT) -> dict[str, Any] | None:
        """Ask `node` to do `op` and wait for its answer; None when no answer came in time (the
        node is gone or stuck: the caller does the work itself). Run here directly when `node`
        is this one."""
        if node == self.node:
            return await self._handlers[op](args)
        request_id = secrets.token_hex(8)
        message = json.dumps({"op": op, "args": args, "reply": request_id})
        if not await self._redis.publish(keys.NODE_COMMANDS(node), message):
            logger.warning("node %s: nobody listens for commands (%s)", node, op)
            return None
        answer = await self._redis.blpop([keys.NODE_REPLY(request_id)], timeout=timeout)
        if answer is None:
            logger.warning("node %s: no answer to %s within %.1f s", node, op, timeout)
            return None
        result: dict[str, Any] = json.loads(answer[1])
        return result

    async def _listen(self) -> None:
        """Answer the commands sent to this node, one task each, until cancelled; resubscribe
        after a Redis outage."""
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.subscribe(keys.NODE_COMMANDS(self.node))
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        task = asyncio.create_task(self._answer(message["data"]))
                        running.add(task)
                        task.add_done_callback(running.discard)
                except (RedisError, OSError) as exc:
                    logger.debug("node %s: command channel lost (%s)", self.node, exc)
                    await asyncio.sleep(INTERVAL)
                finally:
                    try:
                        await pubsub.aclose()
                    except (RedisError, OSError):
                        pass
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _answer(self, raw: str) -> None:
        try:
            message = json.loads(raw)
            op, args, reply = message["op"], message["args"], message["reply"]
            handler = self._handlers[op]
        except (ValueError, KeyError, TypeError):
            logger.warning("node %s: unreadable command %.80r", self.node, raw)
            return
        try:
            result = await handler(args)
        except Exception as exc:
            logger.exception("node %s: command %s failed", self.node, op)
            result = {"error": str(exc)}
        key = keys.NODE_REPLY(reply)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(result, ensure_ascii=False))
            pipe.expire(key, REPLY_TTL)
            await pipe.execute()
