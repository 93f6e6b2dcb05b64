"""The pass-through hooks touch aiortc's private names: these tests fail if aiortc moves them."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import re
import sys
from fractions import Fraction

import aioice.ice
import aiortc
import aiortc.jitterbuffer
import aiortc.mediastreams
import aiortc.rate
import aiortc.rtcdtlstransport
import aiortc.rtcicetransport
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import aiortc.rtp
import av
import pytest
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

import rooms._native
from recordings import codecs
from rooms import passthrough
from server import event_loop
from tests.support.recordings import encoded_vp8

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=99)


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__ == passthrough.AIORTC_VERSION


def test_receiver_decoder_thread_still_calls_module_level_get_decoder() -> None:
    source = inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    assert "get_decoder(codec)" in source
    assert "decoder.decode(encoded_frame)" in source
    assert hasattr(aiortc.rtcrtpreceiver.RTCRtpReceiver, "_send_rtcp_pli")
    assert hasattr(aiortc.rtcrtpreceiver.RTCRtpReceiver, "getSynchronizationSources")


def test_sender_packs_anything_that_is_not_a_frame() -> None:
    source = inspect.getsource(aiortc.rtcrtpsender.RTCRtpSender._next_encoded_frame)
    assert "isinstance(data, Frame)" in source
    assert ".pack(data)" in source
    for name in ("Vp8Encoder", "OpusEncoder", "H264Encoder"):
        encoder = getattr(aiortc.codecs, name)
        assert callable(getattr(encoder, "pack", None)), name


def test_sender_routes_pli_and_fir_through_send_keyframe() -> None:
    source = inspect.getsource(aiortc.rtcrtpsender.RTCRtpSender._handle_rtcp_packet)
    assert "RTCP_PSFB_PLI" in source and "RTCP_PSFB_FIR" in source
    assert "self._send_keyframe()" in source


def test_install_replaces_decoder_and_host_addresses_idempotently() -> None:
    passthrough.install(("127.0.0.1",))
    passthrough.install(("127.0.0.1",))
    assert passthrough.installed()
    assert aiortc.rtcrtpreceiver.get_decoder is passthrough._get_decoder
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
    passthrough.install(("127.0.0.1", "::1"))
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
    passthrough.install(("127.0.0.1",))


def test_decoder_returns_a_packet_with_rtp_timing_and_keyframe_flag() -> None:
    frames = encoded_vp8(3, 64, 48)
    decoder = passthrough.PacketDecoder(VP8)
    [key] = decoder.decode(JitterFrame(frames[0], timestamp=3000))
    assert isinstance(key, av.Packet)
    assert bytes(key) == frames[0]
    assert key.pts == 3000 and key.time_base == Fraction(1, 90000)
    assert key.is_keyframe
    [delta] = decoder.decode(JitterFrame(frames[1], timestamp=6000))
    assert not delta.is_keyframe
    assert codecs.vp8_dimensions(frames[0]) == (64, 48)
    assert codecs.vp8_dimensions(frames[1]) is None
    assert decoder.decode(JitterFrame(b"", timestamp=9000)) == []
    [audio] = passthrough.PacketDecoder(OPUS).decode(JitterFrame(b"\xfc\x00", timestamp=960))
    assert audio.time_base == Fraction(1, 48000) and audio.is_keyframe


def test_h264_keyframe_detection() -> None:
    idr = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88"
    slice_ = b"\x00\x00\x00\x01\x41\x9a"
    h264 = passthrough.PacketDecoder(H264)
    assert h264.decode(JitterFrame(idr, timestamp=0))[0].is_keyframe
    assert not h264.decode(JitterFrame(slice_, timestamp=0))[0].is_keyframe


def test_vp8_packets_survive_the_senders_pack_path() -> None:
    frames = encoded_vp8(2, 64, 48)
    [packet] = passthrough.PacketDecoder(VP8).decode(JitterFrame(frames[0], timestamp=4500))
    payloads, timestamp = aiortc.codecs.Vp8Encoder().pack(packet)
    assert timestamp == 4500
    assert b"".join(aiortc.codecs.vpx.vp8_depayload(p) for p in payloads) == frames[0]


async def test_keyframe_hook_shadows_send_keyframe_on_one_sender_only() -> None:
    calls: list[int] = []
    pc = aiortc.RTCPeerConnection()
    try:
        hooked = pc.addTransceiver("video", direction="sendonly").sender
        other = pc.addTransceiver("video", direction="sendonly").sender
        passthrough.relay_keyframe_requests(hooked, lambda: calls.append(1))
        hooked._send_keyframe()
        other._send_keyframe()
        assert calls == [1]
    finally:
        await pc.close()


def test_receiver_still_keeps_its_rtx_ssrcs_in_the_private_map() -> None:
    source = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver.receive)
    assert "self.__rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc" in source
    source = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    # RTX packets count as active sources: they are recorded before being unwrapped.
    assert source.index("self.__active_ssrc[packet.ssrc]") < source.index("unwrap_rtx(")


async def test_media_sources_leave_out_rtx_ssrcs() -> None:
    pc = aiortc.RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        assert passthrough.media_sources(receiver) == []
        # As after Chromium's RTX bandwidth probe arrived before its first media packet.
        now = datetime.datetime.now(datetime.UTC)
        receiver._RTCRtpReceiver__rtx_ssrc[1111] = 2222  # type: ignore[attr-defined]
        receiver._RTCRtpReceiver__active_ssrc.update(  # type: ignore[attr-defined]
            {1111: now, 2222: now})
        assert [s.source for s in receiver.getSynchronizationSources()] == [1111, 2222]
        assert passthrough.media_sources(receiver) == [2222]
    finally:
        await pc.close()


async def test_receiver_drops_packets_by_its_enabled_flag_and_keep_receiving_overrides_it(
        ) -> None:
    source = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "if not self._enabled" in source
    source = inspect.getsource(aiortc.RTCRtpTransceiver._setCurrentDirection)
    assert "__receiver._enabled = False" in source

    pc = aiortc.RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        receiver = transceiver.receiver
        transceiver._setCurrentDirection("inactive")
        assert receiver._enabled is False
        passthrough.keep_receiving(receiver)
        passthrough.keep_receiving(receiver)
        assert isinstance(receiver, aiortc.rtcrtpreceiver.RTCRtpReceiver)
        transceiver._setCurrentDirection("inactive")
        assert receiver._enabled is True
        transceiver._setCurrentDirection("sendonly")
        assert receiver._enabled is True
    finally:
        await pc.close()


def test_audio_level_hooks_still_find_their_private_names() -> None:
    # The receiver parses the level into packet.extensions and is called through the instance.
    source = inspect.getsource(aiortc.rtp.HeaderExtensionsMap.configure)
    assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in source
    transport = inspect.getsource(aiortc.rtcdtlstransport.RTCDtlsTransport)
    assert "await receiver._handle_rtp_packet(packet" in transport
    # Forwarded frames get their pts from the receiver's timestamp mapper.
    receiver_source = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "self.__timestamp_mapper.map(" in receiver_source
    # The sender writes the extension from RTCEncodedFrame.audio_level, read through self.
    run = inspect.getsource(aiortc.rtcrtpsender.RTCRtpSender._run_rtp)
    assert "await self._next_encoded_frame(codec)" in run
    assert "packet.extensions.audio_level = (False, -enc_frame.audio_level)" in run
    # And aiortc still offers the extension on audio m-lines.
    assert any(e.uri == "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
               for e in aiortc.codecs.HEADER_EXTENSIONS["audio"])


async def test_rtp_timestamp_adds_the_receivers_origin_back() -> None:
    pc = aiortc.RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio", direction="recvonly").receiver
        assert passthrough.rtp_timestamp(receiver, 0) is None
        mapper = receiver._RTCRtpReceiver__timestamp_mapper  # type: ignore[attr-defined]
        assert mapper.map(4_294_966_000) == 0
        assert mapper.map(4_294_966_960) == 960
        assert passthrough.rtp_timestamp(receiver, 960) == 4_294_966_960
        # Across the RTP timestamp's wrap.
        assert mapper.map(664) == 1_960
        assert passthrough.rtp_timestamp(receiver, 1_960) == 664
    finally:
        await pc.close()


def test_rtp_forwarding_hooks_still_find_their_private_names() -> None:
    # 8.: the receiver keeps its codecs and RTX map under these names and unwraps RTX itself.
    receiver_source = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "self.__codecs.get(packet.payload_type)" in receiver_source
    assert "self.__rtx_ssrc.get(packet.ssrc)" in receiver_source
    # 9. and 12.: legs send as _send_rtp does, down aioice's chain to the datagram transport.
    send_rtp = inspect.getsource(aiortc.rtcdtlstransport.RTCDtlsTransport._send_rtp)
    for line in ("if self._state != State.CONNECTED:", "if is_rtcp(data):",
                 "data = self._tx_srtp.protect_rtcp(data)", "data = self._tx_srtp.protect(data)",
                 "await self.transport._send(data)", "self.__tx_bytes += len(data)",
                 "self.__tx_packets += 1"):
        assert line in send_rtp, line
    ice = inspect.getsource(aiortc.rtcicetransport.RTCIceTransport)
    assert "self._send = self._connection.send" in ice
    assert "await self.sendto(data, 1)" in inspect.getsource(aioice.ice.Connection.send)
    sendto = inspect.getsource(aioice.ice.Connection.sendto)
    assert "active_pair = self._nominated.get(component)" in sendto
    assert "await active_pair.protocol.send_data(data, active_pair.remote_addr)" in sendto
    assert "self.transport.sendto(data, addr)" in inspect.getsource(
        aioice.ice.StunProtocol.send_data)
    # 10.: sender reports are made of these counters; NACKs go through self._retransmit.
    rtcp = inspect.getsource(aiortc.rtcrtpsender.RTCRtpSender._run_rtcp)
    for name in ("__ntp_timestamp", "__rtp_timestamp", "__packet_count", "__octet_count"):
        assert f"self.{name}" in rtcp, name
    handle = inspect.getsource(aiortc.rtcrtpsender.RTCRtpSender._handle_rtcp_packet)
    assert "await self._retransmit(seq)" in handle


async def test_rtp_forwarding_hooks_attach_to_one_receiver_and_one_sender() -> None:
    pc = aiortc.RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        seen: list[tuple[int, str]] = []

        def handler(packet: aiortc.rtp.RtpPacket, codec: RTCRtpCodecParameters) -> None:
            seen.append((packet.sequence_number, codec.mimeType))

        passthrough.forward_rtp(receiver, handler)
        assert "_handle_rtp_packet" in vars(receiver)
        sender = pc.addTransceiver("video", direction="sendonly").sender
        passthrough.check_sender_counters(sender)

        async def retransmit(seq: int) -> None:
            pass

        # Not connected yet: nothing is sent.
        assert passthrough.rtp_sender(sender).send(b"\x80" + bytes(11)) is False
        passthrough.answer_nacks(sender, retransmit)
        assert sender._retransmit is retransmit
    finally:
        await pc.close()


def test_inline_decoding_hook_still_finds_its_private_names() -> None:
    # 11.: receive() hands the thread this queue; frames and the stop go through it.
    receive = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver.receive)
    assert "self.__decoder_queue," in receive and "self._track._queue," in receive
    handle = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in handle
    stop = inspect.getsource(
        aiortc.rtcrtpreceiver.RTCRtpReceiver._RTCRtpReceiver__stop_decoder)  # type: ignore[attr-defined]
    assert "self.__decoder_queue.put(None)" in stop
    worker = inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    assert "task = input_q.get()" in worker and "if task is None:" in worker


async def test_inline_decoding_puts_packets_on_the_track_and_still_ends_it() -> None:
    pc = aiortc.RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        passthrough.decode_inline(receiver)
        passthrough.decode_inline(receiver)  # once is enough: a second call changes nothing
        frames = encoded_vp8(2)
        receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack("video")  # as a description does
        decoder_queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
        decoder_queue.put((VP8, JitterFrame(data=frames[0], timestamp=3000)))
        decoder_queue.put((VP8, JitterFrame(data=frames[1], timestamp=6000)))
        # At once, in this thread: no decoder thread has run.
        track_queue = receiver._track._queue
        first, second = track_queue.get_nowait(), track_queue.get_nowait()
        assert isinstance(first, av.Packet) and (first.pts, first.is_keyframe) == (3000, True)
        assert (second.pts, second.is_keyframe) == (6000, False)
        assert first.time_base == Fraction(1, 90000) and bytes(first) == frames[0]
        # The thread aiortc starts takes only the stop, and then ends the track.
        await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
        thread = receiver._RTCRtpReceiver__decoder_thread  # type: ignore[attr-defined]
        assert thread.is_alive()
        receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]
        assert not thread.is_alive()
        assert await track_queue.get() is None
    finally:
        await pc.close()


async def test_delivered_frames_go_to_the_sink_after_those_already_queued() -> None:
    pc = aiortc.RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        delivered: list[av.Packet] = []
        with pytest.raises(RuntimeError, match="does not decode inline"):
            passthrough.deliver_frames(receiver, delivered.append)
        passthrough.decode_inline(receiver)
        frames = encoded_vp8(3)
        receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack("video")  # as a description does
        decoder_queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
        decoder_queue.put((VP8, JitterFrame(data=frames[0], timestamp=3000)))
        passthrough.deliver_frames(receiver, delivered.append)
        decoder_queue.put((VP8, JitterFrame(data=frames[1], timestamp=6000)))
        decoder_queue.put((VP8, JitterFrame(data=frames[2], timestamp=9000)))
        # In order, at once, the one queued before first; nothing is left on the track.
        assert [(p.pts, bytes(p)) for p in delivered] == [
            (3000, frames[0]), (6000, frames[1]), (9000, frames[2])]
        assert delivered[0].is_keyframe and receiver._track._queue.empty()
        # The stop still reaches the decoder thread, which ends the track.
        await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
        receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]
        assert await receiver._track._queue.get() is None
    finally:
        await pc.close()


def test_native_receive_hook_still_finds_its_private_names() -> None:
    # 15.: the receiver keeps its estimator and jitter buffer in private names and calls their
    # add() per packet, the payload depacketized first.
    handle = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "remb = self.__remote_bitrate_estimator.add(" in handle
    for keyword in ("abs_send_time=", "arrival_time_ms=", "payload_size=", "ssrc="):
        assert keyword in handle
    assert "packet._data = depayload(codec, packet.payload)" in handle
    assert "pli_flag, encoded_frame = self.__jitter_buffer.add(packet)" in handle
    init = inspect.getsource(aiortc.jitterbuffer.JitterBuffer.__init__)
    for line in ("self._capacity = capacity", "self._prefetch = prefetch",
                 "self._is_video = is_video"):
        assert line in init


async def test_native_parts_replace_the_estimator_and_jitter_buffer() -> None:
    pc = aiortc.RTCPeerConnection()
    try:
        video = pc.addTransceiver("video", direction="recvonly").receiver
        audio = pc.addTransceiver("audio", direction="recvonly").receiver
        estimator = "_RTCRtpReceiver__remote_bitrate_estimator"
        buffer = "_RTCRtpReceiver__jitter_buffer"
        assert isinstance(getattr(video, estimator), aiortc.rate.RemoteBitrateEstimator)
        nacks = "_RTCRtpReceiver__nack_generator"
        assert isinstance(getattr(video, nacks), aiortc.rtcrtpreceiver.NackGenerator)
        passthrough.use_native_parts(video)
        native = getattr(video, estimator), getattr(video, buffer), getattr(video, nacks)
        assert isinstance(native[0], rooms._native.RemoteBitrateEstimator)
        assert isinstance(native[1], rooms._native.JitterBuffer)
        assert isinstance(native[2], rooms._native.NackGenerator)
        passthrough.use_native_parts(video)  # once is enough
        assert (getattr(video, estimator), getattr(video, buffer), getattr(video, nacks)) == native
        # Audio has no estimator nor NACKs, and gets none.
        passthrough.use_native_parts(audio)
        assert getattr(audio, estimator) is None and getattr(audio, nacks) is None
        # Audio's buffer waits for 4 frames ahead (prefetch), video's for none.
        frames = []
        for sequence in range(6):
            packet = aiortc.rtp.RtpPacket(sequence_number=sequence, timestamp=sequence * 960)
            packet._data = b"x"  # type: ignore[attr-defined]
            frames.append(getattr(audio, buffer).add(packet)[1])
        assert [f is not None for f in frames] == [False] * 4 + [True] * 2
        setattr(audio, buffer, object())
        with pytest.raises(RuntimeError, match="native receive hook is broken"):
            passthrough.use_native_parts(audio)
    finally:
        await pc.close()


def test_inline_receive_hook_still_finds_its_private_names() -> None:
    # 14.: aioice hands every datagram that is not STUN to the connection's queue ...
    datagram = inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    assert "self.receiver.data_received(data, self.local_candidate.component)" in datagram
    assert "self._queue.put_nowait((data, component))" in inspect.getsource(
        aioice.ice.Connection.data_received)
    # ... which the DTLS transport's task takes, counts, unprotects, parses and routes ...
    dtls = aiortc.rtcdtlstransport.RTCDtlsTransport
    recv_next = inspect.getsource(dtls._recv_next)
    for line in ("self.__rx_bytes += len(data)", "self.__rx_packets += 1",
                 "elif first_byte > 127 and first_byte < 192 and self._rx_srtp:",
                 "if is_rtcp(data):", "data = self._rx_srtp.unprotect(data)",
                 "arrival_time_ms = clock.current_ms()"):
        assert line in recv_next, line
    handle_data = inspect.getsource(dtls._handle_rtp_data)
    assert "RtpPacket.parse(data, self._rtp_header_extensions_map)" in handle_data
    assert "receiver = self._rtp_router.route_rtp(packet)" in handle_data
    # ... and the receiver's steps _Receiving.receive does in the same order.
    handle = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    steps = ("if not self._enabled:", "self.__remote_bitrate_estimator.add(",
             "fci=pack_remb_fci(*remb)",
             "self.__active_ssrc[packet.ssrc] = clock.current_datetime()",
             "StreamStatistics(codec.clockRate)", "self.__remote_streams[packet.ssrc].add(packet)",
             "packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)",
             "self.__nack_generator.add(packet)", "sorted(self.__nack_generator.missing)",
             "packet._data = depayload(codec, packet.payload)",
             "pli_flag, encoded_frame = self.__jitter_buffer.add(packet)",
             "if self.__decoder_error.is_set():", "await self._send_rtcp_pli(packet.ssrc)",
             "self.__timestamp_mapper.map(", "self.__decoder_queue.put((codec, encoded_frame))")
    positions = [handle.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    # Its RTCP: what _send_rtcp_nack and _send_rtcp_pli build, from the receiver's RTCP SSRC.
    receiver_class = aiortc.rtcrtpreceiver.RTCRtpReceiver
    assert "ssrc=self.__rtcp_ssrc, media_ssrc=media_ssrc" in inspect.getsource(
        receiver_class._send_rtcp_nack)
    assert "fmt=RTCP_PSFB_PLI, ssrc=self.__rtcp_ssrc" in inspect.getsource(
        receiver_class._send_rtcp_pli)
    assert "data = self._tx_srtp.protect_rtcp(data)" in inspect.getsource(dtls._send_rtp)


@pytest.mark.parametrize("loop_kind", event_loop.LOOPS)
def test_inline_receive_takes_a_connected_peers_packets_to_the_taps(loop_kind: str) -> None:
    # On both loops a serving process may run on: uvloop's UDP transport must call the
    # protocol instance's shadowed datagram_received as asyncio's does.
    loop = event_loop.new_loop(loop_kind)
    try:
        loop.run_until_complete(_inline_receive_takes_a_connected_peers_packets_to_the_taps())
    finally:
        loop.close()


async def _connect(offerer: aiortc.RTCPeerConnection, answerer: aiortc.RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    for _ in range(100):
        if offerer.connectionState == "connected":
            break
        await asyncio.sleep(0.05)


async def _inline_receive_takes_a_connected_peers_packets_to_the_taps() -> None:
    sender_pc, receiver_pc = aiortc.RTCPeerConnection(), aiortc.RTCPeerConnection()
    try:
        sender_pc.addTrack(aiortc.mediastreams.AudioStreamTrack())
        receiver = receiver_pc.addTransceiver("audio", direction="recvonly").receiver
        passthrough.use_native_parts(receiver)
        # Not connected yet: nothing changes.
        assert passthrough.receive_inline(receiver.transport) is False
        # Each packet's sequence number, and whether the inline handler (not aiortc's queue and
        # coroutines) called the tap.
        seen: list[tuple[int, bool]] = []
        passthrough.forward_rtp(receiver, lambda packet, codec: seen.append(
            (packet.sequence_number, _called_from_inline_receive())))
        await _connect(receiver_pc, sender_pc)
        dtls = receiver.transport
        assert passthrough.receive_inline(dtls) is True
        assert passthrough.receive_inline(dtls) is True  # once is enough
        pair = dtls.transport._connection._nominated[1]
        assert "datagram_received" in vars(pair.protocol)
        received = dtls._RTCDtlsTransport__rx_packets  # type: ignore[attr-defined]
        before = len(seen)
        await asyncio.sleep(0.5)
        # 20 ms packets: about 25 went through the taps, counted by the transport, and on to the
        # receiver's own bookkeeping (its statistics and the track's queue).
        assert len(seen) - before >= 10
        assert all(inline for _, inline in seen[before + 1:])
        assert dtls._RTCDtlsTransport__rx_packets - received >= 10  # type: ignore[attr-defined]
        streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        assert streams and all(isinstance(stream, rooms._native.StreamStatistics)
                               for stream in streams.values())
        # What the receiver's reports and getStats read of each, the native statistics have.
        read = set(re.findall(r"\bstream\.(\w+)",
                              inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver)))
        assert {"fraction_lost", "packets_lost", "max_seq", "jitter", "packets_received"} <= read
        stream = next(iter(streams.values()))
        for name in read:
            assert isinstance(getattr(stream, name), int), name
        track = receiver.track
        assert isinstance(await asyncio.wait_for(track.recv(), 1.0), av.Packet)
    finally:
        await sender_pc.close()
        await receiver_pc.close()


async def test_inline_receive_gives_a_known_source_to_the_c_path_until_a_tap_comes(
        loopback_candidates: None) -> None:
    sender_pc, receiver_pc = aiortc.RTCPeerConnection(), aiortc.RTCPeerConnection()
    try:
        sender_pc.addTrack(aiortc.mediastreams.AudioStreamTrack())
        receiver = receiver_pc.addTransceiver("audio", direction="recvonly").receiver
        passthrough.decode_inline(receiver)
        passthrough.use_native_parts(receiver)
        passthrough.forward_legs(receiver, [])
        await _connect(receiver_pc, sender_pc)
        dtls = receiver.transport
        assert passthrough.receive_inline(dtls) is True
        await asyncio.sleep(0.5)
        inbound = passthrough._inbounds[dtls]
        (ssrc, route), = inbound.routes.items()
        assert isinstance(route, rooms._native.Route) and route.packets >= 10
        statistics = receiver._RTCRtpReceiver__remote_streams[ssrc]  # type: ignore[attr-defined]
        counted = statistics.packets_received
        await asyncio.sleep(0.3)
        assert statistics.packets_received - counted >= 5  # the C path keeps the statistics
        assert isinstance(await asyncio.wait_for(receiver.track.recv(), 1.0), av.Packet)
        # aiortc's own sends (its reports) go out on the transport's sink, counted (18.).
        assert "_send_rtp" in vars(dtls)
        sent = dtls._RTCDtlsTransport__tx_packets  # type: ignore[attr-defined]
        await dtls._send_rtp(bytes(aiortc.rtp.RtcpRrPacket(ssrc=1)))
        assert dtls._RTCDtlsTransport__tx_packets == sent + 1  # type: ignore[attr-defined]
        # A tap that only Python runs: the source goes back to the Python path.
        seen: list[bool] = []
        passthrough.forward_rtp(receiver, lambda packet, codec: seen.append(
            _called_from_inline_receive()))
        await asyncio.sleep(0.3)
        assert inbound.routes == {ssrc: None} and len(seen) >= 5 and all(seen)
        await receiver_pc.close()
        with pytest.raises(ConnectionError):
            await dtls._send_rtp(bytes(aiortc.rtp.RtcpRrPacket(ssrc=1)))
    finally:
        await sender_pc.close()
        await receiver_pc.close()


def _called_from_inline_receive() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "receive_rtp" and code.co_filename == passthrough.__file__:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def test_receiver_registration_still_leaves_rtx_ssrcs_to_be_learned() -> None:
    # The method as aiortc wrote it (install() replaces it on the class).
    original = passthrough._original_register_rtp_receiver \
        or aiortc.rtcdtlstransport.RTCDtlsTransport._register_rtp_receiver
    source = inspect.getsource(original)
    assert "ssrcs.add(encoding.ssrc)" in source and "rtx" not in source
    assert "ssrc_table" in inspect.getsource(aiortc.rtcdtlstransport.RtpRouter.route_rtp)


async def test_rtx_ssrcs_of_two_video_tracks_route_to_their_receivers(
        loopback_candidates: None) -> None:
    """A camera and a screen on one connection (the same RTX payload type): each track's
    retransmission SSRC is known to the router before any retransmission comes (13.)."""
    passthrough.install(("127.0.0.1",))
    sending, receiving = aiortc.RTCPeerConnection(), aiortc.RTCPeerConnection()
    try:
        for _ in range(2):
            sending.addTrack(aiortc.mediastreams.VideoStreamTrack())
        await sending.setLocalDescription(await sending.createOffer())
        await receiving.setRemoteDescription(sending.localDescription)
        await receiving.setLocalDescription(await receiving.createAnswer())
        await sending.setRemoteDescription(receiving.localDescription)
        senders = [t.sender for t in sending.getTransceivers()]
        receivers = [t.receiver for t in receiving.getTransceivers()]
        for _ in range(100):
            if all(r._RTCRtpReceiver__started for r in receivers):  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
        router = receivers[0].transport._rtp_router
        for sender, receiver in zip(senders, receivers, strict=True):
            assert router.ssrc_table[sender._ssrc] is receiver
            assert router.ssrc_table[sender._rtx_ssrc] is receiver
        # A third track's first packets, before its receiver is registered: the camera's
        # receiver (the same payload type, its SSRCs declared) does not learn them.
        payload_type = receivers[0]._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        video = next(pt for pt, c in payload_type.items() if c.name.lower() == "vp8")
        router.unregister_receiver(receivers[1])  # one receiver left with the payload type
        early = aiortc.rtp.RtpPacket(payload_type=video, ssrc=4242)
        assert router.route_rtp(early) is None
        assert 4242 not in router.ssrc_table
        camera = aiortc.rtp.RtpPacket(payload_type=video, ssrc=senders[0]._ssrc)
        assert router.route_rtp(camera) is receivers[0]
    finally:
        await sending.close()
        await receiving.close()


def test_a_receiver_without_declared_ssrcs_still_learns_them() -> None:
    passthrough.install(("127.0.0.1",))
    router = aiortc.rtcdtlstransport.RtpRouter()
    receiver = object()
    router.register_receiver(receiver, ssrcs=[], payload_types=[96])  # type: ignore[arg-type]
    assert router.route_rtp(aiortc.rtp.RtpPacket(payload_type=96, ssrc=77)) is receiver
    assert router.ssrc_table[77] is receiver
    assert router.route_rtp(aiortc.rtp.RtpPacket(payload_type=100, ssrc=77)) is None


async def test_run_now_runs_a_coroutine_in_the_call_and_resumes_one_that_waits(
        caplog: pytest.LogCaptureFixture) -> None:
    steps: list[str] = []

    async def quick() -> None:
        steps.append("quick")

    passthrough.run_now(quick())
    assert steps == ["quick"]  # done within the call

    waited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def slow() -> None:
        steps.append("before")
        steps.append(f"got {await waited}")
        await asyncio.sleep(0)
        steps.append("after")

    passthrough.run_now(slow())
    assert steps == ["quick", "before"]
    waited.set_result(5)
    for _ in range(5):
        await asyncio.sleep(0)
    assert steps == ["quick", "before", "got 5", "after"]

    async def broken() -> None:
        raise RuntimeError("a handler that fails")

    passthrough.run_now(broken())
    assert "a handler that fails" in caplog.text
