"""The pure rules of RTP-level forwarding: sequence/timestamp rewriting, keyframe starts, the
packets' bytes (read back with aiortc's own parser) and the NACK cache."""

from __future__ import annotations

import datetime

import pytest
from aiortc import clock
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from rooms._native import REORDER_WINDOW, RTP_CACHE, LegWriter
from rooms.rtp_forward import (
    extension_headers,
    h264_starts_keyframe,
    vp8_starts_keyframe,
)
from tests.support.recordings import encoded_vp8


def test_rewriter_keeps_gaps_and_order_of_one_source() -> None:
    r = LegWriter(1000, 50_000, 0)
    assert r.rewrite(7, 65_534, 4_294_967_000, 0.0, 90_000) == (1000, 50_000)
    assert r.rewrite(7, 65_535, 4_294_967_000, 0.01, 90_000) == (1001, 50_000)
    # Across the input's wrap, with a gap (the subscriber sees the loss and can NACK it).
    assert r.rewrite(7, 2, 3000 - 296, 0.02, 90_000) == (1004, 53_000)
    # A late packet within the window still goes out with its own number.
    assert r.rewrite(7, 0, 2704, 0.03, 90_000) == (1002, 53_000)


def test_rewriter_refuses_packets_from_before_the_first_and_far_too_late() -> None:
    r = LegWriter(10, 0, 0)
    assert r.rewrite(1, 500, 0, 0.0, 48_000) == (10, 0)
    assert r.rewrite(1, 499, 0, 0.0, 48_000) is None
    for seq in range(501, 501 + REORDER_WINDOW + 5):
        r.rewrite(1, seq, 0, 0.0, 48_000)
    assert r.rewrite(1, 501, 0, 0.0, 48_000) is None


def test_rewriter_continues_across_a_new_source_and_never_goes_back() -> None:
    r = LegWriter(65_535, 4_294_967_200, 0)
    assert r.rewrite(1, 100, 9000, 10.0, 90_000) == (65_535, 4_294_967_200)
    assert r.rewrite(1, 101, 12_000, 10.25, 90_000) == (0, 2904)
    # A track replaced: a new SSRC with its own numbering goes on from 1, timestamp by wall clock.
    assert r.rewrite(2, 40_000, 777, 10.75, 90_000) == (1, 2904 + 45_000)
    assert r.rewrite(2, 40_001, 3777, 10.8, 90_000) == (2, 2904 + 48_000)
    # A late retransmission of the old source does not switch back.
    assert r.rewrite(1, 99, 6000, 10.6, 90_000) is None


def test_vp8_keyframe_start_is_found_in_rtp_payloads() -> None:
    frames = encoded_vp8(2, 64, 48)
    encoder = Vp8Encoder()
    key = encoder._packetize(frames[0], 5)
    delta = encoder._packetize(frames[1], 6)
    # With a 15-bit picture id (aiortc), a 7-bit one, and without any.
    long_id = encoder._packetize(frames[0], 300)
    assert vp8_starts_keyframe(key[0]) and vp8_starts_keyframe(long_id[0])
    assert not vp8_starts_keyframe(delta[0])
    assert vp8_starts_keyframe(b"\x10" + frames[0][:10])
    assert not any(vp8_starts_keyframe(p) for p in key[1:])
    assert not vp8_starts_keyframe(b"")


def test_h264_keyframe_start_is_found_in_single_stap_a_and_fu_a() -> None:
    sps, pps, idr, slice_ = b"\x67\x42\x00\x1f", b"\x68\xce", b"\x65" + b"\x01" * 3000, b"\x41\x9a"
    # aiortc's packetizer: SPS and PPS in one STAP-A, the IDR slice in FU-A fragments.
    stap, *fragments = H264Encoder._packetize([sps, pps, idr])
    assert stap[0] & 0x1F == 24 and h264_starts_keyframe(stap)
    assert fragments[0][0] & 0x1F == 28 and h264_starts_keyframe(fragments[0])
    assert not any(h264_starts_keyframe(f) for f in fragments[1:])
    assert h264_starts_keyframe(idr[:10]) and not h264_starts_keyframe(slice_)
    [single_slice] = H264Encoder._packetize([slice_])
    assert not h264_starts_keyframe(single_slice)
    assert not h264_starts_keyframe(b"")


def _negotiated(kind: str) -> list[RTCRtpHeaderExtensionParameters]:
    return [RTCRtpHeaderExtensionParameters(id=i, uri=e.uri)
            for i, e in enumerate(HEADER_EXTENSIONS[kind], start=1)]


def _writer(kind: str, negotiated: list[RTCRtpHeaderExtensionParameters] | None = None,
            rtx_payload_type: int = -1) -> LegWriter:
    writer = LegWriter(65_535, 4_294_967_295, 7)
    writer.configure(111, 0xDEADBEEF, rtx_payload_type, 0xFEEDF00D,
                     *extension_headers(_negotiated(kind) if negotiated is None else negotiated,
                                        "3"))
    return writer


