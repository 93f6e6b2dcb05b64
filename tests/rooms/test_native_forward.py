"""rooms._native.forward and RtpSink (passthrough 10. and 12.): a publisher's packet sent on
every live leg over real UDP sockets, SRTP-protected by libsrtp and read back with pylibsrtp and
aiortc's parser; the transport's and the sender's counters; what stops a send."""

from __future__ import annotations

import asyncio
import datetime
import gc
import weakref
from typing import Any, cast

import aioice
import aiortc
import pytest
from aiortc import clock
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from rooms import passthrough
from rooms._native import LegWriter, RtpSink, forward
from rooms.rtp_forward import RtpLeg
from tests.rooms.test_native_srtp import inbound, outbound

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90_000, payloadType=102)
WHEN = datetime.datetime(2026, 12, 5, 20, 0, 0, 250_000, tzinfo=datetime.UTC)


class _Socket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)


async def _socket() -> _Socket:
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        _Socket, local_addr=("127.0.0.1", 0))
    return protocol


def _packet(sequence: int, payload: bytes = b"\x10\x00\x9d\x01\x2a") -> RtpPacket:
    return RtpPacket(payload_type=96, sequence_number=sequence, timestamp=9_000 + sequence,
                     ssrc=0x1234, payload=payload)


async def _nothing_arrives(socket: _Socket) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(socket.received.get(), 0.1)


async def test_a_packet_goes_out_on_each_live_leg_protected_and_counted() -> None:
    here, there = await _socket(), await _socket()
    assert here.transport is not None and there.transport is not None
    pc = aiortc.RTCPeerConnection()
    try:
        senders = [pc.addTransceiver("video", direction="sendonly").sender for _ in range(2)]
        dtls = senders[0].transport
        port = there.transport.get_extra_info("sockname")[1]
        pair = aioice.ice.CandidatePair(cast(aioice.ice.StunProtocol, here), aioice.Candidate(
            foundation="1", component=1, transport="udp", priority=1, host="127.0.0.1",
            port=port, type="host"))
        nominated: dict[int, aioice.ice.CandidatePair] = {}
        sink = RtpSink(dtls, nominated, DtlsState.CONNECTED, passthrough.native_srtp)
        legs = [LegWriter(100, 50_000, 7), LegWriter(200, 60_000, 8)]
        for ssrc, (leg, sender) in enumerate(zip(legs, senders, strict=True), start=1):
            leg.configure(97, ssrc, -1, 0, b"", -1, -1)
            leg.attach(sink, "video/vp8", 90_000)
            passthrough.report_leg(sender, leg)
        wall = WHEN.timestamp()

        # Not live yet, then live on a transport not connected, without a pair: nothing goes.
        assert forward(legs, _packet(1), VP8, 1.0, wall) == 0
        for leg in legs:
            leg.live = True
        assert forward(legs, _packet(2), VP8, 1.0, wall) == 0
        dtls._state = DtlsState.CONNECTED
        dtls._tx_srtp = outbound()
        assert forward(legs, _packet(3), VP8, 1.0, wall) == 0
        await _nothing_arrives(there)

        nominated[1] = pair
        assert forward(legs, _packet(4), VP8, 1.0, wall) == 2
        reader = inbound()
        sent = [await there.received.get() for _ in legs]
        read = sorted((RtpPacket.parse(reader.unprotect(data)) for data in sent),
                      key=lambda packet: packet.ssrc)
        # The packets not sent still took their numbers (as a publisher's lost packets).
        assert [(p.ssrc, p.payload_type, p.sequence_number, p.timestamp) for p in read] == [
            (1, 97, 102, 50_002), (2, 97, 202, 60_002)]
        assert all(p.payload == _packet(4).payload for p in read)
        assert dtls._RTCDtlsTransport__tx_packets == 2  # type: ignore[attr-defined]
        assert dtls._RTCDtlsTransport__tx_bytes == sum(map(len, sent))  # type: ignore[attr-defined]
        assert sink.sent == 2 and [leg.packets for leg in legs] == [1, 1]
        for sender, packet in zip(senders, read, strict=True):
            assert sender._RTCRtpSender__packet_count == 1  # type: ignore[attr-defined]
            assert sender._RTCRtpSender__octet_count == 5  # type: ignore[attr-defined]
            assert sender._RTCRtpSender__rtp_timestamp == packet.timestamp  # type: ignore
            ntp = sender._RTCRtpSender__ntp_timestamp  # type: ignore[attr-defined]
            assert abs(ntp - clock.datetime_to_ntp(WHEN)) < (1 << 32) // 1000
            # aiortc's own report writing reads them (the sender report, getStats).
            report = next(s for s in (await sender.getStats()).values()
                            if s.type == "outbound-rtp")
            assert (report.packetsSent, report.bytesSent) == (1, 5)

        # Another codec is dropped and counted; a stopped leg is passed by.
        assert forward(legs, _packet(5), H264, 1.0, wall) == 0
        assert [leg.drops for leg in legs] == [1, 1]
        legs[1].detach()
        assert forward(legs, _packet(6), VP8, 1.0, wall) == 1
        assert RtpPacket.parse(reader.unprotect(await there.received.get())).ssrc == 1

        # A remote address that is not numeric goes through the transport's own sendto.
        nominated[1] = aioice.ice.CandidatePair(cast(aioice.ice.StunProtocol, here),
                                                aioice.Candidate(
            foundation="1", component=1, transport="udp", priority=1, host="localhost",
            port=port, type="host"))
        assert forward(legs, _packet(61), VP8, 1.0, wall) == 1
        assert RtpPacket.parse(reader.unprotect(await there.received.get())).ssrc == 1
        nominated[1] = pair

        # A new SRTP session (DTLS again) is used from the next packet on.
        dtls._tx_srtp = outbound()
        assert forward(legs, _packet(7), VP8, 1.0, wall) == 1
        assert RtpPacket.parse(inbound().unprotect(await there.received.get())).ssrc == 1

        # A closing socket, or a transport no longer connected, takes nothing.
        dtls._state = DtlsState.CLOSED
        assert forward(legs, _packet(8), VP8, 1.0, wall) == 0
        dtls._state = DtlsState.CONNECTED
        here.transport.close()
        assert forward(legs, _packet(9), VP8, 1.0, wall) == 0
        assert sink.send(b"\x80" + bytes(11)) is False
        await _nothing_arrives(there)
        assert legs[0].packets == 4
    finally:
        await pc.close()
        there.transport.close()


