"""rooms._native.JitterBuffer and vp8_depayload against aiortc's, side by side on the same
packets: the same PLI flags and frames (data and timestamp) after every packet, the same
payloads or the same refusals."""

from __future__ import annotations

import inspect

import pytest
from aiortc.codecs.vpx import vp8_depayload as python_vp8_depayload
from aiortc.jitterbuffer import JitterBuffer as PythonBuffer
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms._native import JitterBuffer as NativeBuffer
from rooms._native import vp8_depayload


def packet(sequence: int, timestamp: int, data: bytes) -> RtpPacket:
    made = RtpPacket(sequence_number=sequence, timestamp=timestamp)
    made._data = data  # type: ignore[attr-defined]
    return made


def same_frames(kwargs: dict[str, int | bool],
                packets: list[tuple[int, int, bytes]]) -> list[tuple[bool, bytes, int]]:
    """Feed both buffers; assert equal answers throughout; return the frames and PLIs."""
    python, native = PythonBuffer(**kwargs), NativeBuffer(**kwargs)  # type: ignore[arg-type]
    out = []
    for index, (sequence, timestamp, data) in enumerate(packets):
        expected_pli, expected = python.add(packet(sequence, timestamp, data))
        got_pli, got = native.add(packet(sequence, timestamp, data))
        where = f"packet {index}: {packets[index][:2]}"
        assert got_pli is expected_pli, where
        if expected is None:
            assert got is None, where
            continue
        assert isinstance(got, JitterFrame), where
        assert (got.data, got.timestamp) == (expected.data, expected.timestamp), where
        out.append((got_pli, got.data, got.timestamp))
    return out


AUDIO = {"capacity": 16, "prefetch": 4}
VIDEO = {"capacity": 512, "is_video": True}
SMALL_VIDEO = {"capacity": 8, "is_video": True}


def video_stream(frames: int, per_frame: int, start: int = 65_500) -> list[tuple[int, int, bytes]]:
    return [((start + f * per_frame + p) & 0xFFFF, (f * 3000) & 0xFFFFFFFF, bytes([f % 256, p]))
            for f in range(frames) for p in range(per_frame)]


def test_in_order_video_across_the_sequence_wrap_gives_every_frame_but_the_last() -> None:
    frames = same_frames(VIDEO, video_stream(40, 5))
    assert [timestamp for _, _, timestamp in frames] == [f * 3000 for f in range(39)]
    assert frames[0][1] == b"".join(bytes([0, p]) for p in range(5))


def test_loss_reordering_and_a_jump_give_the_same_frames_and_plis() -> None:
    stream = video_stream(30, 4)
    del stream[17]                    # a lost packet holds its frame back
    stream[40], stream[41] = stream[41], stream[40]  # a swapped pair
    stream += [((s + 5000) & 0xFFFF, t + 900_000, d) for s, t, d in video_stream(10, 4)]
    stream.insert(60, stream[20])     # a late duplicate
    frames = same_frames(SMALL_VIDEO, stream)
    assert any(pli for pli, _, _ in frames) and frames


def test_audio_waits_for_four_frames_ahead() -> None:
    packets = [(s, s * 960, bytes([s])) for s in range(10)]
    assert [timestamp for _, _, timestamp in same_frames(AUDIO, packets)] == [
        s * 960 for s in range(6)]


step = st.tuples(st.integers(-120, 700) | st.sampled_from([1, 1, 1, 0, 2]),  # sequence step
                 st.integers(0, 3),  # how many frames the timestamp moves on
                 st.binary(max_size=3))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([AUDIO, VIDEO, SMALL_VIDEO]), st.integers(0, 0xFFFF),
       st.lists(step, min_size=1, max_size=300))
def test_any_packets_get_the_same_answers(kwargs: dict[str, int | bool], first: int,
                                          steps: list[tuple[int, int, bytes]]) -> None:
    packets, sequence, timestamp = [], first, 0xFFFFF000
    for sequence_step, frames, data in steps:
        sequence = (sequence + sequence_step) & 0xFFFF
        timestamp = (timestamp + frames * 3000) & 0xFFFFFFFF
        packets.append((sequence, timestamp, data))
    same_frames(kwargs, packets)


@given(st.binary(max_size=8))
def test_vp8_depayload_gives_the_same_payload_or_refusal(payload: bytes) -> None:
    try:
        expected = python_vp8_depayload(payload)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)):
            vp8_depayload(payload)
    else:
        assert vp8_depayload(payload) == expected


def test_it_refuses_what_aiortc_would_never_hand_it() -> None:
    with pytest.raises(ValueError, match="power of 2"):
        NativeBuffer(capacity=12)
    buffer = NativeBuffer(capacity=16)
    with pytest.raises(ValueError, match="sequence_number out of range"):
        buffer.add(packet(70_000, 0, b""))
    with pytest.raises(TypeError, match="_data must be bytes"):
        buffer.add(packet(1, 0, "text"))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        buffer.add(RtpPacket(sequence_number=1))  # no payload depacketized
    with pytest.raises(TypeError, match="takes bytes"):
        vp8_depayload(bytearray(b"\x10"))  # type: ignore[arg-type]


def test_frames_are_made_as_aiortcs_init_makes_them() -> None:
    # jitter.c sets the two attributes JitterFrame.__init__ sets, without calling it.
    lines = [line.strip() for line in inspect.getsource(JitterFrame.__init__).splitlines()[1:]]
    assert [line for line in lines if line] == ["self.data = data", "self.timestamp = timestamp"]
    buffer = NativeBuffer(capacity=16)
    buffer.add(packet(1, 0, b"a"))
    _, frame = buffer.add(packet(2, 3000, b"b"))
    assert type(frame) is JitterFrame and vars(frame) == {"data": b"a", "timestamp": 0}
