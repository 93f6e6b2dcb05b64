"""rooms._native.RemoteBitrateEstimator against aiortc's own, side by side on the same arrivals:
the same REMB (bit rate and SSRCs) after every packet, or None from both."""

from __future__ import annotations

import itertools
import random

import pytest
from aiortc.rate import RemoteBitrateEstimator as PythonEstimator
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms._native import RemoteBitrateEstimator as NativeEstimator

# abs-send-time: 6.18 fixed-point seconds, 24 bits.
UNITS_PER_MS = (1 << 18) / 1000


def same_estimates(arrivals: list[tuple[int, int, int, int]]) -> list[tuple[int, list[int]]]:
    """Feed both estimators; assert equal answers throughout; return the REMBs."""
    python, native = PythonEstimator(), NativeEstimator()
    rembs = []
    for index, (arrival_ms, abs_send_time, size, ssrc) in enumerate(arrivals):
        expected = python.add(arrival_time_ms=arrival_ms, abs_send_time=abs_send_time,
                              payload_size=size, ssrc=ssrc)
        got = native.add(arrival_ms, abs_send_time, size, ssrc)
        assert got == expected, f"packet {index}: {arrivals[index]}"
        if got is not None:
            rembs.append(got)
    return rembs


def call(frames: int, *, start_ms: int, bitrate_of: object, queue_of: object,
         seed: int) -> list[tuple[int, int, int, int]]:
    """A 30 fps video stream: each frame's packets sent 1 ms apart, arriving after a queueing
    delay ``queue_of(frame)`` ms, at ``bitrate_of(frame)`` bit/s in 1,200-byte packets."""
    rng = random.Random(seed)
    arrivals = []
    for frame in range(frames):
        sent_ms = frame * 1000 / 30
        size = int(bitrate_of(frame) / 8 / 30)  # type: ignore[operator]
        for packet in range(max(1, -(-size // 1200))):
            send = sent_ms + packet
            arrive = start_ms + send + queue_of(frame) + rng.uniform(0, 2)  # type: ignore[operator]
            abs_send_time = int(send * UNITS_PER_MS) & 0xFFFFFF
            arrivals.append((int(arrive), abs_send_time, min(1200, size - packet * 1200) or 1,
                             0x1234))
    return arrivals


def test_a_steady_call_gets_the_same_rembs_rising_from_the_start() -> None:
    arrivals = call(900, start_ms=3_900_000_000_000, bitrate_of=lambda f: 1_200_000,
                    queue_of=lambda f: 20, seed=1)
    rembs = same_estimates(arrivals)
    assert len(rembs) > 40 and all(ssrcs == [0x1234] for _, ssrcs in rembs)


def test_a_congested_call_gets_the_same_cut_and_recovery() -> None:
    # The queue grows by 2 ms a frame for 3 s (overuse), drains, and the call goes on.
    def queue(frame: int) -> float:
        return 20 + 2 * min(max(frame - 300, 0), 90) if frame < 390 else 20

    arrivals = call(1200, start_ms=3_900_000_000_000, bitrate_of=lambda f: 2_500_000,
                    queue_of=queue, seed=2)
    rates = [rate for rate, _ in same_estimates(arrivals)]
    # The delay trend was seen: the estimate was cut by more than 10 % at once, and rose again.
    assert any(after < 0.9 * before for before, after in itertools.pairwise(rates))
    assert rates[-1] > min(rates)


def test_a_wrapping_send_clock_and_silence_give_the_same_rembs() -> None:
    # The 24-bit send clock wraps every 64 s; a long pause empties the bit rate window.
    before = call(300, start_ms=1_000, bitrate_of=lambda f: 800_000, queue_of=lambda f: 5,
                  seed=3)
    shift = int(63_995 * UNITS_PER_MS)
    before = [(a, (t + shift) & 0xFFFFFF, s, ssrc) for a, t, s, ssrc in before]
    after = [(a + 200_000, (t + 7_000_000) & 0xFFFFFF, s, 0x5678)
             for a, t, s, _ in call(300, start_ms=1_000, bitrate_of=lambda f: 800_000,
                                    queue_of=lambda f: 5, seed=4)]
    rembs = same_estimates(before + after)
    assert rembs[-1][1] == [0x1234, 0x5678]


arrival = st.tuples(st.integers(0, 60) | st.integers(0, 5_000),  # ms since the last packet
                    st.integers(0, 200_000) | st.integers(0, 0xFFFFFF),  # send clock step
                    st.integers(1, 1500),  # payload size
                    st.sampled_from([1, 2, 0xFFFFFFFF]))  # SSRC


@settings(max_examples=150, deadline=None)
@given(st.lists(arrival, min_size=1, max_size=400))
def test_any_arrivals_get_the_same_answers(steps: list[tuple[int, int, int, int]]) -> None:
    arrivals, now, clock = [], 1_000_000, 0
    for gap, send_step, size, ssrc in steps:
        now += gap
        clock = (clock + send_step) & 0xFFFFFF
        arrivals.append((now, clock, size, ssrc))
    same_estimates(arrivals)


def test_it_takes_aiortcs_keywords_and_refuses_what_aiortc_could_not_send() -> None:
    native = NativeEstimator()
    assert native.add(arrival_time_ms=5, abs_send_time=1, payload_size=100, ssrc=7) is None
    with pytest.raises(TypeError, match="missing argument 'ssrc'"):
        native.add(5, 1, 100)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected or repeated argument 'size'"):
        native.add(5, 1, 100, size=7)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="24 bits"):
        native.add(5, 1 << 24, 100, 7)
    with pytest.raises(TypeError):
        NativeEstimator(1)  # type: ignore[call-arg]
