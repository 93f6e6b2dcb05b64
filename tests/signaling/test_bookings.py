"""Appointments (预约): slots from service hours, a holiday, closed days and the capacity; booking
under concurrency never overbooks; the arrival window and every refusal; a booking made at 9:58
for 10:00 goes ahead of two walk-ins already waiting (behind the priority lane); no-shows
released after the window; the admin's rules checked and audited. Real Redis, a fake clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo

import pytest
import redis.asyncio as aioredis

from recordings.audit import AUDIT, Audit
from rooms.config import ConfigError
from signaling import keys
from signaling.bookings import Booking, Bookings, BookingStatus, mask_name
from signaling.config import SignalingConfig
from signaling.departments import Department
from signaling.errors import SignalError
from signaling.slots import Arrival, BookingRules, arrival, build_slots
from signaling.store import Store
from signaling.workdays import WorkCalendar
from tests.support.streams import stream_entries

ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
CONSENT = "2026-12-01"
HOURS = {"mon-fri": ["09:00-12:00", "13:30-17:00"]}


def at(day: str, clock: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{clock}:00").replace(tzinfo=ZONE)


def dept(**extra: object) -> Department:
    return Department.from_dict({"id": "tax", "name_zh": "税务", "name_en": "Tax",
                                 "prefix": "税", "hours": HOURS, **extra})


# slots (pure) -----------------------------------------------------------------------------------
def test_slots_fill_each_open_span_on_working_days_only() -> None:
    rules = BookingRules(slot_minutes=30, capacity=2, days_ahead=1)
    # Thursday 2026-12-03 08:00: today and Friday.
    slots = build_slots(dept(), rules, WorkCalendar(), at("2026-12-03", "08:00"))
    today = [s for s in slots if s.start.date() == dt.date(2026, 12, 3)]
    assert [s.start.strftime("%H:%M") for s in today] == [
        "09:00", "09:30", "10:00", "10:30", "11:00", "11:30",
        "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30"]
    assert len(slots) == 26 and all(s.end - s.start == dt.timedelta(minutes=30) for s in slots)


def test_a_slot_that_does_not_fit_the_span_whole_or_has_started_is_not_offered() -> None:
    rules = BookingRules(slot_minutes=45, capacity=1, days_ahead=1)
    slots = build_slots(dept(), rules, WorkCalendar(), at("2026-12-03", "10:00"))
    today = [s.start.strftime("%H:%M") for s in slots if s.start.day == 3]
    # 09:00 and 09:45 started; 11:15-12:00 fits; 16:15-17:00 fits too (13:30 + 4 × 45 min).
    assert today == ["10:30", "11:15", "13:30", "14:15", "15:00", "15:45"]


def test_public_holidays_closed_days_and_no_capacity_have_no_slots() -> None:
    rules = BookingRules(slot_minutes=60, capacity=3, days_ahead=0)
    # 2026-10-01 (国庆节) is a Thursday and a public holiday.
    assert build_slots(dept(), rules, WorkCalendar(), at("2026-10-01", "07:00")) == []
    # A local holiday from the settings, and the department's own closed day.
    assert build_slots(dept(), rules, WorkCalendar(extra_holidays=[dt.date(2026, 12, 3)]),
                       at("2026-12-03", "07:00")) == []
    assert build_slots(dept(closed_days=["2026-12-03"]), rules, WorkCalendar(),
                       at("2026-12-03", "07:00")) == []
    assert build_slots(dept(), BookingRules(capacity=0), WorkCalendar(),
                       at("2026-12-03", "07:00")) == []
    # Saturday is not a working day; an ordinary Thursday has its six hours.
    assert build_slots(dept(), rules, WorkCalendar(), at("2026-12-05", "07:00")) == []
    assert len(build_slots(dept(), rules, WorkCalendar(), at("2026-12-03", "07:00"))) == 6


def test_the_arrival_window_runs_from_early_to_late_minutes_around_the_start() -> None:
    rules = BookingRules(capacity=1, early_minutes=10, late_minutes=15)
    start = at("2026-12-03", "10:00").timestamp()
    assert arrival(start, start - 601, rules) == Arrival.EARLY
    assert arrival(start, start - 600, rules) == Arrival.ON_TIME
    assert arrival(start, start + 900, rules) == Arrival.ON_TIME
    assert arrival(start, start + 901, rules) == Arrival.LATE


def test_rules_check_themselves() -> None:
    with pytest.raises(ConfigError, match="slot_minutes"):
        BookingRules(slot_minutes=2)
    with pytest.raises(ConfigError, match="capacity"):
        BookingRules.from_dict({"capacity": -1})
    with pytest.raises(ConfigError, match="unknown"):
        BookingRules.from_dict({"seats": 3})
    assert mask_name("张三丰") == "张**"


# the store, with a fake clock ---------------------------------------------------------------------
class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: dt.datetime) -> None:
        self.now = moment.timestamp()


@pytest.fixture
async def setup(store: Store, redis_client: aioredis.Redis
                ) -> tuple[Bookings, Clock, Store, Audit]:
    await store.put_department(dept())
    clock = Clock(at("2026-12-03", "09:50"))
    audit = Audit(redis_client, b"k" * 32)
    bookings = Bookings(redis_client, store, SignalingConfig(), audit, now=clock)
    await bookings.set_rules("admin", "tax", {"slot_minutes": 30, "capacity": 3,
                                              "days_ahead": 2})
    return bookings, clock, store, audit


async def test_concurrent_bookings_never_exceed_the_capacity(
        setup: tuple[Bookings, Clock, Store, Audit]) -> None:
    bookings, _, _, _ = setup
    start = int(at("2026-12-03", "10:00").timestamp())
    results = await asyncio.gather(
        *[bookings.book("tax", start, f"申请人{i}", f"1380000{i:04d}", CONSENT)
          for i in range(20)], return_exceptions=True)
    booked = [r for r in results if isinstance(r, Booking)]
    refused = [r for r in results if isinstance(r, SignalError)]
    assert len(booked) == 3 and len(refused) == 17
    assert {e.code for e in refused} == {"booking_full"}
    assert len({b.code for b in booked}) == 3
    slots = {s["start"]: s for s in await bookings.slots("tax")}
    assert slots[start]["free"] == 0 and slots[start + 1800]["free"] == 3
    assert len(await bookings.day(dt.date(2026, 12, 3))) == 3


async def test_slots_not_offered_are_refused(setup: tuple[Bookings, Clock, Store, Audit]) -> None:
    bookings, _, _, _ = setup
    for start in (at("2026-12-03", "09:30"),   # started
                  at("2026-12-03", "10:10"),   # not a slot boundary
                  at("2026-12-03", "12:30"),   # lunch break
                  at("2026-12-09", "10:00")):  # beyond days_ahead
        with pytest.raises(SignalError) as refused:
            await bookings.book("tax", int(start.timestamp()), "张三", "13800001111", CONSENT)
        assert refused.value.code == "booking_slot"
    with pytest.raises(SignalError) as unknown:
        await bookings.book("mars", int(at("2026-12-03", "10:00").timestamp()), "张三",
                            "13800001111", CONSENT)
    assert unknown.value.code == "unknown_department"


async def test_arrival_refusals_unknown_early_late_and_used(
        setup: tuple[Bookings, Clock, Store, Audit]) -> None:
    bookings, clock, store, _ = setup
    booking = await bookings.book("tax", int(at("2026-12-03", "11:00").timestamp()), "张三",
                                  "13800001111", CONSENT)
    with pytest.raises(SignalError) as unknown:
        await bookings.for_arrival("NOSUCHCD")
    assert unknown.value.code == "booking_unknown"
    with pytest.raises(SignalError) as early:
        await bookings.for_arrival(booking.code)
    assert early.value.code == "booking_early" and "10:50" in early.value.message
    clock.set(at("2026-12-03", "11:16"))
    with pytest.raises(SignalError) as late:
        await bookings.for_arrival(booking.code.lower())
    assert late.value.code == "booking_late"
    clock.set(at("2026-12-03", "10:51"))
    assert (await bookings.for_arrival(booking.code.lower())).code == booking.code
    code, ticket, _, _ = await store.create_ticket("tax", clock.now, consent_version=CONSENT,
                                                   booking=booking.code)
    assert code == "ok" and ticket is not None
    with pytest.raises(SignalError) as used:
        await bookings.for_arrival(booking.code)
    assert used.value.code == "booking_used"
    # The script refuses a second use even when the check above raced it.
    again = await store.create_ticket("tax", clock.now, consent_version=CONSENT,
                                      booking=booking.code)
    assert again.code == "booking_used"


async def test_a_booking_made_at_958_for_1000_goes_ahead_of_two_walk_ins(
        setup: tuple[Bookings, Clock, Store, Audit]) -> None:
    bookings, clock, store, _ = setup
    clock.set(at("2026-12-03", "09:50"))
    walk_ins = [await store.create_ticket("tax", clock.now + i, consent_version=CONSENT)
                for i in range(2)]
    clock.set(at("2026-12-03", "09:58"))
    booking = await bookings.book("tax", int(at("2026-12-03", "10:00").timestamp()), "李四",
                                  "13912345678", CONSENT)
    arrived = await bookings.for_arrival(booking.code)
    code, booked, _, _ = await store.create_ticket("tax", clock.now, consent_version=CONSENT,
                                                   booking=arrived.code)
    assert code == "ok" and booked is not None and booked.number == "税Y001"
    # A hall guide's priority ticket taken after it still comes first.
    _, urgent, _, _ = await store.create_ticket("tax", clock.now + 1, consent_version=CONSENT,
                                                priority=True)
    assert urgent is not None
    order = await store.waiting("tax")
    assert order == [urgent.ticket_id, booked.ticket_id,
                     *[t.ticket.ticket_id for t in walk_ins if t.ticket]]
    assert await store.position(booked) == 2
    done = await bookings.get(booking.code)
    assert done is not None and done.status == BookingStatus.ARRIVED
    assert done.ticket_id == booked.ticket_id


async def test_no_shows_are_released_after_the_window(
        setup: tuple[Bookings, Clock, Store, Audit], redis_client: aioredis.Redis) -> None:
    bookings, clock, store, _ = setup
    start = int(at("2026-12-03", "10:00").timestamp())
    absent = await bookings.book("tax", start, "王五", "13700000000", CONSENT)
    present = await bookings.book("tax", start, "赵六", "13600000000", CONSENT)
    clock.set(at("2026-12-03", "10:05"))
    await store.create_ticket("tax", clock.now, consent_version=CONSENT, booking=present.code)
    clock.set(at("2026-12-03", "10:14"))
    assert await bookings.release_no_shows() == 0  # still inside the window
    clock.set(at("2026-12-03", "10:16"))
    assert await bookings.release_no_shows() == 1
    assert await bookings.release_no_shows() == 0
    released = await bookings.get(absent.code)
    assert released is not None and released.status == BookingStatus.NO_SHOW
    arrived = await bookings.get(present.code)
    assert arrived is not None and arrived.status == BookingStatus.ARRIVED
    # The no-show's place is given back; the arrived one keeps it.
    assert await redis_client.smembers(keys.BOOKING_SLOT("tax", str(start))) == {present.code}
    with pytest.raises(SignalError) as used:
        await bookings.for_arrival(absent.code)
    assert used.value.code == "booking_used"


async def test_rules_changes_are_checked_and_audited(
        setup: tuple[Bookings, Clock, Store, Audit], redis_client: aioredis.Redis) -> None:
    bookings, _, _, _ = setup
    with pytest.raises(SignalError) as bad:
        await bookings.set_rules("admin", "tax", {"capacity": 500})
    assert bad.value.code == "invalid_payload" and "capacity" in bad.value.message
    rules = await bookings.set_rules("admin", "tax", {"capacity": 5}, remote="10.0.0.9")
    assert rules.capacity == 5 and rules.slot_minutes == 30
    changes = [e for e in await stream_entries(redis_client, AUDIT)
               if e["action"] == "booking_rules"]
    assert len(changes) == 2
    assert '"capacity": 3' in changes[-1]["before"] and '"capacity": 5' in changes[-1]["after"]
    assert changes[-1]["remote"] == "10.0.0.9" and changes[-1]["department"] == "tax"
    # The desks' list: today's bookings still to come, masked.
    await bookings.book("tax", int(at("2026-12-03", "14:00").timestamp()), "钱七",
                        "13512345678", CONSENT)
    upcoming = [b.view(ZONE) for b in await bookings.upcoming(["tax"])]
    assert [(v["time"], v["name"], v["phone"]) for v in upcoming] == [
        ("14:00", "钱*", "135****5678")]
    assert await bookings.upcoming(["market"]) == []