async def test_a_gate_sees_payloads_until_it_opens_and_a_failing_leg_spares_the_others() -> None:
    here, there = await _socket(), await _socket()
    assert here.transport is not None and there.transport is not None
    pc = aiortc.RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        dtls = sender.transport
        dtls._state = DtlsState.CONNECTED
        dtls._tx_srtp = outbound()
        pair = aioice.ice.CandidatePair(cast(aioice.ice.StunProtocol, here), aioice.Candidate(
            foundation="1", component=1, transport="udp", priority=1, host="127.0.0.1",
            port=there.transport.get_extra_info("sockname")[1], type="host"))
        sink = RtpSink(dtls, {1: pair}, DtlsState.CONNECTED, passthrough.native_srtp)
        seen: list[bytes] = []

        def gate(payload: bytes) -> bool:
            seen.append(payload)
            return len(seen) == 2

        def broken(payload: bytes) -> bool:
            raise RuntimeError("a gate that fails")

        gated, failing, plain = (LegWriter(1, 1, 1) for _ in range(3))
        for ssrc, leg in enumerate((gated, failing, plain), start=1):
            leg.configure(97, ssrc, -1, 0, b"", -1, -1)
            leg.attach(sink, "video/vp8", 90_000)
            leg.live = True
        gated.gate = gate
        assert forward((gated, plain), _packet(1, b"a"), VP8, 1.0, 2.0) == 1
        assert gated.gate is gate and seen == [b"a"]
        assert forward((gated, plain), _packet(2, b"b"), VP8, 1.0, 2.0) == 2
        assert gated.gate is None and seen == [b"a", b"b"]
        assert forward((gated, plain), _packet(3, b"c"), VP8, 1.0, 2.0) == 2
        assert seen == [b"a", b"b"]

        # A gate that empties the list of legs while it is sent on (a subscriber leaving).
        legs = [gated, plain]

        def leave(payload: bytes) -> bool:
            legs.clear()
            return True

        gated.gate = leave
        assert forward(legs, _packet(4, b"d"), VP8, 1.0, 2.0) == 1 and legs == []
        assert plain.packets == 3

        failing.gate = broken
        with pytest.raises(RuntimeError, match="a gate that fails"):
            forward((failing, plain), _packet(5), VP8, 1.0, 2.0)
        assert plain.packets == 4 and failing.packets == 0
        with pytest.raises(TypeError):
            forward((plain, "not a leg"), _packet(6), VP8, 1.0, 2.0)
        with pytest.raises(TypeError):
            gated.gate = 5  # type: ignore[assignment]
    finally:
        await pc.close()
        here.transport.close()
        there.transport.close()


def test_a_leg_and_its_writer_are_collected_though_they_hold_each_other() -> None:
    leg = RtpLeg("video", lambda: None, label="a->b")
    assert leg.writer.gate is not None  # the writer holds the leg's bound method: a cycle
    gone = weakref.ref(leg)
    del leg
    gc.collect()
    assert gone() is None


def test_a_sink_is_refused_anything_but_a_dict_of_pairs_and_a_callable() -> None:
    with pytest.raises(TypeError):
        RtpSink(object(), [], DtlsState.CONNECTED, passthrough.native_srtp)  # type: ignore
    with pytest.raises(TypeError):
        RtpSink(object(), {}, DtlsState.CONNECTED, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LegWriter(1, 1, 1).attach(object(), "video/vp8", 90_000)  # type: ignore