def test_packets_written_directly_read_back_as_aiortc_writes_them() -> None:
    now = 1_796_400_000.25
    for kind, level in (("audio", (True, 42)), ("video", None)):
        ids = HeaderExtensionsMap()
        ids.configure(RTCRtpParameters(headerExtensions=_negotiated(kind)))
        written = _writer(kind).write(5, 100, 9000, 1, b"payload", level, 1.0, now, 90_000)
        assert written is not None
        data, timestamp = written
        packet = RtpPacket.parse(data, ids)
        assert (packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp,
                packet.ssrc, packet.payload) == (111, 1, 65_535, 4_294_967_295, 0xDEADBEEF,
                                                 b"payload")
        assert timestamp == packet.timestamp
        assert packet.extensions.mid == "3"
        assert packet.extensions.audio_level == level
        # aiortc offers abs-send-time on video only.
        ntp = clock.datetime_to_ntp(datetime.datetime.fromtimestamp(now, datetime.UTC))
        expected = (ntp >> 14) & 0xFFFFFF if kind == "video" else None
        assert packet.extensions.abs_send_time == expected
        # The same packet through aiortc's writer: the same bytes.
        assert packet.serialize(ids) == data


def test_only_negotiated_extensions_are_written() -> None:
    assert extension_headers([], "0") == (b"", -1, -1)
    written = _writer("audio", []).write(5, 1, 2, 0, b"x", (False, 10), 0.0, 0.0, 48_000)
    assert written is not None and len(written[0]) == 13 and written[0][0] == 0x80
    only_mid = _writer("video", _negotiated("video")[:1])
    written = only_mid.write(5, 1, 2, 0, b"x", None, 0.0, 0.0, 90_000)
    assert written is not None and RtpPacket.parse(written[0]).payload == b"x"
    # An id the one-byte form cannot carry is left out rather than written wrong.
    high = [RTCRtpHeaderExtensionParameters(id=15, uri=e.uri) for e in HEADER_EXTENSIONS["audio"]]
    assert extension_headers(high, "0") == (b"", -1, -1)
    assert extension_headers(_negotiated("audio"), "x" * 17)[0] == b""


def test_sent_packets_are_kept_for_nacks_and_sent_once() -> None:
    writer = _writer("video")
    sent = [writer.write(5, sequence, 3000, 0, bytes([sequence]), None, 0.0, 0.0, 90_000)
            for sequence in range(10, 14)]
    numbers = [RtpPacket.parse(s[0]).sequence_number for s in sent if s is not None]
    assert numbers == [65_535, 0, 1, 2]
    # The publisher's own retransmission of a packet already sent: not again, not a drop.
    assert writer.write(5, 11, 3000, 0, b"\x0b", None, 0.0, 0.0, 90_000) is None
    assert writer.drops == 0
    # A NACK without RTX: the very packet again.
    assert writer.retransmit(0) == sent[1][0]  # type: ignore[index]
    assert writer.retransmit(3) is None and writer.retransmit(70_000) is None
    # Older than the cache: gone.
    for sequence in range(14, 14 + RTP_CACHE):
        writer.write(5, sequence, 3000, 0, b"", None, 0.0, 0.0, 90_000)
    assert writer.retransmit(0) is None
    writer.clear()
    assert writer.retransmit(numbers[-1] + RTP_CACHE) is None
    # Refused by the rules (from before the source's first packet): counted.
    assert writer.write(5, 9, 3000, 0, b"", None, 0.0, 0.0, 90_000) is None
    assert writer.drops == 1


def test_a_nack_is_answered_with_rtx_where_negotiated() -> None:
    writer = _writer("video", rtx_payload_type=112)
    original = writer.write(5, 10, 3000, 1, b"media", None, 0.0, 0.0, 90_000)
    assert original is not None
    first, second = writer.retransmit(65_535), writer.retransmit(65_535)
    assert first is not None and second is not None
    rtx = RtpPacket.parse(first)
    # RFC 4588: the RTX stream's own numbering, then the original number before the payload.
    assert (rtx.payload_type, rtx.ssrc, rtx.sequence_number, rtx.marker, rtx.timestamp) == (
        112, 0xFEEDF00D, 7, 1, 4_294_967_295)
    assert rtx.payload == b"\xff\xff" + b"media"
    assert RtpPacket.parse(second).sequence_number == 8
    assert first[12:].startswith(original[0][12:16])  # the same extension block


def test_a_leg_refuses_to_write_before_it_is_configured_or_wrong_values() -> None:
    writer = LegWriter(1, 2, 3)
    with pytest.raises(RuntimeError, match="not configured"):
        writer.write(5, 1, 2, 0, b"x", None, 0.0, 0.0, 90_000)
    assert writer.retransmit(1) is None
    with pytest.raises(ValueError, match="out of range"):
        writer.configure(128, 1, -1, 2, b"", -1, -1)
    writer.configure(96, 1, -1, 2, b"", -1, -1)
    with pytest.raises(TypeError, match="must be bytes"):
        writer.write(5, 1, 2, 0, "x", None, 0.0, 0.0, 90_000)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="audio_level"):
        writer.write(5, 1, 2, 0, b"x", (1,), 0.0, 0.0, 90_000)  # type: ignore[arg-type]


