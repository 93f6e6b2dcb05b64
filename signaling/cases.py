"""差评 rectification cases: a rating of 1 or 2 opens one for the department rated, due a number
of working days later; supervisors of that department take it through its steps
(signaling/case_rules.py), each audited and kept in its history; near-due and overdue cases raise
supervisors' alerts. Keys: ``yz:case:<case_id>`` and its history, ``yz:cases`` and
``yz:cases:<dept>`` (signaling/keys.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from recordings.alerts import Alerts
from recordings.archive import REDIS_UNAVAILABLE
from recordings.audit import Audit
from rooms.roles import Role
from signaling import keys
from signaling.accounts import User
from signaling.case_rules import CaseFlow, CaseState
from signaling.config import SignalingConfig
from signaling.errors import SignalError
from signaling.ratings import Rating
from signaling.store import Ticket
from signaling.workdays import WorkCalendar

logger = logging.getLogger(__name__)

# Seconds between two checks for near-due and overdue cases (the day changes slowly).
DUE_CHECK_S = 600.0
# The newest cases a list answers at most.
MAX_LIST = 500
# The fields of a case's hash (the statistics read opened_at, due, state, closed_at, department,
# hall and score: keep the names).
FIELDS = ("id", "ticket_id", "ticket_number", "room_id", "department", "hall", "staff", "score",
          "reasons", "comment", "opened_at", "due", "state", "closed_at", "resolution",
          "appellant", "updated_at")


class Cases:
    def __init__(self, redis: aioredis.Redis, config: SignalingConfig, calendar: WorkCalendar,
                 audit: Audit, now: Callable[[], float] = time.time) -> None:
        self.redis: Any = redis
        self._config, self._calendar, self._audit = config, calendar, audit
        # The clock cases are opened and stepped by (a test sets the day a case opens on).
        self.now = now

    def today(self) -> dt.date:
        return self._config.local_time(self.now()).date()

    def due_date(self, opened: dt.date) -> dt.date:
        return self._calendar.add_working_days(opened, self._config.case_due_working_days)

    async def open(self, ticket: Ticket, rating: Rating) -> str:
        """A case for the department of a bad rating; returns its id."""
        now = self.now()
        number = int(await self.redis.incr(keys.CASE_SEQ))
        opened = self._config.local_time(now).date()
        case_id = f"{opened:%Y%m%d}-{number:05d}"
        record = {
            "id": case_id, "ticket_id": ticket.ticket_id, "ticket_number": ticket.number,
            "room_id": ticket.room_id, "department": rating.department, "hall": ticket.hall,
            "staff": rating.staff, "score": rating.score, "reasons": ",".join(rating.reasons),
            "comment": rating.comment, "opened_at": now,
            "due": self.due_date(opened).isoformat(), "state": CaseState.OPENED.value,
            "closed_at": "", "resolution": "", "appellant": "", "updated_at": now,
        }
        opening = {"at": now, "who": "", "step": "open", "state": CaseState.OPENED.value,
                   "text": str(rating.score), "decision": ""}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.CASE(case_id), mapping=record)
            pipe.rpush(keys.CASE_HISTORY(case_id), json.dumps(opening, ensure_ascii=False))
            pipe.zadd(keys.CASES, {case_id: now})
            pipe.zadd(keys.DEPT_CASES(rating.department), {case_id: now})
            pipe.sadd(keys.OPEN_CASES, case_id)
            pipe.hset(keys.TICKET(ticket.ticket_id), f"case:{rating.department}", case_id)
            await pipe.execute()
        await self._audit.append("system", "case_open", recording_id=ticket.room_id,
                                 department=rating.department, target=case_id,
                                 detail=f"ticket {ticket.number} rated {rating.score}",
                                 after=_audited(record))
        logger.info("case %s opened for %s: ticket %s rated %d, due %s", case_id,
                    rating.department, ticket.ticket_id, rating.score, record["due"])
        return case_id

    # reading ----------------------------------------------------------------------------------
    @staticmethod
    def _require(user: User) -> None:
        # 三权分立: the auditor reads the steps in the audit log, the admin nothing.
        if user.role != Role.SUPERVISOR:
            raise SignalError("forbidden.cases")

    @staticmethod
    def _sees(user: User, department: str) -> bool:
        """A supervisor sees their departments' cases; one with no departments sees all."""
        return not user.departments or department in user.departments

    async def list(self, user: User, *, state: str = "", department: str = "",
                   overdue: bool | None = None) -> list[dict[str, Any]]:
        """The newest cases the supervisor may see, filtered: `state` a CaseState or `open`
        (not closed), `department`, `overdue`."""
        self._require(user)
        if department and not self._sees(user, department):
            return []
        if state == "open" or overdue:
            # Every open case, however old: the newest MAX_LIST of all might miss some.
            ids = list(await self.redis.smembers(keys.OPEN_CASES))
        else:
            sources = [keys.DEPT_CASES(department)] if department else \
                [keys.DEPT_CASES(d) for d in user.departments] or [keys.CASES]
            ids = [case_id for source in sources
                   for case_id in await self.redis.zrevrange(source, 0, MAX_LIST - 1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for case_id in ids:
                pipe.hgetall(keys.CASE(case_id))
            rows = await pipe.execute()
        out = []
        for row in rows:
            if not row or not self._sees(user, row.get("department", "")) \
                    or (department and row.get("department") != department):
                continue
            view = self._view(row)
            if state and not (view["state"] == state or (state == "open" and view["open"])):
                continue
            if overdue is not None and view["overdue"] != overdue:
                continue
            out.append(view)
        out.sort(key=lambda view: -view["opened_at"])
        return out[:MAX_LIST]

    async def get(self, user: User, case_id: str) -> dict[str, Any]:
        """One case with its history; another department's answers like an unknown one."""
        self._require(user)
        row = await self.redis.hgetall(keys.CASE(case_id))
        if not row or not self._sees(user, row.get("department", "")):
            raise SignalError("not_found.case")
        history = [json.loads(e) for e in await self.redis.lrange(keys.CASE_HISTORY(case_id),
                                                                  0, -1)]
        return {**self._view(row), "history": history}

    def _view(self, row: dict[str, str]) -> dict[str, Any]:
        flow = _flow(row)
        due = dt.date.fromisoformat(row["due"])
        today = self.today()
        is_open = flow.state != CaseState.CLOSED
        left = self._calendar.working_days_between(today, due) if today < due else 0
        return {
            "id": row["id"], "ticket_id": row["ticket_id"],
            "ticket_number": row.get("ticket_number", ""), "room_id": row.get("room_id", ""),
            "department": row["department"], "hall": row.get("hall", ""),
            "staff": row.get("staff", ""), "score": int(row["score"]),
            "reasons": [r for r in row.get("reasons", "").split(",") if r],
            "comment": row.get("comment", ""), "opened_at": float(row["opened_at"]),
            "due": row["due"], "state": flow.state.value,
            "closed_at": float(row["closed_at"]) if row.get("closed_at") else None,
            "resolution": flow.resolution, "appellant": flow.appellant,
            "open": is_open, "overdue": is_open and today > due,
            "near_due": is_open and today <= due
            and left <= self._config.case_warn_working_days,
            "working_days_left": left if is_open else None,
            "next_steps": [s.value for s in flow.next_steps()],
        }

    # steps ------------------------------------------------------------------------------------
    async def step(self, user: User, case_id: str, step: str, text: str, decision: str = "",
                   remote: str = "") -> dict[str, Any]:
        """The supervisor takes the case's next step: checked by the rules, stored atomically
        (WATCH: two supervisors at once cannot both take it), audited with before and after."""
        self._require(user)
        key = keys.CASE(case_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            row = await pipe.hgetall(key)
            if not row or not self._sees(user, row.get("department", "")):
                raise SignalError("not_found.case")
            before = _flow(row)
            after = before.apply(step, user.username, text, decision)
            now = self.now()
            changes: dict[str, Any] = {"state": after.state.value,
                                       "resolution": after.resolution,
                                       "appellant": after.appellant, "updated_at": now}
            if after.state == CaseState.CLOSED:
                changes["closed_at"] = now
            entry = {"at": now, "who": user.username, "step": step, "state": after.state.value,
                     "text": text.strip(), "decision": decision}
            pipe.multi()
            pipe.hset(key, mapping=changes)
            pipe.rpush(keys.CASE_HISTORY(case_id), json.dumps(entry, ensure_ascii=False))
            if after.state == CaseState.CLOSED:
                pipe.srem(keys.OPEN_CASES, case_id)
            await pipe.execute()  # WatchError: changed meanwhile, the edge answers 409
        await self._audit.append(user.username, "case_step", recording_id=row.get("room_id", ""),
                                 remote=remote, department=row["department"], target=case_id,
                                 detail=f"{step}{' ' + decision if decision else ''}: "
                                        f"{text.strip()[:200]}",
                                 before=_audited(row), after=_audited({**row, **changes}))
        logger.info("case %s: %s by %s (%s -> %s)", case_id, step, user.username,
                    before.state.value, after.state.value)
        return await self.get(user, case_id)

    # alerts -----------------------------------------------------------------------------------
    async def raise_alerts(self, alerts: Alerts) -> int:
        """Alert the supervisors about each open case within case_warn_working_days of its due
        date, and each overdue one (once a day each: recordings/alerts.py). Returns how many
        were raised."""
        raised = 0
        for case_id in sorted(await self.redis.smembers(keys.OPEN_CASES)):
            row = await self.redis.hgetall(keys.CASE(case_id))
            if not row or row.get("state") == CaseState.CLOSED:
                await self.redis.srem(keys.OPEN_CASES, case_id)
                continue
            view = self._view(row)
            kind = "case_overdue" if view["overdue"] else "case_due" if view["near_due"] else ""
            if kind and await alerts.raise_once(
                    kind, case_id, room_id=view["room_id"],
                    ticket_number=view["ticket_number"], department=view["department"],
                    detail=f"{case_id} due {view['due']}"):
                raised += 1
        return raised


def _flow(row: dict[str, str]) -> CaseFlow:
    return CaseFlow(state=CaseState(row["state"]), appellant=row.get("appellant", ""),
                    resolution=row.get("resolution", ""))


def _audited(row: dict[str, Any]) -> dict[str, Any]:
    """A case's state as the audit keeps it (the citizen's comment is left out: it is in the
    case itself)."""
    return {name: row.get(name, "") for name in ("state", "resolution", "appellant", "due",
                                                 "closed_at", "score", "department")}


async def watch_due(cases: Cases, alerts: Alerts, interval: float = DUE_CHECK_S) -> None:
    """Alert about near-due and overdue cases at start, then every `interval` (an owned
    background task: server/app.py)."""
    while True:
        try:
            raised = await cases.raise_alerts(alerts)
            if raised:
                logger.warning("cases: %d near-due or overdue case alert(s) raised", raised)
        except REDIS_UNAVAILABLE:
            pass  # the service's Redis watch logs the outage; checked again next round
        except Exception:
            logger.exception("case alerts: check failed; trying again")
        await asyncio.sleep(interval)
