"""rooms._native.Inbound and Route (passthrough 17.): SRTP datagrams of a known source go
through the C path (the legs, the level, the bookkeeping, the frames); everything else reaches
the Python path or aioice untouched, and what aiortc's parser refuses never gets through."""

from __future__ import annotations

import struct
import threading
import time
from typing import Any

import aiortc
import pytest
from aiortc import clock
from aiortc.rtcdtlstransport import RtpRouter
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpRrPacket, RtpPacket

from rooms import passthrough
from rooms._native import (
    FEEDBACK_NACK,
    FEEDBACK_REMB,
    Inbound,
    JitterBuffer,
    NackGenerator,
    RemoteBitrateEstimator,
    Route,
    StreamStatistics,
)
from tests.rooms.test_native_srtp import inbound, outbound

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
SSRC = 0x1234
# Extension ids: mid 1, abs-send-time 2, audio level 3 (aiortc's order in Route).
IDS = (1, 0, 0, 2, 0, 3, 0)
URIS = {1: "urn:ietf:params:rtp-hdrext:sdes:mid",
        2: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        3: "urn:ietf:params:rtp-hdrext:ssrc-audio-level"}


class _Receiver:
    """What a Route reads of its receiver: whether it is enabled (5.)."""

    def __init__(self) -> None:
        self._enabled = True


class _Setup:
    def __init__(self) -> None:
        self.pc = aiortc.RTCPeerConnection()
        self.dtls = self.pc.addTransceiver("video").receiver.transport
        self.dtls._state = DtlsState.CONNECTED
        self.router = RtpRouter()
        self.receiver = _Receiver()
        self.router.ssrc_table[SSRC] = self.receiver  # type: ignore[assignment]
        self.router.payload_type_table[96] = {self.receiver}  # type: ignore[arg-type]
        self.protect = outbound()
        self.originals: list[bytes] = []
        self.slow: list[RtpPacket] = []
        self.feedback: list[tuple[int, Any]] = []
        self.frames: list[Any] = []
        self.levels: list[tuple[int, int]] = []
        self.statistics = StreamStatistics(90_000)
        self.nacks = NackGenerator()
        self.estimator = RemoteBitrateEstimator()
        self.active: dict[int, Any] = {}
        self.map = HeaderExtensionsMap()
        self.map.configure(type("P", (), {"headerExtensions": [
            RTCRtpHeaderExtensionParameters(id=i, uri=uri) for i, uri in URIS.items()]})())
        self.reports: list[bytes] = []
        self.inbound = Inbound(lambda data, addr: self.originals.append(data), self.dtls,
                               DtlsState.CONNECTED, passthrough.native_srtp(inbound()),
                               self._slow, self.reports.append, self.router)
        self.route = Route(
            receiver=self.receiver, codec=VP8, writers=[], clock=None,
            on_level=lambda timestamp, level: self.levels.append((timestamp, level)),
            estimator=self.estimator, statistics=self.statistics, nacks=self.nacks,
            jitter=JitterBuffer(capacity=128, is_video=True),
            on_feedback=lambda kind, value: self.feedback.append((kind, value)),
            on_frame=self.frames.append, active=self.active,
            now_datetime=clock.current_datetime, decoder_error=threading.Event(),
            payload_type=96, video=True, vp8=True, extension_ids=IDS)
        self.inbound.routes[SSRC] = self.route

    def _slow(self, data: bytes, arrival_time_ms: int) -> None:
        try:
            self.slow.append(RtpPacket.parse(data, self.map))
        except (ValueError, struct.error):
            pass

    def send(self, packet: RtpPacket, raw: bytes | None = None) -> None:
        data = raw if raw is not None else packet.serialize(self.map)
        self.inbound(self.protect.protect(data), ("127.0.0.1", 5000))


def _vp8(sequence: int, frame: int, level: int | None = None, mid: str | None = None,
         abs_send_time: int | None = None) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=sequence, timestamp=3000 * frame,
                       ssrc=SSRC, payload=bytes([0x10, frame % 256, sequence % 256]))
    packet.extensions.abs_send_time = abs_send_time
    packet.extensions.mid = mid
    if level is not None:
        packet.extensions.audio_level = (True, level)
    return packet


def _raw(sequence: int, first_byte: int, extension: bytes, payload: bytes) -> bytes:
    """An RTP packet written by hand: ``first_byte`` (version, padding, extension bits)."""
    return struct.pack("!BBHII", first_byte, 96, sequence, 0, SSRC) + extension + payload


