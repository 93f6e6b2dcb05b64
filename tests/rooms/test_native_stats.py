"""rooms._native.StreamStatistics and NackGenerator against aiortc's, side by side on the same
packets at the same times: the same figures for receiver reports and getStats after every
packet, and the same missing sequence numbers for NACKs."""

from __future__ import annotations

import pytest
from aiortc import rtcrtpreceiver
from aiortc.rtp import RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms._native import NackGenerator, StreamStatistics

Arrival = tuple[int, int, float]  # sequence number, timestamp, Unix seconds


def _figures(statistics: object) -> tuple[object, ...]:
    names = ("base_seq", "max_seq", "cycles", "packets_received", "jitter",
             "packets_expected", "packets_lost")
    return tuple(getattr(statistics, name) for name in names)


def same_statistics(arrivals: list[Arrival], clockrate: int, monkeypatch: pytest.MonkeyPatch,
                    report_every: int = 7) -> StreamStatistics:
    """Feed both; assert equal figures after every packet (and fraction_lost, read as the
    receiver reports read it, every ``report_every`` packets); return the native one."""
    python, native = rtcrtpreceiver.StreamStatistics(clockrate), StreamStatistics(clockrate)
    for index, (sequence, timestamp, now) in enumerate(arrivals):
        packet = RtpPacket(sequence_number=sequence, timestamp=timestamp)
        with monkeypatch.context() as patch:
            patch.setattr(rtcrtpreceiver.time, "time", lambda now=now: now)
            python.add(packet)
        native.add(packet, now)
        assert _figures(native) == _figures(python), (index, arrivals[index])
        if index % report_every == report_every - 1:
            assert native.fraction_lost == python.fraction_lost, index
    return native


def same_nacks(sequences: list[int]) -> NackGenerator:
    python, native = rtcrtpreceiver.NackGenerator(), NackGenerator()
    for index, sequence in enumerate(sequences):
        packet = RtpPacket(sequence_number=sequence)
        assert native.add(packet) is python.add(packet), (index, sequence)
        assert native.missing == python.missing and native.max_seq == python.max_seq, index
    return native


def test_a_steady_stream_across_the_wrap_has_its_jitter_and_no_loss(
        monkeypatch: pytest.MonkeyPatch) -> None:
    arrivals = [((65_000 + i) & 0xFFFF, 3000 * (i // 4), 1_796_400_000.0 + i / 120
                 + (0.004 if i % 9 == 0 else 0.0)) for i in range(1200)]
    native = same_statistics(arrivals, 90_000, monkeypatch)
    assert native.cycles == 1 << 16 and native.packets_lost == 0 and native.jitter > 0


def test_loss_and_reordering_give_the_same_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    sequences = [s for s in range(400) if s % 13 != 5]
    sequences[50], sequences[52] = sequences[52], sequences[50]
    sequences += [5, 18]  # late arrivals of lost packets
    arrivals = [(s, 960 * s, 1000.0 + i * 0.02) for i, s in enumerate(sequences)]
    native = same_statistics(arrivals, 48_000, monkeypatch, report_every=25)
    assert native.packets_lost > 0


def test_nacks_name_the_same_missing_packets_and_forget_the_old() -> None:
    native = same_nacks([10, 11, 15, 12, 16, 200, 14, 13, 65_530, 3, 65_534, 400])
    assert native.missing and all(isinstance(s, int) for s in native.missing)
    assert same_nacks([65_535, 2, 0, 1]).missing == set()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
                          st.floats(0, 3000, allow_nan=False)), min_size=1, max_size=60),
       st.sampled_from([8000, 48_000, 90_000]))
def test_any_arrivals_give_the_same_figures(arrivals: list[Arrival], clockrate: int) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        same_statistics(arrivals, clockrate, monkeypatch, report_every=3)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 0xFFFF), st.integers(0, 300)), max_size=80))
def test_any_sequence_numbers_give_the_same_nacks(sequences: list[int]) -> None:
    same_nacks(sequences)


def test_figures_before_any_packet_refuse_as_aiortcs_do() -> None:
    native = StreamStatistics(90_000)
    assert native.max_seq is None and native.base_seq is None and native.packets_received == 0
    with pytest.raises(TypeError):
        native.packets_lost  # noqa: B018
    with pytest.raises(TypeError):
        native.fraction_lost  # noqa: B018
    with pytest.raises(TypeError):
        NackGenerator(5)  # type: ignore[call-arg]
