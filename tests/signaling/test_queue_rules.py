"""The queue script (signaling/queue.lua) under random sequences of operations: a hypothesis state
machine drives the real script in a real Redis and checks the queue rules after every step.

The operations are those the server sends: staff accounts in the seeded departments tax and fund
and a backup group (a tier of one department, its `after` and every department setting drawn per
run), staff and applicant sockets coming and going on two server processes, presence, tickets in
either lane, accepting and declining the current ring, requests that must be refused (a ticket
not offered to that staff member, finishing a ticket not in a call, ...), cancelling, finishing
calls, processes dying and restarting, and time moving on 0.1-40 s followed by a tick.

Time is an argument of every operation, so a simulated clock (only moving forward) makes every
run deterministic. The machine keeps a small model of what the script cannot tell it (who has
sockets where, which processes are alive, which rooms exist, staff pools, misses in a row) and
reads everything else back from Redis after each operation:

* where a ticket is (one department queue, the ringing set, or nowhere) matches its status; no
  ticket disappears; a finished ticket (ended, cancelled, abandoned) stays finished;
* a staff member holds at most one ticket; ringing and in-call staff point at their ticket and
  back; only available staff who still have a socket are in the available sets, in every pool of
  theirs, at their idle-since time;
* each RING is exact about first come, first served (no earlier ticket of the department, in a
  better or equal lane, that this staff member could have been rung for was still waiting) and
  about the longest idle (nobody eligible had been idle longer); see `_check_rings`;
* after a dispatch nobody available could take a waiting ticket it covered (work conservation);
* the event log gets the entries each operation implies, and they match the returned events;
* a registered kiosk (device) holds one open ticket at a time, a revoked one none, and the
  refusals change nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from server.seed import DEMO_DEPARTMENTS
from signaling import keys
from signaling.accounts import AccountPolicy, Accounts
from signaling.config import SignalingConfig
from signaling.departments import Department, Tier
from signaling.privacy import CONSENT_NOTICE_VERSION
from signaling.queue import SCRIPT, Code, Event, Events, Reply, argv, decode
from signaling.store import Store
from tests.support.queue_state import (
    TERMINAL,
    View,
    read_view,
    staff_problems,
    ticket_problems,
)

DEPTS = ("tax", "fund")
BACKUP = "backup"
POOLS = (*DEPTS, BACKUP)
NODES = ("n1", "n2")
# Registered kiosks and their halls; REVOKED_DEVICE was revoked.
DEVICE_HALLS = {"k1": "一楼大厅", "k2": "二楼大厅"}
REVOKED_DEVICE = "k3"
HEARTBEAT_TTL = 10.0
DECLINE_COOLDOWN = 30.0
STAFF_GRACE = 20.0
TICKET_GRACE = 60.0
ORDINARY_BASE = 1_000_000_000_000
POLICY = SignalingConfig(decline_cooldown=DECLINE_COOLDOWN, staff_grace=STAFF_GRACE,
                         ticket_grace=TICKET_GRACE)
NEXT_STATUS = {
    "waiting": {"waiting", "ringing", "cancelled", "abandoned"},
    "ringing": {"ringing", "waiting", "connected", "cancelled", "abandoned"},
    "connected": {"connected", "ended"},
    **{status: {status} for status in TERMINAL},
}
RING_KINDS = ("RING", "OVERFLOW")

# The session's redis-server (the `redis_url` fixture); a state machine is no pytest fixture.
REDIS: dict[str, str] = {}

SETTINGS = settings(max_examples=300, stateful_step_count=50, deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck))


@dataclass
class Step:
    op: str
    args: tuple[Any, ...]
    result: Reply
    events: list[Event]
    entries: list[dict[str, str]]
    before: View
    after: View

    def kinds(self) -> list[str]:
        return [e["event"] for e in self.entries]

    def after_ring_kinds(self, *first: str) -> None:
        """The log is `first` followed by nothing but rings (a dispatch)."""
        kinds = self.kinds()
        assert tuple(kinds[:len(first)]) == first, (self.op, kinds)
        assert all(k in RING_KINDS for k in kinds[len(first):]), (self.op, kinds)


# The machine -------------------------------------------------------------------------------------
class QueueRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.r = redis.Redis.from_url(REDIS["url"], decode_responses=True)
        self.r.flushdb()
        self.script = self.r.register_script(SCRIPT)
        self.loop = asyncio.new_event_loop()
        self.aio = aioredis.from_url(REDIS["url"], decode_responses=True)
        self.store = Store(self.aio)
        self.now = 1000.0
        self.cfg: dict[str, Department] = {}
        self.pools: dict[str, frozenset[str]] = {}
        self.status: dict[str, str] = {}                # ticket -> last status seen
        self.conns: Counter[tuple[str, str, str]] = Counter()   # (kind, id, node) -> sockets
        self.ever_connected: set[tuple[str, str]] = set()
        self.alive = dict.fromkeys(NODES, True)
        self.rooms: dict[str, tuple[str, str]] = {}     # ticket -> (room, node)
        self.misses: Counter[str] = Counter()
        self.overflowed: set[str] = set()
        self.device_ticket: dict[str, str] = {}         # registered kiosk -> its last ticket
        self.last_log = "0-0"
        self.view = read_view(self.r)

    def teardown(self) -> None:
        self.loop.run_until_complete(self.aio.aclose())
        self.loop.close()
        self.r.close()

    # running one operation ---------------------------------------------------------------------
    def op(self, op: str, *args: Any) -> Step:
        before = self.view
        result = decode(self.script(args=argv(op, self.now, POLICY, *args)))
        rows = cast(list[tuple[str, dict[str, str]]],
                    self.r.xrange(keys.LOG, min=f"({self.last_log}", max="+"))
        if rows:
            self.last_log = rows[-1][0]
        self.view = read_view(self.r)
        self.check_facts(result.events)
        return Step(op, args, result, result.events, [f for _, f in rows], before, self.view)

    def check_facts(self, events: Events) -> None:
        """What the script returns for the fan-out is Redis as the operation left it, for every
        ticket and staff member its events name."""
        named_tickets = {a for kind, a, _ in events if kind in ("ring", "withdrawn", "ticket")}
        named_staff = {b for kind, _, b in events if kind in ("ring", "withdrawn")} \
            | {a for kind, a, _ in events if kind in ("paused", "presence")}
        assert named_tickets <= set(events.tickets) and named_staff == set(events.staff)
        for ticket_id, facts in events.tickets.items():
            assert facts.fields == self.r.hgetall(keys.TICKET(ticket_id))
            assert facts.deadline == self.r.zscore(keys.RINGING, ticket_id)
        for user, staff in events.staff.items():
            assert staff.state == self.r.hgetall(keys.STAFF(user))
            assert set(staff.pools) == set(self.pools.get(user, ()))
            overview = self.loop.run_until_complete(
                self.store.staff_overview(user, tuple(staff.pools)))
            for pool, pool_facts in staff.pools.items():
                assert (pool_facts.waiting, pool_facts.longest_since) == (overview[1][pool],
                                                                          overview[2][pool])

    def unchanged(self, step: Step) -> None:
        assert step.entries == [], step.entries
        assert step.after.raw == step.before.raw, f"{step.op} {step.args} changed Redis"

    def verify(self, step: Step, dispatched: tuple[str, ...] = ()) -> None:
        """Checks after every operation; `dispatched`: departments the operation dispatched."""
        for entry in step.entries:
            assert abs(float(entry["time"]) - self.now) < 1e-3, entry
        self._check_log_matches_events(step)
        self._check_rings(step)
        self._check_misses(step)
        self._check_tickets(step.after)
        self._check_staff(step.after)
        self._check_connections(step.after)
        for dept in dispatched:
            self._check_nobody_idle(step.after, dept)

    # time and department rules ------------------------------------------------------------
    def open_pools(self, dept: str, created_at: float) -> set[str]:
        waited = self.now - created_at
        return {dept} | {t.group for t in self.cfg[dept].backups if waited >= t.after}

    def cooling(self, view: View, ticket: str, user: str) -> bool:
        """Whether `user` declined or missed `ticket` less than 30 s ago."""
        when = view.declined.get(ticket, {}).get(user)
        return when is not None and self.now - when < DECLINE_COOLDOWN

    def sockets(self, kind: str, ident: str) -> int:
        return sum(self.conns[(kind, ident, node)] for node in NODES)

    def acting_staff(self) -> list[str]:
        """Staff members with a socket on a live process: only they can send anything."""
        return sorted(u for u in self.pools
                      if any(self.conns[("staff", u, n)] and self.alive[n] for n in NODES))

    def presence(self, user: str) -> str:
        return self.view.staff.get(user, {}).get("presence", "offline")

    # checks ----------------------------------------------------------------------------------
    def _check_log_matches_events(self, step: Step) -> None:
        known = {"ENTER", "RING", "NOANSWER", "DECLINE", "GONE", "CONNECT", "ABANDON", "CANCEL",
                 "OVERFLOW", "COMPLETE", "PAUSE", "UNPAUSE"}
        entries, events = step.entries, step.events
        assert {e["event"] for e in entries} <= known, step.kinds()
        assert [(a, b) for k, a, b in events if k == "ring"] == [
            (e["ticket"], e["staff"]) for e in entries if e["event"] == "RING"]
        assert [(a, b) for k, a, b in events if k == "paused"] == [
            (e["staff"], "missed") for e in entries
            if e["event"] == "PAUSE" and e["detail"] == "missed"]
        withdrawn = Counter((e["ticket"], e["staff"]) for e in entries
                            if e["event"] in ("NOANSWER", "GONE")
                            or (e["event"] in ("CANCEL", "ABANDON") and e["staff"]
                                and not e["detail"]))
        assert Counter((a, b) for k, a, b in events if k == "withdrawn") == withdrawn
        status_of = {"RING": "ringing", "DECLINE": "waiting", "NOANSWER": "waiting",
                     "GONE": "waiting", "CANCEL": "cancelled", "COMPLETE": "ended"}
        expected: Counter[tuple[str, str]] = Counter()
        for e in entries:
            if e["event"] in status_of:
                expected[(e["ticket"], status_of[e["event"]])] += 1
            elif e["event"] == "ABANDON":
                expected[(e["ticket"], "ended" if e["detail"] else "abandoned")] += 1
        assert Counter((a, b) for k, a, b in events if k == "ticket") == expected

    def _check_rings(self, step: Step) -> None:
        """Each RING against the state at the moment it was made.

        Redis is read only between operations, but a ticket or staff member that no later log
        entry of the same operation names was, at the moment of the ring, as it is afterwards:
        queue and pool membership, rests, declines and idle times change only together with a log
        entry naming them (a requeue logs DECLINE/NOANSWER/GONE, a release CANCEL/ABANDON,
        presence PAUSE/UNPAUSE/COMPLETE), except a wrap-up ending, which a tick does before any
        dispatch. So: no waiting ticket E of the department with a lower score (priority lane
        first, then sequence) that was not resting, whose open pools hold the rung staff member S
        and that S had not declined or missed in the last 30 s (the dispatch walks the queue in
        score order, so E would have been rung instead); and no available U in the ticket's open
        pools, not cooling off for it, idle since earlier than S."""
        after, entries = step.after, step.entries
        for i, entry in enumerate(entries):
            if entry["event"] != "RING":
                continue
            ticket, user, dept = entry["ticket"], entry["staff"], entry["department"]
            later = entries[i + 1:]
            later_tickets = {e["ticket"] for e in later}
            later_staff = {e["staff"] for e in later}
            row = after.tickets[ticket]
            assert row["department"] == dept
            score = float(row["score"])
            pools = self.open_pools(dept, float(row["created_at"]))
            assert self.pools[user] & pools, f"{user} is in none of {pools}"
            first_overflow = dept not in self.pools[user] and ticket not in self.overflowed
            assert (i > 0 and entries[i - 1]["event"] == "OVERFLOW"
                    and entries[i - 1]["ticket"] == ticket) == first_overflow, entries
            if first_overflow:
                self.overflowed.add(ticket)
            if ticket not in later_tickets:
                assert float(row["rest_until"]) <= self.now, f"{ticket} rung while resting"
                assert not self.cooling(after, ticket, user), f"{user} re-rung for {ticket}"
                assert after.zset("ringing")[ticket] == self.now + self.cfg[dept].ring_timeout
            for other, other_score in after.queues.get(dept, {}).items():
                if other == ticket or other in later_tickets or other_score >= score:
                    continue
                orow = after.tickets[other]
                if float(orow["rest_until"]) > self.now or self.cooling(after, other, user):
                    continue
                if self.pools[user] & self.open_pools(dept, float(orow["created_at"])):
                    raise AssertionError(
                        f"first come, first served: {ticket} (score {score}) rang {user} while "
                        f"{other} (score {other_score}) waited and could have been rung")
            if user in later_staff:
                continue
            since = float(after.staff[user]["since"])
            for pool in pools:
                for other_user, idle in after.available.get(pool, {}).items():
                    if other_user in later_staff or self.cooling(after, ticket, other_user):
                        continue
                    assert idle >= since, (
                        f"longest idle: {ticket} rang {user} (idle since {since}) while "
                        f"{other_user} was available in {pool} since {idle}")

    def _check_misses(self, step: Step) -> None:
        for i, entry in enumerate(step.entries):
            if entry["event"] != "NOANSWER":
                continue
            user = entry["staff"]
            self.misses[user] += 1
            paused = self.misses[user] >= self.cfg[entry["department"]].max_misses
            nxt = step.entries[i + 1] if i + 1 < len(step.entries) else {}
            assert (nxt.get("event") == "PAUSE" and nxt.get("staff") == user
                    and nxt.get("detail") == "missed") == paused, step.entries
            if paused:      # until they make themselves available again (misses back to 0)
                if user not in {e["staff"] for e in step.entries[i + 2:]}:
                    state = step.after.staff[user]
                    assert (state["presence"], state["reason"]) == ("away", "missed")

    def _check_tickets(self, view: View) -> None:
        """The model-free rules (tests/support/queue_state.py), and: no ticket disappears, each
        status change is one the queue allows, a finished ticket expires (an open one never), a
        ticket left by its sockets has its grace."""
        problems = ticket_problems(view)
        assert not problems, problems
        for ticket, previous in self.status.items():
            assert ticket in view.tickets, f"ticket {ticket} disappeared"
            status = view.tickets[ticket]["status"]
            assert status in NEXT_STATUS[previous], f"{ticket}: {previous} -> {status}"
            self.status[ticket] = status
            # A finished ticket expires ticket_keep_hours later (and whom it was offered to is
            # forgotten at once); an open one never expires.
            ttl = self.r.ttl(keys.TICKET(ticket))
            if status in TERMINAL:
                assert 0 < ttl <= POLICY.ticket_keep_hours * 3600, f"{ticket} {status}: {ttl}"
                assert ticket not in view.declined, f"{ticket} is {status}, declined kept"
            else:
                assert ttl == -1, f"{ticket} is {status} and expires in {ttl} s"
        for ticket in view.zset("ticket_gone"):
            assert self.sockets("ticket", ticket) == 0, ticket
        for ticket, status in self.status.items():
            if (status in ("waiting", "ringing") and ("ticket", ticket) in self.ever_connected
                    and self.sockets("ticket", ticket) == 0):
                assert ticket in view.zset("ticket_gone"), f"{ticket} has no grace running"

    def _check_staff(self, view: View) -> None:
        """The model-free rules, and, knowing each staff member's pools and sockets: available
        staff are in every pool of theirs and nowhere else, gone exactly without sockets, with a
        grace when not in a call, their misses counted."""
        problems = staff_problems(view)
        assert not problems, problems
        for pool, members in view.available.items():
            for user in members:
                assert user in self.pools and pool in self.pools[user], (pool, user)
        for user, pools in self.pools.items():
            state = view.staff.get(user, {})
            presence = state.get("presence", "offline")
            gone = state.get("gone") == "1"
            in_pools = {p: m[user] for p, m in view.available.items() if user in m}
            if presence == "available" and not gone:
                assert in_pools == dict.fromkeys(pools, float(state["since"])), (user, in_pools)
            else:
                assert in_pools == {}, f"{user} ({presence}, gone={gone}) in {in_pools}"
            if ("staff", user) in self.ever_connected:
                assert gone == (self.sockets("staff", user) == 0), (user, state)
            if gone and presence in ("available", "away", "wrap_up"):
                assert user in view.zset("staff_gone"), f"{user} gone without a grace"
            assert int(state.get("misses") or 0) == self.misses[user], (user, state)

    def _check_connections(self, view: View) -> None:
        want: dict[tuple[str, str], dict[str, int]] = {}
        sets: dict[tuple[str, str], set[str]] = {}
        for (kind, ident, node), n in self.conns.items():
            if n:
                want.setdefault((kind, ident), {})[node] = n
                sets.setdefault((node, kind), set()).add(ident)
        assert {k: v for k, v in view.conns.items() if v} == want
        assert {k: v for k, v in view.node_sets.items()
                if k[1] not in ("rooms", "adopt")} == sets
        rooms = {room: (ticket, node) for ticket, (room, node) in self.rooms.items()}
        assert {r: (v["ticket_id"], v["node"]) for r, v in view.rooms.items()} == rooms
        hosted: dict[tuple[str, str], set[str]] = {}
        for room, (_ticket, node) in rooms.items():
            hosted.setdefault((node, "rooms"), set()).add(room)
        assert {k: v for k, v in view.node_sets.items() if k[1] == "rooms"} == hosted
        # A room moved from a dead process waits in its new host's adopt set (nothing in this
        # model re-creates it): always one that this host has in its rooms.
        for (node, kind), members in view.node_sets.items():
            if kind == "adopt":
                assert members <= hosted.get((node, "rooms"), set()), (node, members)
        for room, (ticket, _node) in rooms.items():
            assert view.tickets[ticket]["status"] == "connected", room

    def _check_nobody_idle(self, view: View, dept: str) -> None:
        """After `dept` was dispatched, no waiting, unrested ticket of it has anyone available in
        its open pools who is not cooling off for it."""
        for ticket in view.queues.get(dept, {}):
            row = view.tickets[ticket]
            if float(row["rest_until"]) > self.now:
                continue
            for pool in self.open_pools(dept, float(row["created_at"])):
                idle = [u for u in view.available.get(pool, {})
                        if not self.cooling(view, ticket, u)]
                assert not idle, f"{ticket} waits while {idle} in {pool} are available"

    # setup ---------------------------------------------------------------------------------------
    @initialize(
        settings_=st.tuples(*[st.tuples(
            st.sampled_from([3.0, 10.0, 15.0]),      # ring_timeout
            st.sampled_from([0.0, 5.0]),             # ring_pause
            st.integers(1, 3),                       # max_misses
            st.sampled_from([0.0, 10.0]),            # wrap_up
            st.sampled_from([3, 50]),                # max_queue
        ) for _ in DEPTS]),
        backed_up=st.sampled_from(DEPTS),
        after=st.sampled_from([0.0, 20.0, 60.0]),
    )
    def setup(self, settings_: tuple[tuple[float, float, int, float, int], ...], backed_up: str,
              after: float) -> None:
        seeded = {d.id: d for d in DEMO_DEPARTMENTS}
        for dept, (timeout, pause, misses, wrap, max_queue) in zip(DEPTS, settings_, strict=True):
            config = replace(seeded[dept], ring_timeout=timeout, ring_pause=pause,
                             max_misses=misses, wrap_up=wrap, max_queue=max_queue,
                             backups=(Tier(BACKUP, after),) if dept == backed_up else ())
            self.cfg[dept] = config
            self.loop.run_until_complete(self.store.put_department(config))
        for device, hall in DEVICE_HALLS.items():
            self.r.hset(keys.DEVICE(device), mapping={"device_id": device, "hall": hall})
        self.r.hset(keys.DEVICE(REVOKED_DEVICE), mapping={"device_id": REVOKED_DEVICE,
                                                          "revoked_at": "1"})
        for node in NODES:
            self.op("heartbeat", node, HEARTBEAT_TTL)

    # staff ---------------------------------------------------------------------------------------
    @precondition(lambda self: len(self.pools) < 6)
    @rule(pools=st.sets(st.sampled_from(POOLS), min_size=1),
          online=st.integers(0, 3).map(bool), data=st.data())
    def add_staff(self, pools: set[str], online: bool, data: st.DataObject) -> None:
        user = f"s{len(self.pools) + 1}"
        self.pools[user] = frozenset(pools)
        self.loop.run_until_complete(Accounts(self.store.redis, AccountPolicy()).put(
            user, display_name=user, role="staff", departments=tuple(sorted(pools)),
            password_hash="x"))
        self.view = read_view(self.r)
        live = [n for n in NODES if self.alive[n]]
        if online and live:
            self._connect("staff", user, data.draw(st.sampled_from(live)))
            self._set_presence(user, "available", "")

    @precondition(lambda self: self.pools and any(self.alive.values()))
    @rule(data=st.data())
    def connect_staff(self, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(sorted(self.pools)))
        self._connect("staff", user, data.draw(st.sampled_from(
            [n for n in NODES if self.alive[n]])))

    @precondition(lambda self: any(k == "staff" and n and self.alive[node]
                                   for (k, _, node), n in self.conns.items()))
    @rule(data=st.data())
    def disconnect_staff(self, data: st.DataObject) -> None:
        user, node = data.draw(st.sampled_from(sorted(
            (u, node) for (k, u, node), n in self.conns.items()
            if k == "staff" and n and self.alive[node])))
        self._disconnect("staff", user, node)

    @precondition(lambda self: self.acting_staff())
    @rule(data=st.data(), state=st.sampled_from(["available", "away"]),
          reason=st.sampled_from(["", "lunch"]))
    def set_presence(self, data: st.DataObject, state: str, reason: str) -> None:
        self._set_presence(data.draw(st.sampled_from(self.acting_staff())), state, reason)

    def _set_presence(self, user: str, state: str, reason: str) -> None:
        current = self.presence(user)
        step = self.op("presence", user, state, reason)
        if current in ("ringing", "in_call"):
            assert (step.result.code, step.result.value) == ("bad_state", current)
            self.unchanged(step)
            return
        assert (step.result.code, step.result.value) == ("ok", state)
        after = step.after.staff[user]
        if state == "available":
            self.misses[user] = 0
            if current == "available":
                step.after_ring_kinds()
            else:
                step.after_ring_kinds("UNPAUSE")
                assert float(after["since"]) == self.now
            assert after["presence"] in ("available", "ringing")
            self.verify(step, tuple(sorted(self.pools[user] & set(DEPTS))))
        else:
            assert step.kinds() == ["PAUSE"]
            assert step.entries[0]["detail"] == (reason if state == "away" else state)
            assert (after["presence"], after["reason"]) == (state, reason)
            self.verify(step)

    def _connect(self, kind: str, ident: str, node: str) -> None:
        self.conns[(kind, ident, node)] += 1
        self.ever_connected.add((kind, ident))
        step = self.op("connection", kind, ident, node, 1)
        assert step.result.value == self.sockets(kind, ident)
        assert step.entries == [] and step.events == []
        self.verify(step)
        if kind == "ticket":
            assert ident not in step.after.zset("ticket_gone")
        else:
            assert ident not in step.after.zset("staff_gone")

    def _disconnect(self, kind: str, ident: str, node: str) -> None:
        self.conns[(kind, ident, node)] -= 1
        ringing = kind == "staff" and self.presence(ident) == "ringing"
        ticket = self.view.staff.get(ident, {}).get("ticket", "")
        status = self.view.tickets[ident]["status"] if kind == "ticket" else ""
        step = self.op("connection", kind, ident, node, -1)
        total = self.sockets(kind, ident)
        assert step.result.value == total
        if ringing and total == 0:
            step.after_ring_kinds("GONE")
            assert step.entries[0]["ticket"] == ticket
            self.verify(step, (step.entries[0]["department"],))
        else:
            assert step.entries == []
            self.verify(step)
        if total == 0 and kind == "staff":
            assert step.after.zset("staff_gone")[ident] == self.now + STAFF_GRACE
        if total == 0 and status in ("waiting", "ringing"):
            assert step.after.zset("ticket_gone")[ident] == self.now + TICKET_GRACE

    # tickets --------------------------------------------------------------------------------------
    @precondition(lambda self: len(self.status) < 30)
    @rule(dept=st.sampled_from(DEPTS), priority=st.booleans(), connect=st.booleans(),
          device=st.sampled_from(["", "", "", *DEVICE_HALLS, REVOKED_DEVICE]), data=st.data())
    def enqueue(self, dept: str, priority: bool, connect: bool, device: str,
                data: st.DataObject) -> None:
        ticket = f"t{len(self.status) + 1:02d}"
        full = len(self.view.queues.get(dept, {})) >= self.cfg[dept].max_queue
        last = self.device_ticket.get(device, "")
        busy = self.view.tickets.get(last, {}).get("status") in ("waiting", "ringing",
                                                                  "connected")
        hall = DEVICE_HALLS.get(device, "")
        step = self.op("enqueue", ticket, dept, int(priority), "kiosk", "", "hash", "20250101",
                       CONSENT_NOTICE_VERSION, "", 0, device, hall, "")
        if device == REVOKED_DEVICE or busy:
            code = Code.DEVICE_REVOKED if device == REVOKED_DEVICE else Code.DEVICE_BUSY
            assert step.result == Reply(code, Events(), None)
            self.unchanged(step)
            return
        if full:
            assert step.result == Reply(Code.QUEUE_FULL, Events(), None)
            self.unchanged(step)
            return
        assert step.result.code == "ok"
        self.status[ticket] = "waiting"
        step.after_ring_kinds("ENTER")
        assert step.entries[0]["ticket"] == ticket
        assert step.entries[0]["detail"] == ("priority" if priority else "")
        row = step.after.tickets[ticket]
        seq = int(step.before.raw.get(keys.TICKET_SEQ) or 0) + 1
        assert int(row["seq"]) == seq
        assert float(row["score"]) == seq + (0 if priority else ORDINARY_BASE)
        assert row["number"][1] == ("B" if priority else "A")
        if device:
            assert (row["device"], row["hall"]) == (device, hall)
            assert step.after.raw[keys.DEVICE(device)]["ticket"] == ticket
            self.device_ticket[device] = ticket
        else:
            assert "device" not in row and "hall" not in row
        self.verify(step, (dept,))
        live = [n for n in NODES if self.alive[n]]
        if connect and live:
            self._connect("ticket", ticket, data.draw(st.sampled_from(live)))

    @precondition(lambda self: any(s in ("waiting", "ringing", "connected")
                                   for s in self.status.values()) and any(self.alive.values()))
    @rule(data=st.data())
    def connect_ticket(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(sorted(
            t for t, s in self.status.items() if s in ("waiting", "ringing", "connected"))))
        self._connect("ticket", ticket, data.draw(st.sampled_from(
            [n for n in NODES if self.alive[n]])))

    @precondition(lambda self: any(k == "ticket" and n and self.alive[node]
                                   for (k, _, node), n in self.conns.items()))
    @rule(data=st.data())
    def disconnect_ticket(self, data: st.DataObject) -> None:
        ticket, node = data.draw(st.sampled_from(sorted(
            (t, node) for (k, t, node), n in self.conns.items()
            if k == "ticket" and n and self.alive[node])))
        self._disconnect("ticket", ticket, node)

    def active_tickets(self) -> list[str]:
        return sorted(t for t, s in self.status.items() if s in ("waiting", "ringing"))

    @precondition(lambda self: self.active_tickets())
    @rule(data=st.data(), really=st.integers(0, 2))
    def cancel(self, data: st.DataObject, really: int) -> None:
        if really:      # rarer than the rest, so that queues build up
            return
        ticket = data.draw(st.sampled_from(self.active_tickets()))
        row = self.view.tickets[ticket]
        step = self.op("cancel", ticket)
        assert step.result.code == "ok"
        step.after_ring_kinds("CANCEL")
        assert step.after.tickets[ticket]["status"] == "cancelled"
        staff = row["staff"]
        if staff:       # the ring is withdrawn; they are available again, keeping their idle time
            state = step.after.staff[staff]
            assert state["presence"] in ("available", "ringing")
            assert state["since"] == step.before.staff[staff]["since"]
        self.verify(step, (row["department"],))

    # rings ----------------------------------------------------------------------------------------
    def ringing_staff(self) -> list[str]:
        return [u for u in self.acting_staff() if self.presence(u) == "ringing"]

    @precondition(lambda self: self.ringing_staff())
    @rule(data=st.data())
    def accept_ring(self, data: st.DataObject) -> None:
        self._answer(data, accept=True)

    @precondition(lambda self: self.ringing_staff())
    @rule(data=st.data())
    def decline_ring(self, data: st.DataObject) -> None:
        self._answer(data, accept=False)

    def _answer(self, data: st.DataObject, accept: bool) -> None:
        user = data.draw(st.sampled_from(self.ringing_staff()))
        ticket = self.view.staff[user]["ticket"]
        dept = self.view.tickets[ticket]["department"]
        since = self.view.staff[user]["since"]
        if accept:
            step = self.op("accept", ticket, user)
            assert step.result.code == "ok"
            assert step.kinds() == ["CONNECT"] and step.entries[0]["ticket"] == ticket
            state = step.after.staff[user]
            assert (state["presence"], float(state["since"])) == ("in_call", self.now)
            self.misses[user] = 0
            self.verify(step)
            node = data.draw(st.sampled_from(
                [n for n in NODES if self.alive[n] and self.conns[("staff", user, n)]]))
            room = f"r-{ticket}"
            self.rooms[ticket] = (room, node)
            step = self.op("room", room, node, ticket, dept, user)
            assert step.result.code == "ok" and step.entries == []
            self.verify(step)
        else:
            step = self.op("decline", ticket, user)
            assert step.result.code == "ok"
            step.after_ring_kinds("DECLINE")
            assert step.after.declined[ticket][user] == self.now
            state = step.after.staff[user]
            assert state["presence"] in ("available", "ringing") and state["since"] == since
            assert step.after.tickets[ticket]["staff"] != user
            self.verify(step, (dept,))

    @precondition(lambda self: self.acting_staff())
    @rule(data=st.data(),
          what=st.sampled_from(["accept", "decline", "finish", "cancel", "presence"]))
    def refused(self, data: st.DataObject, what: str) -> None:
        """An operation that must be refused changes nothing at all: accepting or declining a
        ticket not offered to this staff member right now, finishing a ticket not in a call,
        cancelling one that is no longer waiting, presence while ringing or in a call."""
        user = data.draw(st.sampled_from(self.acting_staff()))
        if what == "presence":
            if self.presence(user) not in ("ringing", "in_call"):
                return
            step = self.op("presence", user, data.draw(st.sampled_from(["available", "away"])),
                           "")
            assert step.result.code == "bad_state"
        elif what in ("finish", "cancel"):
            allowed = ("connected",) if what == "finish" else ("waiting", "ringing")
            candidates = sorted(t for t, s in self.status.items() if s not in allowed)
            ticket = data.draw(st.sampled_from([*candidates, "t-none"]))
            step = self.op(what, ticket)
            assert step.result.code == "bad_state"
            assert step.result.value is None            # finish: no staff member
        else:
            candidates = sorted(t for t, row in self.view.tickets.items()
                                if (row["status"], row["staff"]) != ("ringing", user))
            others = [t for t in candidates if self.view.tickets[t]["status"] == "ringing"]
            if not others or not data.draw(st.booleans()):     # mostly a colleague's ring
                others = [*candidates, "t-none"]
            ticket = data.draw(st.sampled_from(others))
            step = self.op(what, ticket, user)
            assert step.result.code == "not_offered"
        self.unchanged(step)

    def live_calls(self) -> list[str]:
        """Tickets in a call whose room's process is alive (only it can end the call)."""
        return sorted(t for t, (_room, node) in self.rooms.items() if self.alive[node])

    @precondition(lambda self: self.live_calls())
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(self.live_calls()))
        room, _node = self.rooms.pop(ticket)
        step = self.op("room_closed", room)
        assert step.result.code == "ok" and step.entries == []
        self.verify(step)
        staff = self.view.tickets[ticket]["staff"]
        dept = self.view.tickets[ticket]["department"]
        step = self.op("finish", ticket)
        assert (step.result.code, step.result.value) == ("ok", staff)
        assert step.kinds() == ["COMPLETE"]
        state = step.after.staff[staff]
        wrap = self.cfg[dept].wrap_up
        if self.sockets("staff", staff) == 0:
            assert state["presence"] == "offline"
        elif wrap > 0:
            assert (state["presence"], float(state["wrap_until"])) == ("wrap_up", self.now + wrap)
        else:
            assert (state["presence"], float(state["since"])) == ("available", self.now)
        self.verify(step)

    # processes and time ------------------------------------------------------------------------
    @rule(node=st.sampled_from(NODES), kill=st.integers(0, 3))
    def kill_or_restart_node(self, node: str, kill: int) -> None:
        """A live process dies (it stops heartbeating; its sockets and calls count until a tick
        finds its heartbeat ran out); a dead one that was cleaned up after starts again. (Deaths
        are made rarer than restarts so that most runs have somewhere to connect.)"""
        if self.alive[node] and kill == 0:
            self.alive[node] = False
        elif node not in self.view.zset("nodes"):
            self.alive[node] = True
            step = self.op("heartbeat", node, HEARTBEAT_TTL)
            assert step.entries == []
            self.verify(step)

    @rule(dt=st.integers(1, 400).map(lambda n: n / 10))
    def advance(self, dt: float) -> None:
        self.now = round(self.now + dt, 1)
        for node in NODES:
            if self.alive[node]:
                self.verify(self.op("heartbeat", node, HEARTBEAT_TTL))
        before = self.view
        dead = {n for n, deadline in before.zset("nodes").items() if deadline <= self.now}
        assert not {n for n in dead if self.alive[n]}
        for key in [k for k in self.conns if k[2] in dead]:
            del self.conns[key]
        calls_dropped = {t for t, (_room, node) in self.rooms.items() if node in dead}
        # Where a dead process's calls can move: a process whose heartbeat has not run out.
        live = {n for n, deadline in before.zset("nodes").items() if deadline > self.now}
        step = self.op("tick", "1")  # with the sweep of dead processes (no outage in this model)
        for ticket in calls_dropped:
            room, _node = self.rooms.pop(ticket)
            if live and before.tickets[ticket]["status"] == "connected":
                moved_to = step.after.rooms[room]["node"]
                assert moved_to in live, (room, moved_to, live)
                assert step.after.tickets[ticket]["status"] == "connected"
                assert room in step.after.node_sets[(moved_to, "adopt")]
                self.rooms[ticket] = (room, moved_to)
        # rings that ran out, and only those
        timed_out = {t for t, deadline in before.zset("ringing").items()
                     if deadline <= self.now}
        noanswer = [(e["ticket"], e["staff"]) for e in step.entries if e["event"] == "NOANSWER"]
        assert sorted(noanswer) == sorted((t, before.tickets[t]["staff"]) for t in timed_out)
        for ticket in timed_out:
            dept = before.tickets[ticket]["department"]
            assert float(step.after.tickets[ticket]["rest_until"]) == (
                self.now + self.cfg[dept].ring_pause)
        # applicants gone past their grace
        abandoned = {e["ticket"] for e in step.entries
                     if e["event"] == "ABANDON" and not e["detail"]}
        assert abandoned == {t for t, end in before.zset("ticket_gone").items()
                             if end <= self.now and before.tickets[t]["status"] in
                             ("waiting", "ringing")}
        # calls of dead processes
        died = {e["ticket"] for e in step.entries if e["event"] == "ABANDON" and e["detail"]}
        assert died == {t for t in calls_dropped
                        if before.tickets[t]["status"] == "connected" and not live}
        for ticket in died:
            assert step.after.tickets[ticket]["status"] == "ended"
        # staff gone past their grace
        for user, end in before.zset("staff_gone").items():
            if end <= self.now and self.sockets("staff", user) == 0:
                assert step.after.staff[user]["presence"] in ("offline", "in_call")
        for e in step.entries:
            if e["event"] == "PAUSE" and e["detail"] == "offline":
                assert before.zset("staff_gone").get(e["staff"], self.now + 1) <= self.now
        # everything due is done
        for name in ("ringing", "wrapup", "nodes", "staff_gone", "ticket_gone"):
            due = [m for m, s in step.after.zset(name).items() if s <= self.now]
            assert not due, f"{name}: {due} still due at {self.now}"
        for node, alive in self.alive.items():
            assert node in step.after.zset("nodes") or not alive
        for node in dead:
            assert (node, "staff") not in step.after.node_sets
            assert (node, "ticket") not in step.after.node_sets
            assert (node, "rooms") not in step.after.node_sets
            assert (node, "adopt") not in step.after.node_sets
        self.verify(step, DEPTS)


def test_queue_rules_hold_for_any_sequence_of_operations(redis_url: str) -> None:
    REDIS["url"] = redis_url
    run_state_machine_as_test(QueueRules, settings=SETTINGS)