async def test_a_known_source_goes_through_the_c_path_with_its_bookkeeping() -> None:
    setup = _Setup()
    try:
        for sequence in range(12):  # three packets per frame, a mid and a level in some
            setup.send(_vp8(sequence, sequence // 3, level=sequence if sequence % 4 == 0 else None,
                            mid="0" if sequence < 2 else None))
        assert setup.route.packets == 12 and not setup.slow and not setup.originals
        assert setup.statistics.packets_received == 12 and setup.statistics.max_seq == 11
        assert setup.levels == [(0, 0), (3000 * 1, 4), (3000 * 2, 8)]
        # The jitter buffer's frames: each complete one, once the next began.
        assert [frame.timestamp for frame in setup.frames] == [0, 3000, 6000]
        assert setup.frames[0].data == bytes([0, 0]) + bytes([0, 1]) + bytes([0, 2])
        assert list(setup.active) == [SSRC]
        assert setup.dtls._RTCDtlsTransport__rx_packets == 12  # type: ignore[attr-defined]
        # The estimator has each packet's abs-send-time: given 3.1 s of earlier packets (a
        # tenth of a second apart, at aiortc's clock), the next one brings the first REMB.
        now_ms = int(time.time() * 1000) + 2_208_988_800_000
        for i in range(32):
            assert setup.estimator.add(arrival_time_ms=now_ms - 3200 + 100 * i,
                                       abs_send_time=(1000 + 26_214 * i) & 0xFFFFFF,
                                       payload_size=1000, ssrc=SSRC) is None
        assert not any(kind == FEEDBACK_REMB for kind, _ in setup.feedback)
        for sequence in range(12, 20):
            setup.send(_vp8(sequence, 4, abs_send_time=(1000 + 26_214 * 32) & 0xFFFFFF))
        assert any(kind == FEEDBACK_REMB and value[1] == [SSRC] for kind, value in setup.feedback)
        # A gap: a NACK is asked for the missing packets.
        setup.send(_vp8(23, 5))
        assert (FEEDBACK_NACK, None) in setup.feedback and setup.nacks.missing == {20, 21, 22}
        # Disabled: the level still reaches its tap, the bookkeeping stops.
        setup.receiver._enabled = False
        setup.send(_vp8(24, 5, level=40))
        assert setup.levels[-1] == (15_000, 40) and setup.statistics.packets_received == 21
    finally:
        await setup.pc.close()


async def test_anything_else_goes_to_python_or_aioice_and_bad_packets_nowhere() -> None:
    setup = _Setup()
    try:
        setup.send(_vp8(1, 0))
        assert setup.route.packets == 1
        # Another source, another payload type: the Python path.
        other = _vp8(2, 0)
        other.ssrc = 99
        setup.send(other)
        other = _vp8(3, 0)
        other.payload_type = 97
        setup.send(other)
        assert [(p.ssrc, p.payload_type) for p in setup.slow] == [(99, 96), (SSRC, 97)]
        # What aiortc's parser refuses: the Python path drops it (none parsed).
        for raw in (_raw(4, 0xA0, b"", b"\x10\x00\xc8"),  # padding longer than the packet
                    _raw(5, 0x90, b"\xbe\xde\x00\x01\x21\x00\x00\x00", b"\x10"),  # 2-byte abs
                    _raw(6, 0x90, b"\xbe\xde\x00\x01\x10\xff\x00\x00", b"\x10")):  # mid not UTF-8
            setup.send(RtpPacket(), raw=raw)
        assert len(setup.slow) == 2 and setup.route.packets == 1
        # SRTCP is read here and handed over decrypted (18.); what fails authentication is not.
        report = bytes(RtcpRrPacket(ssrc=7))
        setup.inbound(setup.protect.protect_rtcp(report), ("127.0.0.1", 5000))
        setup.inbound(bytes([0x80, 201]) + bytes(30), ("127.0.0.1", 5000))
        assert setup.reports == [report]
        # STUN or DTLS, or what aiortc would not read as RTP nor RTCP, go to aioice as they
        # came; so does everything while the transport is not connected.
        stun, odd = bytes([0, 1]) + bytes(18), bytes([0x80, 215]) + bytes(30)
        setup.inbound(stun, ("127.0.0.1", 5000))
        setup.inbound(odd, ("127.0.0.1", 5000))
        setup.dtls._state = DtlsState.CLOSED
        datagram = setup.protect.protect(_vp8(7, 0).serialize(setup.map))
        setup.inbound(datagram, ("127.0.0.1", 5000))
        assert setup.originals == [stun, odd, datagram]
        # Counted here: the 6 SRTP and 2 SRTCP datagrams above (aiortc counts what it takes).
        assert setup.dtls._RTCDtlsTransport__rx_packets == 8  # type: ignore[attr-defined]
        setup.dtls._state = DtlsState.CONNECTED
        # What fails authentication is dropped.
        setup.inbound(bytes([0x80, 96]) + bytes(40), ("127.0.0.1", 5000))
        assert len(setup.slow) == 2 and len(setup.originals) == 3
        # The router gave the source to another receiver: the route is dropped.
        setup.router.ssrc_table[SSRC] = _Receiver()  # type: ignore[assignment]
        setup.send(_vp8(8, 0))
        assert SSRC not in setup.inbound.routes and len(setup.slow) == 3
        with pytest.raises(TypeError):
            setup.inbound(b"x")  # type: ignore[call-arg]
    finally:
        await setup.pc.close()


def test_a_route_refuses_python_bookkeeping() -> None:
    fields: dict[str, Any] = {
        "receiver": _Receiver(), "codec": VP8, "writers": None, "clock": None, "on_level": None,
        "estimator": None, "statistics": StreamStatistics(90_000), "nacks": None,
        "jitter": JitterBuffer(capacity=16), "on_feedback": print, "on_frame": print,
        "active": {}, "now_datetime": clock.current_datetime, "decoder_error": threading.Event(),
        "payload_type": 96, "video": True, "vp8": True, "extension_ids": IDS}
    assert Route(**fields).packets == 0
    for name, value in (("statistics", aiortc.rtcrtpreceiver.StreamStatistics(90_000)),
                        ("nacks", aiortc.rtcrtpreceiver.NackGenerator()),
                        ("jitter", aiortc.jitterbuffer.JitterBuffer(16)),
                        ("writers", ()), ("on_frame", None), ("payload_type", 128)):
        with pytest.raises(TypeError):
            Route(**{**fields, name: value})
