"""Statistics view time with a year of history: synthetic queue-log entries for one year (≥200,000
consultations over the five demo departments and four halls) folded into the rollups through the
consumer's own path (signaling.stats.Tally.fold, signaling.stats_store.write_tally), a few
thousand bad-rating cases, then the real server (a subprocess on that Redis) timed on
GET /api/stats for a month view (by day) and a year view (by month, and by day)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import tempfile
import time
import zoneinfo
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench.common import ROOT, ServerProcess, merge_results, percentile
from server.redis_server import EmbeddedRedis
from signaling import keys
from signaling.client import login_cookie
from signaling.stats import Tally
from signaling.stats_store import write_tally

RESULTS = ROOT / "bench" / "results" / "stats.json"
ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
DEPARTMENTS = ("tax", "market", "hrss", "fund", "estate")
HALLS = ("市民中心东厅", "市民中心西厅", "高新区分中心", "")
# Rating scores and their weights: mostly satisfied, a few bad ones (each opens a case).
SCORES = (5, 4, 3, 2, 1)
SCORE_WEIGHTS = (70, 18, 8, 2.5, 1.5)


def _day_entries(rng: random.Random, day: dt.date, per_day: int,
                 serial: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """One day's queue-log entries (in time order) and the cases its bad ratings opened."""
    opening = dt.datetime.combine(day, dt.time(9), ZONE).timestamp()
    entries: list[tuple[float, dict[str, str]]] = []
    cases: list[dict[str, str]] = []

    def add(when: float, event: str, ticket: str, department: str, detail: str = "",
            **extra: str) -> None:
        entries.append((when, {"time": f"{when:.3f}", "event": event, "ticket": ticket,
                               "department": department, "staff": "", "detail": detail,
                               **extra}))

    for n in range(per_day):
        ticket = f"b{serial + n:x}"
        department = rng.choice(DEPARTMENTS)
        hall = rng.choice(HALLS)
        entered = opening + rng.uniform(0, 8 * 3600)
        add(entered, "ENTER", ticket, department, hall=hall)
        wait = rng.expovariate(1 / 60)
        if rng.random() < 0.12:
            add(entered + wait, rng.choice(("CANCEL", "ABANDON")), ticket, department)
            continue
        add(entered + wait, "CONNECT", ticket, department, f"{wait:.1f}")
        talk = rng.uniform(60, 900)
        rated = [department]
        if rng.random() < 0.08:
            other = rng.choice([d for d in DEPARTMENTS if d != department])
            add(entered + wait + 30, "INVITE", ticket, other)
            add(entered + wait + 60, "JOIN", ticket, other)
            rated.append(other)
        ended = entered + wait + talk
        add(ended, "COMPLETE", ticket, department, f"{talk:.1f}")
        if rng.random() < 0.6:
            for rated_department in rated:
                score = rng.choices(SCORES, SCORE_WEIGHTS)[0]
                add(ended + 20, "RATE", ticket, rated_department, str(score))
                if score <= 2:
                    closed = rng.random() < 0.8
                    closed_at = ended + rng.uniform(1, 30) * 86400
                    case_id = f"{day:%Y%m%d}-{len(cases) + 1:05d}"
                    # The record signaling/cases.py writes when it opens a case (then steps).
                    cases.append({
                        "id": case_id, "ticket_id": ticket, "ticket_number": f"A{n:03d}",
                        "room_id": "", "department": rated_department, "hall": hall,
                        "staff": "", "score": str(score), "reasons": "", "comment": "",
                        "opened_at": f"{ended + 20:.0f}",
                        "due": (day + dt.timedelta(days=21)).isoformat(),
                        "state": "closed" if closed else "verified",
                        "closed_at": f"{closed_at:.0f}" if closed else "",
                        "resolution": "rectified" if closed else "", "appellant": "",
                        "updated_at": f"{closed_at if closed else ended + 20:.0f}"})
    for _ in range(per_day // 20):
        add(opening + rng.uniform(0, 8 * 3600), "CALLBACK", "", rng.choice(DEPARTMENTS),
            "x 138****0000")
    entries.sort(key=lambda pair: pair[0])
    return [entry for _, entry in entries], cases


async def generate(redis: aioredis.Redis, first: dt.date, last: dt.date,
                   per_day: int, seed: int = 12) -> dict[str, Any]:
    """Fold a synthetic history into the rollups, a day at a time; the counts made."""
    rng = random.Random(seed)
    started = time.perf_counter()
    consultations = entries_total = cases_total = 0
    day, serial = first, 0
    while day <= last:
        entries, cases = _day_entries(rng, day, per_day, serial)
        serial += per_day
        tally = Tally(ZONE)
        for entry in entries:
            tally.fold(entry)
        async with redis.pipeline(transaction=False) as pipeline:
            pipe: Any = pipeline  # redis-py's stubs do not take a dict[str, str] for HSET
            write_tally(pipe, tally)
            for case in cases:
                opened_at = float(case["opened_at"])
                pipe.hset(keys.CASE(case["id"]), mapping=case)
                pipe.zadd(keys.CASES, {case["id"]: opened_at})
                pipe.zadd(keys.DEPT_CASES(case["department"]), {case["id"]: opened_at})
                if case["state"] != "closed":
                    pipe.sadd(keys.OPEN_CASES, case["id"])
            await pipe.execute()
        consultations += per_day
        entries_total += len(entries)
        cases_total += len(cases)
        day += dt.timedelta(days=1)
    return {"consultations": consultations, "log_entries": entries_total,
            "cases": cases_total, "generate_s": round(time.perf_counter() - started, 1)}


async def time_views(url: str, cookie: str, views: dict[str, dict[str, str]],
                     requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers={"Cookie": cookie}) as session:
        for name, params in views.items():
            times: list[float] = []
            consultations = 0
            for _ in range(requests):
                started = time.perf_counter()
                async with session.get(f"{url}/api/stats", params=params) as response:
                    body = await response.json()
                times.append((time.perf_counter() - started) * 1000)
                if response.status != 200:
                    raise RuntimeError(f"{name}: {response.status} {body}")
                consultations = body["totals"]["consultations"]
            out[name] = {"params": params, "requests": requests,
                         "p50_ms": round(percentile(times, 50), 1),
                         "p95_ms": round(percentile(times, 95), 1),
                         "max_ms": round(max(times), 1), "consultations": consultations}
    return out


async def measure(days: int, per_day: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="yunzhen-bench-stats-") as tmp:
        redis_server = EmbeddedRedis(Path(tmp), maxmemory_mb=2048)
        await redis_server.start()
        try:
            redis = aioredis.from_url(redis_server.url, decode_responses=True)
            last = dt.datetime.now(ZONE).date() - dt.timedelta(days=1)
            first = last - dt.timedelta(days=days - 1)
            generated = await generate(redis, first, last, per_day)
            memory = (await redis.info("memory"))["used_memory"]
            await redis.aclose()
            server = ServerProcess(["server", "serve", "--demo"], name="stats",
                                   env={"YUNZHEN_REDIS_URL": redis_server.url})
            await server.start()
            try:
                cookie = await login_cookie(server.url, "supervisor", "demo12345")
                month_start = (last.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
                month_end = last.replace(day=1) - dt.timedelta(days=1)
                views = {
                    "month_by_day": {"from": month_start.isoformat(),
                                     "to": month_end.isoformat(), "group": "day"},
                    "year_by_month": {"from": (last - dt.timedelta(days=364)).isoformat(),
                                      "to": last.isoformat(), "group": "month"},
                    "year_by_day": {"from": (last - dt.timedelta(days=364)).isoformat(),
                                    "to": last.isoformat(), "group": "day"},
                }
                await time_views(server.url, cookie, views, 3)  # warm-up
                timed = await time_views(server.url, cookie, views, requests)
            finally:
                await server.stop()
        finally:
            await redis_server.stop()
    return {
        "stats_view_ms_p95": {"month": timed["month_by_day"]["p95_ms"],
                              "year": timed["year_by_month"]["p95_ms"],
                              "year_by_day": timed["year_by_day"]["p95_ms"]},
        "consultations": generated["consultations"],
        "stats_detail": {
            "history": {**generated, "days": days, "first_day": first.isoformat(),
                        "last_day": last.isoformat(), "departments": len(DEPARTMENTS),
                        "halls": len(HALLS), "redis_used_memory_mb": round(memory / 2**20, 1)},
            "views": timed,
            "how": "history folded with Tally.fold + write_tally (the consumer's path) into a "
                   "redis-server; the server (python -m server serve --demo) on that Redis; "
                   "one supervisor client, sequential requests, after 3 warm-up requests each",
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=600)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    out = asyncio.run(measure(args.days, args.per_day, args.requests))
    merge_results("stats", out, path=args.out)
    print({k: out[k] for k in ("stats_view_ms_p95", "consultations")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
