"""The queue's state read back from Redis (every key, sorted by meaning), and the rules that hold
whatever happened, with no model of what clients did: where each ticket is matches its status,
nobody holds two tickets (no double booking), ringing and in-call staff point at their ticket and
back, only available staff are in the available sets. tests/signaling/test_queue_rules.py checks
them, with its model's stronger rules, after every operation of its state machine; the fuzzer
(tests/fuzz/) after every batch of inputs to a live server."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import redis

TERMINAL = ("ended", "cancelled", "abandoned")


@dataclass
class View:
    """Every key of the database after one operation, raw and sorted by meaning."""

    raw: dict[str, Any]
    tickets: dict[str, dict[str, str]] = field(default_factory=dict)
    declined: dict[str, dict[str, float]] = field(default_factory=dict)
    queues: dict[str, dict[str, float]] = field(default_factory=dict)
    staff: dict[str, dict[str, str]] = field(default_factory=dict)
    available: dict[str, dict[str, float]] = field(default_factory=dict)
    conns: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    node_sets: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    rooms: dict[str, dict[str, str]] = field(default_factory=dict)
    zsets: dict[str, dict[str, float]] = field(default_factory=dict)

    def zset(self, name: str) -> dict[str, float]:
        """yz:ringing, yz:wrapup, yz:nodes, yz:staff_gone or yz:ticket_gone."""
        return self.zsets.get(name, {})


def read_view(r: redis.Redis) -> View:
    names = sorted(cast(list[str], r.keys("*")))
    pipe = r.pipeline(transaction=False)
    for key in names:
        pipe.type(key)
    types = pipe.execute()
    readers = {"hash": "hgetall", "set": "smembers", "string": "get", "list": "lrange",
               "stream": "xlen"}
    pipe = r.pipeline(transaction=False)
    for key, kind in zip(names, types, strict=True):
        if kind == "zset":
            pipe.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            pipe.lrange(key, 0, -1)
        else:
            getattr(pipe, readers[kind])(key)
    view = View(raw={})
    for key, kind, value in zip(names, types, pipe.execute(), strict=True):
        view.raw[key] = sorted(value) if kind == "set" else value
        parts = key.split(":")
        if kind == "zset":
            value = {member: float(score) for member, score in value}
        if parts[1] == "ticket" and len(parts) == 3:
            view.tickets[parts[2]] = value
        elif parts[1] == "ticket" and parts[3:] == ["declined"]:
            view.declined[parts[2]] = value
        elif parts[1] == "queue":
            view.queues[parts[2]] = value
        elif parts[1] == "staff":
            view.staff[parts[2]] = value
        elif parts[1] == "available":
            view.available[parts[2]] = value
        elif parts[1] == "conns":
            view.conns[(parts[2], parts[3])] = {node: int(n) for node, n in value.items()}
        elif parts[1] == "node":
            view.node_sets[(parts[2], parts[3])] = set(value)
        elif parts[1] == "room":
            view.rooms[parts[2]] = value
        elif kind == "zset":
            view.zsets[parts[1]] = value
    return view


def ticket_problems(view: View) -> list[str]:
    """Each ticket is where its status says: waiting in its department's queue (at its score, with
    no staff), ringing in the ringing set, anything else nowhere; a ringing or connected ticket is
    held by a staff member whose state points back at it, and nobody holds two (double booking);
    a finished ticket holds nobody unless it ended after a call."""
    problems: list[str] = []
    holders: Counter[str] = Counter()
    ringing = view.zset("ringing")
    for ticket, row in view.tickets.items():
        status, dept, staff = row.get("status"), row.get("department", ""), row.get("staff", "")
        places = [f"queue:{d}" for d, q in view.queues.items() if ticket in q]
        if ticket in ringing:
            places.append("ringing")
        expected = {"waiting": [f"queue:{dept}"], "ringing": ["ringing"]}.get(status or "", [])
        if places != expected:
            problems.append(f"ticket {ticket} is {status} in {places}")
        if status == "waiting" and (staff or view.queues.get(dept, {}).get(ticket)
                                    != float(row.get("score", "nan"))):
            problems.append(f"waiting ticket {ticket}: staff {staff!r}, score {row.get('score')}")
        if status in ("ringing", "connected"):
            holders[staff] += 1
            want = "ringing" if status == "ringing" else "in_call"
            state = view.staff.get(staff, {})
            if (state.get("presence"), state.get("ticket")) != (want, ticket):
                problems.append(f"ticket {ticket} is {status} with {staff!r}, who is {state}")
        if status in TERMINAL and staff and status != "ended":
            problems.append(f"ticket {ticket} is {status} but held by {staff}")
    problems += [f"{user!r} holds {n} tickets" for user, n in holders.items() if n > 1]
    return problems


def staff_problems(view: View) -> list[str]:
    """The available sets hold available staff with a socket (not gone), at their idle-since
    time; a ringing or in-call staff member's ticket is ringing or connected with them; wrap-up
    and the reconnect grace are where the state says."""
    problems: list[str] = []
    for pool, members in view.available.items():
        for user, idle in members.items():
            state = view.staff.get(user, {})
            if state.get("presence") != "available" or state.get("gone") == "1" \
                    or float(state.get("since", "nan")) != idle:
                problems.append(f"{user} is in available:{pool} since {idle} but {state}")
    for user, state in view.staff.items():
        presence, gone = state.get("presence"), state.get("gone") == "1"
        if presence in ("ringing", "in_call"):
            row = view.tickets.get(state.get("ticket", ""), {})
            want = "ringing" if presence == "ringing" else "connected"
            if (row.get("status"), row.get("staff")) != (want, user):
                problems.append(f"{user} is {presence} for {state.get('ticket')}, which is {row}")
        if presence == "ringing" and gone:
            problems.append(f"{user} is rung while gone")
        wrap = view.zset("wrapup").get(user)
        if (presence == "wrap_up") != (wrap is not None) or (
                wrap is not None and wrap != float(state.get("wrap_until", "nan"))):
            problems.append(f"{user} is {presence} with wrap-up entry {wrap}")
        if user in view.zset("staff_gone") and not gone:
            problems.append(f"{user} has a reconnect grace running but is not gone")
    return problems


def queue_problems(view: View) -> list[str]:
    return ticket_problems(view) + staff_problems(view)
