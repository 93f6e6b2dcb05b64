"""Statistics: the pure fold of queue-log entries and the percentile merge, then the consumer
against a real Redis (each event kind, the cursor resumes, two processes never count twice) and
the real queue script's ENTER carrying the kiosk's hall."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo
from typing import Any

import redis.asyncio as aioredis

from signaling import keys
from signaling.stats import (
    WAIT_BOUNDS,
    WAIT_FIELDS,
    Cell,
    Tally,
    case_counts,
    empty_row,
    merge,
    percentile,
    view,
    wait_field,
)
from signaling.stats_store import StatsConsumer, StatsQuery, StatsReader
from signaling.store import Store

ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
# 2026-03-02 10:00 in Shanghai
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=ZONE).timestamp()
DAY = dt.date(2026, 3, 2)


def entry(event: str, ticket: str = "", department: str = "tax", detail: str = "",
          when: float = T0, **extra: str) -> dict[str, str]:
    return {"time": str(when), "event": event, "ticket": ticket, "department": department,
            "staff": "", "detail": detail, **extra}


def test_waits_fall_into_fixed_buckets() -> None:
    assert wait_field(0) == "w0"
    assert wait_field(5) == "w0"
    assert wait_field(5.1) == "w1"
    assert wait_field(10_000) == WAIT_FIELDS[-1]


def test_percentiles_of_merged_buckets_equal_those_of_all_waits_together() -> None:
    monday = {wait_field(s): 0 for s in (1,)}
    tuesday: dict[str, int] = {}
    for seconds in [3] * 50:
        monday[wait_field(seconds)] = monday.get(wait_field(seconds), 0) + 1
    for seconds in [100] * 50:
        tuesday[wait_field(seconds)] = tuesday.get(wait_field(seconds), 0) + 1
    row = empty_row()
    merge(row, monday)
    merge(row, {k: str(v) for k, v in tuesday.items()})  # Redis answers strings
    # Half waited 3 s (bucket 0–5), half 100 s (bucket 90–120): the median is the top of the
    # first half's bucket, the 90th percentile inside the second half's.
    assert percentile(row, 0.5) == 5.0
    p90 = percentile(row, 0.9)
    assert p90 is not None and 90 < p90 <= 120
    assert percentile(empty_row(), 0.5) is None
    over = {WAIT_FIELDS[-1]: 3}
    assert percentile(over, 0.9) == float(WAIT_BOUNDS[-1])


def test_every_event_kind_counts_where_its_ticket_entered() -> None:
    tally = Tally(ZONE)
    for item in (
        entry("ENTER", "t1", hall="东区大厅"),
        entry("CONNECT", "t1", detail="12.5", staff="tax01"),
        entry("INVITE", "t1", department="market"),
        entry("JOIN", "t1", department="market"),
        entry("JOIN", "t1", department="fund"),  # one 会商 per ticket
        entry("COMPLETE", "t1", detail="300.4"),
        entry("RATE", "t1", detail="2"),
        entry("RATE", "t1", department="market", detail="5"),
        entry("ENTER", "t2", hall="东区大厅"),
        entry("CANCEL", "t2"),
        entry("ENTER", "t3"),
        entry("ABANDON", "t3"),
        entry("ENTER", "t4"),
        entry("CONNECT", "t4", detail="1"),
        entry("ABANDON", "t4", detail="server process died"),
        entry("CALLBACK", department="tax", detail="abc 138****0000"),
        entry("RATE", "t1", detail="9"),  # not a score: ignored
        # The next day's events of a ticket still count on the day it entered.
        entry("COMPLETE", "t4", detail="60", when=T0 + 86400),
    ):
        tally.fold(item)
    hall = tally.counts[Cell("2026-03-02", "tax", "东区大厅")]
    assert hall == {"consultations": 2, "answered": 1, "w2": 1, "invites": 1, "joint": 1,
                    "completed": 1, "talk_s": 300, "r2": 1, "abandoned": 1}
    assert tally.counts[Cell("2026-03-02", "market", "东区大厅")] == {"r5": 1}
    anonymous = tally.counts[Cell("2026-03-02", "tax", "")]
    assert anonymous == {"consultations": 2, "abandoned": 1, "answered": 1, "w0": 1,
                         "dropped": 1, "callbacks": 1, "completed": 1, "talk_s": 60}
    assert tally.changed == {"t1", "t2", "t3", "t4"}


def test_the_view_defines_satisfaction_and_shares() -> None:
    row = empty_row()
    merge(row, {"consultations": 10, "joint": 2, "r5": 3, "r4": 1, "r2": 1, "r1": 1,
                "completed": 4, "talk_s": 400, "cases_opened": 2, "cases_closed": 2,
                "cases_on_time": 1})
    shown = view(row)
    assert shown["satisfaction"] == round(4 / 6, 4)
    assert shown["joint_share"] == 0.2
    assert shown["talk_avg_s"] == 100.0
    assert shown["cases_on_time_rate"] == 0.5
    assert view(empty_row())["satisfaction"] is None


def test_cases_count_open_overdue_and_on_time() -> None:
    today = dt.date(2026, 3, 20)
    late = (dt.datetime(2026, 3, 19, 9, tzinfo=ZONE)).timestamp()
    assert case_counts({"state": "opened", "due": "2026-03-19"}, today, ZONE)["cases_overdue"] == 1
    assert case_counts({"state": "answered", "due": "2026-03-20"}, today,
                       ZONE)["cases_overdue"] == 0
    closed = case_counts({"state": "closed", "due": "2026-03-18", "closed_at": str(late)},
                         today, ZONE)
    assert closed["cases_closed"] == 1 and closed["cases_on_time"] == 0
    on_time = case_counts({"state": "closed", "due": "2026-03-19", "closed_at": str(late)},
                          today, ZONE)
    assert on_time["cases_on_time"] == 1 and on_time["cases_open"] == 0


async def _log(client: aioredis.Redis, *items: dict[str, str]) -> None:
    redis: Any = client  # redis-py's stubs do not take a dict[str, str] for XADD
    for item in items:
        await redis.xadd(keys.LOG, item)


def _query(**kw: object) -> StatsQuery:
    base: dict[str, object] = {"start": DAY, "end": DAY, "group": "day", "departments": None,
                               "hall": None}
    base.update(kw)
    return StatsQuery(**base)  # type: ignore[arg-type]


async def test_the_consumer_resumes_from_its_cursor(redis_client: aioredis.Redis) -> None:
    consumer = StatsConsumer(redis_client, ZONE, batch=2)
    await _log(redis_client, entry("ENTER", "t1", hall="东区"), entry("ENTER", "t2", hall="东区"),
               entry("CONNECT", "t1", detail="40"))
    assert await consumer.catch_up() == 3
    assert await consumer.catch_up() == 0  # nothing new: nothing counted again
    await _log(redis_client, entry("CONNECT", "t2", detail="200"), entry("COMPLETE", "t1",
                                                                         detail="90"))
    # Another process (after this one stopped) goes on from the cursor in Redis.
    await consumer.release()
    assert await StatsConsumer(redis_client, ZONE).catch_up() == 2
    day = await redis_client.hgetall(keys.STATS_DAY("2026-03-02", "tax", "东区"))
    assert day["consultations"] == "2" and day["answered"] == "2" and day["talk_s"] == "90"
    month = await redis_client.hgetall(keys.STATS_MONTH("2026-03", "tax", "东区"))
    assert month == day
    assert await redis_client.ttl(keys.STATS_DAY("2026-03-02", "tax", "东区")) > 400 * 86400
    summary = await StatsReader(redis_client, ZONE).summary(_query())
    assert summary["totals"]["consultations"] == 2
    assert summary["totals"]["wait_p50_s"] is not None


async def test_two_processes_never_count_an_entry_twice(redis_url: str,
                                                        redis_client: aioredis.Redis) -> None:
    await _log(redis_client, *[entry("ENTER", f"t{n}") for n in range(500)])
    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    try:
        # Both step at once, without the lock: WATCH on the cursor lets one batch win.
        first, second = (StatsConsumer(c, ZONE, batch=50) for c in clients)
        counted = 0
        for _ in range(30):
            counted += sum(await asyncio.gather(first.step(), second.step()))
        assert counted == 500
        # With the lock, only one of two catching up does the work.
        await _log(redis_client, *[entry("ENTER", f"u{n}") for n in range(100)])
        done = await asyncio.gather(first.catch_up(), second.catch_up())
        assert sorted(done) == [0, 100]
    finally:
        for client in clients:
            await client.aclose()
    day = await redis_client.hgetall(keys.STATS_DAY("2026-03-02", "tax", ""))
    assert day["consultations"] == "600"


async def test_the_reader_filters_groups_and_reads_whole_months(
        redis_client: aioredis.Redis) -> None:
    march = [entry("ENTER", f"m{n}", department="tax" if n % 2 else "market",
                   when=T0 + n * 86400, hall="东区" if n % 3 else "西区") for n in range(31)]
    await _log(redis_client, *march)
    await StatsConsumer(redis_client, ZONE).catch_up()
    reader = StatsReader(redis_client, ZONE)
    whole = await reader.summary(_query(start=dt.date(2026, 3, 1), end=dt.date(2026, 4, 30),
                                        group="month"))
    assert [r["period"] for r in whole["rows"]] == ["2026-03", "2026-04"]
    assert [r["consultations"] for r in whole["rows"]] == [30, 1]
    weeks = await reader.summary(_query(start=dt.date(2026, 3, 2), end=dt.date(2026, 3, 8),
                                        group="week", departments=frozenset({"tax"})))
    assert [r["period"] for r in weeks["rows"]] == ["2026-W10"]
    assert weeks["totals"]["consultations"] == 3  # days 1, 3, 5 of the week
    west = await reader.summary(_query(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31),
                                       hall="西区"))
    assert west["totals"]["consultations"] == 10
    assert west["hall_names"] == ["东区", "西区"]


async def test_cases_in_the_range_are_counted(redis_client: aioredis.Redis) -> None:
    opened = T0 + 3600
    await redis_client.hset(keys.CASE("c1"), mapping={
        "id": "c1", "ticket_id": "t1", "room_id": "r1", "department": "tax", "hall": "东区",
        "score": "2", "opened_at": str(opened), "due": "2026-03-20", "state": "verified",
        "closed_at": ""})
    await redis_client.zadd(keys.CASES, {"c1": opened})
    reader = StatsReader(redis_client, ZONE, now=lambda: T0 + 30 * 86400)
    summary = await reader.summary(_query())
    assert summary["totals"]["cases_opened"] == 1
    assert summary["totals"]["cases_overdue"] == 1
    other = await reader.summary(_query(departments=frozenset({"market"})))
    assert other["totals"]["cases_opened"] == 0
    assert (await reader.summary(_query(hall="西区")))["totals"]["cases_opened"] == 0
    east = await reader.summary(_query(hall="东区", departments=frozenset({"tax", "fund"})))
    assert east["totals"]["cases_open"] == 1


async def test_the_queue_script_logs_the_kiosks_hall_with_enter(store: Store) -> None:
    await store.redis.hset(keys.DEVICE("d1"), mapping={"device_id": "d1", "hall": "东区大厅"})
    await store.create_ticket("tax", T0, consent_version="v1", device="d1", hall="东区大厅")
    await store.create_ticket("tax", T0, consent_version="v1")
    entries = [fields for _, fields in await store.redis.xrange(keys.LOG)
               if fields["event"] == "ENTER"]
    assert [e.get("hall") for e in entries] == ["东区大厅", ""]
    await StatsConsumer(store.redis, ZONE).catch_up()
    assert await store.redis.hget(keys.STATS_DAY("2026-03-02", "tax", "东区大厅"),
                                  "consultations") == "1"


async def test_sums_split_over_several_script_calls_add_up_the_same(
        redis_client: aioredis.Redis, monkeypatch: Any) -> None:
    import signaling.stats_store as stats_store

    await _log(redis_client, *[entry("ENTER", f"s{n}", department=("tax", "fund")[n % 2],
                                     when=T0 + n * 3 * 3600, hall=("东区", "西区", "")[n % 3])
                               for n in range(40)])
    await StatsConsumer(redis_client, ZONE).catch_up()
    query = _query(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 10))
    whole = await StatsReader(redis_client, ZONE).summary(query)
    monkeypatch.setattr(stats_store, "SUM_CHUNK", 2)
    split = await StatsReader(redis_client, ZONE).summary(query)
    assert split == whole
    assert whole["totals"]["consultations"] == 40
    assert sum(d["consultations"] for d in whole["departments"]) == 40
    assert sum(h["consultations"] for h in whole["halls"]) == 40
