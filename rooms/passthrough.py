"""Pass-through hooks into aiortc 1.16.0: forward encoded media, never decode and re-encode it.

aiortc is pinned in pyproject.toml because these hooks touch private names; tests/rooms/
test_passthrough.py fails if any of them moves. What is replaced, and why:

1. ``aiortc.rtcrtpreceiver.get_decoder``: the receiver's decoder thread calls it once per codec and
   then ``decoder.decode(encoded_frame)`` for every reassembled frame. Our "decoder" returns the
   frame as one ``av.Packet`` (pts = RTP timestamp, time base = 1/clock rate, keyframe flag set), so
   ``RemoteStreamTrack.recv()`` yields packets. ``RTCRtpSender._next_encoded_frame`` calls
   ``encoder.pack(packet)`` for anything that is not a decoded ``Frame`` (VP8, H.264 and Opus
   encoders all have ``pack``), so a forwarded packet is re-packetized, never re-encoded.
   H.264 (``media.video_codec = "h264"``): aiortc's depayloader hands over the access unit in
   Annex B (a 00 00 00 01 start code before every NAL unit, STAP-A and FU-A undone); it is a
   keyframe when it holds an IDR slice or an SPS, and ``H264Encoder.pack`` splits it at the start
   codes again and packetizes it (single NAL units, STAP-A, FU-A: packetization-mode 1).
2. ``aioice.ice.get_host_addresses``: aioice leaves 127.0.0.1 out of its host candidates; the server
   announces exactly ``MediaConfig.announce_addresses`` instead.
3. Keyframe requests: a subscriber's PLI/FIR makes ``RTCRtpSender`` call ``self._send_keyframe()``,
   which only sets a flag for the encoder, lost on the pack path. ``relay_keyframe_requests``
   shadows that method on one sender instance so the request reaches the publisher instead.
4. The publisher's SSRCs: ``RTCRtpReceiver.getSynchronizationSources()`` lists every SSRC heard in
   the last 10 s, RTX ones included (Chromium sends RTX padding to probe the bandwidth early in a
   call, and retransmissions on loss, often before its first media packet). A PLI must name the
   media SSRC: Chromium ignores one addressed to its RTX SSRC. ``media_sources`` leaves the RTX
   SSRCs out, read from the receiver's private RTX-to-media map.
5. Direction changes: ``RTCRtpTransceiver._setCurrentDirection`` sets ``receiver._enabled``, and
   ``RTCRtpReceiver._handle_rtp_packet`` drops every packet while it is False, before the NACK
   generator and the jitter buffer see it. The two ends apply a description at different moments
   and RTP does not wait for signaling, so a packet sent just as a transceiver goes inactive or
   comes back (a screen share stopped or started again) can be dropped: the video jitter buffer
   (512 packets) then holds every later packet waiting for that sequence number, and the track
   delivers nothing for 512 packets (many seconds, minutes for a still screen). ``keep_receiving``
   makes one receiver take every packet whatever the direction; what an inactive peer sends is
   nothing anyway.
6. Audio levels (RFC 6464, ``urn:ietf:params:rtp-hdrext:ssrc-audio-level``, which aiortc offers on
   every audio m-line): the receiver parses the extension into ``packet.extensions.audio_level``
   and then drops it, since frames carry no level. ``watch_audio_levels`` adds a tap (8.) on one
   receiver to see each packet's level first.
7. Forwarded audio keeps its level: ``RTCRtpSender`` writes the extension only from
   ``RTCEncodedFrame.audio_level``, which it computes for decoded frames and leaves None on the
   pack path. ``forward_audio_levels`` shadows ``_next_encoded_frame`` on one sender instance and
   fills the level in from the packet just read. A forwarded packet's pts is its RTP timestamp
   less the receiver's first one (``TimestampMapper``): ``rtp_timestamp`` adds that origin back,
   read from the receiver's private mapper, to find the packet's level.
8. Taps: ``forward_rtp`` (RTP-level forwarding, ``media.forwarding = "rtp"``, rooms/rtp_forward.py)
   and ``watch_audio_levels`` (6.) add a synchronous tap on one receiver that sees each decrypted
   media packet before the jitter buffer, RTX undone with the receiver's private codec map
   (``__codecs``) and RTX-to-media map (``__rtx_ssrc``). A packet taken on aiortc's own path
   (before 14. is in place) reaches the taps through ``_handle_rtp_packet``, shadowed on that
   receiver instance; the original still runs after them.
9. A subscriber's leg sends through ``RTCRtpSender``'s own pieces: ``capture_send_parameters``
   shadows ``send`` on one sender instance to see its negotiated codecs, mid and header
   extension ids (the leg writes its packets' bytes itself, only the extensions negotiated); the
   packet goes out through ``sender.transport._send_rtp`` (SRTP, then ICE), as the sender's own
   loop does.
10. Sender reports: the sender's ``_run_rtcp`` loop reports its private ``__ntp_timestamp``,
   ``__rtp_timestamp``, ``__packet_count`` and ``__octet_count``; ``report_leg`` makes one
   sender instance a subclass whose properties of those names read what its leg's
   ``LegWriter`` counts (``rooms._native.forward`` keeps them in C, with no Python per packet).
   NACKs: ``RTCRtpSender._handle_rtcp_packet`` awaits
   ``self._retransmit(seq)`` for each lost sequence number; ``answer_nacks`` shadows it on one
   sender instance so the leg answers from its own cache of rewritten packets.
11. Frames without the decoder thread: ``RTCRtpReceiver.receive`` starts a thread that takes each
   reassembled frame from the private ``__decoder_queue`` (a ``queue.Queue``), "decodes" it (1.)
   and hands the result back to the event loop with ``run_coroutine_threadsafe``: per frame a lock
   handoff, a GIL switch, a task and a self-pipe wake-up, for a decode that only wraps bytes in an
   ``av.Packet``. ``decode_inline`` replaces that queue on one receiver before it starts: its
   ``put`` wraps the frame at once, in the event loop's thread, into the track's queue; the thread
   still runs, blocked on ``get``, which yields only the stop (None) that ``__stop_decoder`` puts,
   so the track still ends as before. ``deliver_frames`` goes one step further for RTP-level
   forwarding, where nothing but the recording reads the track: the queue's ``put`` hands each
   packet straight to the recorder, with no asyncio queue and no reader task woken per frame;
   the packets already in the track's private ``_queue`` go first.
12. Sending without coroutines: ``RTCDtlsTransport._send_rtp`` protects a packet with its private
   ``_tx_srtp`` session (when ``_state`` is connected) and awaits its ICE transport's ``_send``,
   which is aioice's ``Connection.send`` → ``sendto`` → the nominated pair's (``_nominated[1]``)
   ``protocol.send_data`` → the datagram transport's ``sendto``: four coroutines for one
   synchronous system call. ``rtp_sink`` does the same steps without them, in C
   (``rooms._native.RtpSink``, rooms/native/sink.c), keeping the transport's private
   ``__tx_bytes`` and ``__tx_packets`` (its getStats) up to date. It reads ``_state``,
   ``_nominated[1]``, the pair's ``protocol.transport`` and ``_tx_srtp`` again on every send, so
   a closed, restarted or re-keyed transport is never written to with what it had before.
13. Retransmissions routed after a second video track: ``RTCDtlsTransport.
   _register_rtp_receiver`` gives its ``RtpRouter`` a receiver's media SSRCs and payload types,
   not the RTX SSRC the description pairs with them (``a=ssrc-group:FID``, which aiortc keeps in
   ``encodings[].rtx.ssrc``). The router learns an unknown SSRC from its first packet only while
   exactly one receiver has that payload type; once a screen share adds a second video receiver
   with the same RTX payload type, the camera's retransmissions (if none came before) are
   dropped for good, a lost camera packet is never repaired, and aiortc's jitter buffer (the
   recording's, a Python peer's) holds the camera for hundreds of packets.
   ``_register_rtp_receiver`` is replaced so that the RTX SSRCs are registered too.
   The same learning misroutes the other way: a publisher starts sending a new track (a screen
   share) as soon as it has applied its answer, before the server has applied it and registered
   the new receiver, and while one receiver (the camera) has that payload type the router
   learns the new SSRC for the camera. The camera's leg then follows the new source and drops
   the camera's own packets as a source it left; the recording mixes both. ``RtpRouter.
   route_rtp`` is replaced with the same rules, except that an unknown SSRC is never learned
   for a receiver whose description declared its SSRCs: such a packet waits (is dropped) until
   its own receiver is registered.
14. Receiving without the queue: aioice's ``StunProtocol.datagram_received`` hands every datagram
   that is not STUN to ``Connection.data_received``, which puts it on an ``asyncio.Queue``; the
   DTLS transport's ``__run`` task awaits it, unprotects it with its private ``_rx_srtp``, parses
   it with the transport's ``_rtp_header_extensions_map``, routes it with ``_rtp_router`` and
   awaits ``receiver._handle_rtp_packet``: a queue, a task wake-up and four coroutines per packet.
   ``receive_inline`` shadows ``datagram_received`` on the nominated pair's (``_nominated[1]``)
   protocol instance once the transport is connected: SRTP (first byte 128-191) that is not SRTCP
   (second byte 192-223, RFC 5761) is unprotected, counted in the transport's private
   ``__rx_bytes``/``__rx_packets`` (its getStats), parsed once, routed (13.), and handled at once
   by ``_Receiving.receive``, which does what ``_handle_rtp_packet`` does, with the receiver's
   private pieces and without coroutines: the taps (8.), the ``_enabled`` check (5.), the REMB
   estimator (``__remote_bitrate_estimator``: Chromium's publishers have no transport-cc with
   aiortc, so REMB is the only delay-based limit on what they send), the active sources
   (``__active_ssrc``, 4.), the statistics of the receiver reports (``__remote_streams``), NACKs
   (``__nack_generator``), the jitter buffer and depacketizer (``__jitter_buffer``, once per track:
   the recording's frames) with its PLIs, and the frames handed to ``__decoder_queue`` through
   ``__timestamp_mapper`` (11.). Its RTCP (REMB, NACK, PLI, from ``__rtcp_ssrc``) goes out as 12.
   does, SRTCP-protected. STUN and DTLS keep aiortc's path; SRTCP is 18.'s.
15. The receive bookkeeping in C (rooms/native/rate.c, jitter.c and stats.c): each video
   receiver keeps an ``aiortc.rate.RemoteBitrateEstimator`` in its private
   ``__remote_bitrate_estimator`` and a ``NackGenerator`` in ``__nack_generator``, and every
   receiver a ``JitterBuffer`` in ``__jitter_buffer`` and a ``StreamStatistics`` per source in
   ``__remote_streams``; ``_handle_rtp_packet`` and 14. call their ``add`` for every packet, in
   Python arithmetic that costs more than anything else the receive path does per packet.
   ``use_native_parts`` puts ``rooms._native``'s estimator, NACK generator and jitter buffer in
   their place (the jitter buffer with the same capacity, prefetch and video flag, read from
   aiortc's private ``_capacity``, ``_prefetch`` and ``_is_video``) before the receiver takes
   a packet, and ``__remote_streams`` by a dict that stores ``rooms._native.StreamStatistics``
   for each new source (the receiver's RTCP loop and getStats read the same attributes); 14.
   strips VP8 payload
   descriptors with ``rooms._native.vp8_depayload``: the same rules in the same arithmetic, so
   the same REMBs, reports, NACKs and frames (tests/rooms/test_native_rate.py, test_native_
   jitter.py and test_native_stats.py feed both the same packets).
16. SRTP without pylibsrtp's Python wrapper: ``pylibsrtp.Session.protect`` and ``unprotect``
   copy each packet into a cffi buffer and out again in Python around libsrtp's call.
   ``native_srtp`` wraps a session in ``rooms._native.Srtp``, which calls libsrtp's
   ``srtp_protect``, ``srtp_unprotect`` and ``srtp_protect_rtcp`` itself, through the addresses
   pylibsrtp's cffi library (``pylibsrtp._binding``) gives, on the libsrtp session the
   pylibsrtp session made (its private ``_srtp``, a ``srtp_t *``): the same limits, bytes and
   errors (tests/rooms/test_native_srtp.py). 12. and 14. use it for the transport's
   ``_tx_srtp`` and ``_rx_srtp``. The functions' C signature is checked first (libsrtp 2's:
   session, buffer, length pointer).
17. The receive path in C for the sources it knows: 14.'s ``datagram_received`` is a
   ``rooms._native.Inbound`` (rooms/native/inbound.c). It passes STUN, DTLS, SRTCP and
   everything while the transport is not connected to aioice's, counts and unprotects the
   rest, and reads its RTP header and extensions as ``RtpPacket.parse`` does. A packet of a
   source in its ``routes`` (a ``rooms._native.Route``, with the payload type the route was
   made for, and still the same receiver's in the router's ``ssrc_table`` and
   ``payload_type_table``) is handled there, in ``_Receiving.receive``'s order: the legs
   (``forward_legs``, 8.) and the audio level tap (6.), the ``_enabled`` check (5.), and the
   estimator, statistics, NACK generator, VP8 depacketizer and jitter buffer of 15. in C;
   Python is called only to send a REMB, NACK or PLI, to log a tap's failure, and with each
   reassembled frame (``_Receiving.deliver``). The last-heard time in ``__active_ssrc`` is
   written every 0.5 s instead of at every packet (getSynchronizationSources looks 10 s back).
   Every other packet goes to the Python path (``receive_rtp``: parse, route, receive), which
   then gives its source a route, or None to keep it, when the receiver's taps are only
   ``forward_legs`` and one level watcher, its codec is not RTX or H.264 (depacketized in
   Python) and its bookkeeping is 15.'s. The routes are forgotten when a receiver is
   registered (a renegotiation) or its taps change. Anything aiortc's parser would refuse
   (truncated extensions, bad padding, an abs-send-time not 3 bytes, a mid that is not UTF-8)
   takes the Python path, which drops it (tests/rooms/test_native_inbound.py).
18. RTCP without the queue: an SRTCP datagram (second byte 192-208, as aiortc's ``is_rtcp``)
   took aioice's path too (14.): a STUN parse that fails, the queue, the DTLS transport's task,
   pylibsrtp's ``unprotect_rtcp``. 17. unprotects it in C and hands it to the transport's own
   ``_handle_rtcp_data`` (parse, route, each recipient's ``_handle_rtcp_packet``), run at once
   by ``run_now``: the handlers of aiortc's receivers and of the legs' senders await nothing
   that waits (a leg's ``_retransmit`` sends synchronously), so the coroutine ends within the
   call; one that does wait goes on as a task's would, when what it waits for is done.
   The other way, aiortc's own sends (``RTCDtlsTransport._send_rtp``: its senders' and
   receivers' reports, and its RTP on the frame path) are shadowed on the transport instance
   by a coroutine that sends on the transport's ``RtpSink`` (12.) without awaiting anything:
   the same ``ConnectionError`` when the transport is not connected.

The hooks are process-wide: every RTCPeerConnection in the process, including the Python
participant of rooms/client.py when it runs in the same process, receives packets, not frames.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import queue
import struct
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from fractions import Fraction
from typing import Any, cast

import aioice.ice
import aiortc.rtcrtpreceiver
import av
import pylibsrtp
from aiortc import clock
from aiortc.codecs import depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    unwrap_rtx,
)

from recordings.codecs import h264_is_keyframe, vp8_is_keyframe
from rooms._native import (
    FEEDBACK_ERROR,
    FEEDBACK_NACK,
    FEEDBACK_PLI,
    FEEDBACK_REMB,
    Inbound,
    LegWriter,
    Route,
    RtpSink,
    forward,
    vp8_depayload,
)
from rooms._native import JitterBuffer as NativeJitterBuffer
from rooms._native import NackGenerator as NativeNackGenerator
from rooms._native import RemoteBitrateEstimator as NativeEstimator
from rooms._native import Srtp as NativeSrtp
from rooms._native import StreamStatistics as NativeStatistics
from rooms.config import MediaConfig

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"

_original_get_decoder: Callable[[RTCRtpCodecParameters], Any] | None = None
_original_get_host_addresses: Callable[[bool, bool], list[str]] | None = None
_original_register_rtp_receiver: Callable[..., None] | None = None
_original_route_rtp: Callable[..., Any] | None = None
# Receivers whose remote description declared their SSRCs (13. above).
_declared: weakref.WeakSet[Any] = weakref.WeakSet()
_announce: tuple[str, ...] = ()
_MISSING = object()


class PacketDecoder:
    """Stands in for an aiortc decoder: turns each reassembled encoded frame into one av.Packet."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.codec_name = codec.name.lower()
        self.time_base = Fraction(1, codec.clockRate)
        self._is_keyframe: Callable[[bytes], bool]
        if self.codec_name == "vp8":
            self._is_keyframe = vp8_is_keyframe
        elif self.codec_name == "h264":
            self._is_keyframe = h264_is_keyframe
        else:
            # Audio: every packet can be decoded on its own.
            self._is_keyframe = _always

    def decode(self, encoded_frame: Any) -> list[av.Packet]:
        data: bytes = encoded_frame.data
        if not data:
            return []
        packet = av.Packet(data)
        packet.pts = encoded_frame.timestamp
        packet.dts = encoded_frame.timestamp
        packet.time_base = self.time_base
        packet.is_keyframe = self._is_keyframe(data)
        return [packet]


class _InlineDecoderQueue:
    """A receiver's decoder queue that decodes (1.) as frames are put (see 11. above)."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self._receiver = receiver
        self._stop: queue.Queue[None] = queue.Queue()
        self._decoder: PacketDecoder | None = None
        self._codec: RTCRtpCodecParameters | None = None
        # deliver_frames: each packet goes to this callable instead of the track's queue.
        self.sink: Callable[[av.Packet], None] | None = None

    def put(self, item: tuple[RTCRtpCodecParameters, Any] | None) -> None:
        if item is None:
            self._stop.put(None)
            return
        codec, encoded_frame = item
        decoder = self._decoder
        if codec is not self._codec or decoder is None:
            # The codec objects change only on renegotiation: compare names then.
            if decoder is None or decoder.codec_name != codec.name.lower():
                decoder = self._decoder = PacketDecoder(codec)
            self._codec = codec
        sink = self.sink
        if sink is None:
            sink = self._receiver.track._queue.put_nowait  # type: ignore[attr-defined]
        for packet in decoder.decode(encoded_frame):
            sink(packet)

    def get(self) -> None:
        """The decoder thread's: it waits here for the stop."""
        return self._stop.get()


_DECODER_QUEUE_ATTRIBUTE = "_RTCRtpReceiver__decoder_queue"


def decode_inline(receiver: RTCRtpReceiver) -> None:
    """Hand ``receiver``'s frames to its track in the event loop's thread (see 11. above); call it
    before the receiver starts (before the description that starts it is applied). The track,
    made when a remote description is applied, is read at each frame."""
    current = getattr(receiver, _DECODER_QUEUE_ATTRIBUTE, None)
    if isinstance(current, _InlineDecoderQueue):
        return
    if not isinstance(current, queue.Queue):
        raise RuntimeError("aiortc RTCRtpReceiver has no decoder queue: the inline decoding "
                           "hook is broken")
    if getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is not None:
        raise RuntimeError("decode_inline: the receiver has started already")
    setattr(receiver, _DECODER_QUEUE_ATTRIBUTE, _InlineDecoderQueue(receiver))


def deliver_frames(receiver: RTCRtpReceiver, sink: Callable[[av.Packet], None]) -> None:
    """Hand each packet of ``receiver`` to ``sink`` as its frame is reassembled, in the event
    loop's thread, instead of to its track's queue (see 11. above): the packets already queued
    first, in order. No task reads the track then; ``decode_inline`` must be in place."""
    inline = getattr(receiver, _DECODER_QUEUE_ATTRIBUTE, None)
    if not isinstance(inline, _InlineDecoderQueue):
        raise RuntimeError("deliver_frames: the receiver does not decode inline")
    waiting = receiver.track._queue  # type: ignore[attr-defined]
    while not waiting.empty():
        packet = waiting.get_nowait()
        if isinstance(packet, av.Packet):
            sink(packet)
    inline.sink = sink


_ESTIMATOR_ATTRIBUTE = "_RTCRtpReceiver__remote_bitrate_estimator"
_JITTER_BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"
_NACK_GENERATOR_ATTRIBUTE = "_RTCRtpReceiver__nack_generator"
_STREAMS_ATTRIBUTE = "_RTCRtpReceiver__remote_streams"


class _NativeStreams(dict[int, Any]):
    """A receiver's ``__remote_streams`` whose new entries are rooms._native.StreamStatistics:
    aiortc's ``_handle_rtp_packet`` stores a fresh ``StreamStatistics(codec.clockRate)`` for
    each new source (before 14. takes over), and this keeps its clock rate only."""

    def __setitem__(self, ssrc: int, statistics: Any) -> None:
        if isinstance(statistics, StreamStatistics) and statistics.packets_received == 0:
            statistics = NativeStatistics(statistics._clockrate)
        super().__setitem__(ssrc, statistics)


def use_native_parts(receiver: RTCRtpReceiver) -> None:
    """Give ``receiver`` the bandwidth estimator and NACK generator (video only: audio has
    neither) and the jitter buffer in C (see 15. above); call it before the receiver takes its
    first packet."""
    estimator = getattr(receiver, _ESTIMATOR_ATTRIBUTE, _MISSING)
    nacks = getattr(receiver, _NACK_GENERATOR_ATTRIBUTE, _MISSING)
    streams = getattr(receiver, _STREAMS_ATTRIBUTE, _MISSING)
    buffer = getattr(receiver, _JITTER_BUFFER_ATTRIBUTE, _MISSING)
    if isinstance(buffer, NativeJitterBuffer):
        return
    if (not isinstance(estimator, RemoteBitrateEstimator | None)
            or not isinstance(nacks, aiortc.rtcrtpreceiver.NackGenerator | None)
            or not isinstance(streams, dict) or not hasattr(StreamStatistics(1), "_clockrate")
            or not isinstance(buffer, JitterBuffer)
            or not all(hasattr(buffer, name) for name in ("_capacity", "_prefetch", "_is_video"))):
        raise RuntimeError("aiortc RTCRtpReceiver has no remote bitrate estimator, NACK "
                           "generator, statistics or jitter buffer: the native receive hook is "
                           "broken")
    if estimator is not None:
        setattr(receiver, _ESTIMATOR_ATTRIBUTE, NativeEstimator())
    if nacks is not None:
        setattr(receiver, _NACK_GENERATOR_ATTRIBUTE, NativeNackGenerator())
    setattr(receiver, _STREAMS_ATTRIBUTE, _NativeStreams(streams))
    setattr(receiver, _JITTER_BUFFER_ATTRIBUTE, NativeJitterBuffer(
        capacity=buffer._capacity, prefetch=buffer._prefetch, is_video=buffer._is_video))


def _always(data: bytes) -> bool:
    return True


def _get_decoder(codec: RTCRtpCodecParameters) -> PacketDecoder:
    return PacketDecoder(codec)


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addresses = []
    for address in _announce:
        version = ipaddress.ip_address(address).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            addresses.append(address)
    return addresses


def _register_rtp_receiver(transport: RTCDtlsTransport, receiver: Any,
                           parameters: RTCRtpReceiveParameters) -> None:
    """aiortc's registration, and the RTX SSRCs of ``parameters`` (see 13. above)."""
    assert _original_register_rtp_receiver is not None
    _original_register_rtp_receiver(transport, receiver, parameters)
    inbound = _inbounds.get(transport)
    if inbound is not None:
        inbound.routes.clear()  # a renegotiation: the C path learns its sources again (17.)
    if parameters.encodings:
        _declared.add(receiver)
    for encoding in parameters.encodings:
        if encoding.rtx is not None:
            transport._rtp_router.ssrc_table[encoding.rtx.ssrc] = receiver


def _route_rtp(router: RtpRouter, packet: RtpPacket) -> Any:
    """aiortc's routing, without learning an SSRC for a receiver that declared its own."""
    receiver = router.ssrc_table.get(packet.ssrc)
    by_type = router.payload_type_table.get(packet.payload_type, set())
    if receiver is not None:
        return receiver if receiver in by_type else None
    if len(by_type) == 1:
        (only,) = by_type
        if only not in _declared:
            router.ssrc_table[packet.ssrc] = only
            return only
    return None


def install(media: MediaConfig | Sequence[str]) -> None:
    """Install the hooks (idempotent); a later call only changes the announced addresses.

    ``media`` is the MediaConfig (its ``announce_addresses`` are used) or the addresses themselves.
    """
    global _original_get_decoder, _original_get_host_addresses, _announce
    global _original_register_rtp_receiver, _original_route_rtp
    import aiortc

    announce_addresses = media.announce_addresses if isinstance(media, MediaConfig) else media

    if aiortc.__version__ != AIORTC_VERSION:
        raise RuntimeError(
            f"rooms.passthrough is written for aiortc {AIORTC_VERSION}, found {aiortc.__version__}"
        )
    for address in announce_addresses:
        ipaddress.ip_address(address)
    _announce = tuple(announce_addresses)
    if _original_get_decoder is None:
        _original_get_decoder = aiortc.rtcrtpreceiver.get_decoder
        aiortc.rtcrtpreceiver.get_decoder = _get_decoder  # type: ignore[assignment]
    if _original_get_host_addresses is None:
        _original_get_host_addresses = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = _get_host_addresses
    if _original_register_rtp_receiver is None:
        _original_register_rtp_receiver = RTCDtlsTransport._register_rtp_receiver
        RTCDtlsTransport._register_rtp_receiver = _register_rtp_receiver  # type: ignore[method-assign,assignment]
    if _original_route_rtp is None:
        _original_route_rtp = RtpRouter.route_rtp
        RtpRouter.route_rtp = _route_rtp  # type: ignore[method-assign,assignment]
    logger.info("pass-through hooks installed, announcing %s", ", ".join(_announce))


def installed() -> bool:
    return aiortc.rtcrtpreceiver.get_decoder is _get_decoder  # type: ignore[comparison-overlap]


def uninstall() -> None:
    """Restore aiortc's own decoder, receiver registration and aioice's host addresses (for
    tools that need decoding)."""
    global _original_get_decoder, _original_get_host_addresses, _original_register_rtp_receiver
    global _original_route_rtp
    if _original_get_decoder is not None:
        aiortc.rtcrtpreceiver.get_decoder = _original_get_decoder  # type: ignore[assignment]
        _original_get_decoder = None
    if _original_get_host_addresses is not None:
        aioice.ice.get_host_addresses = _original_get_host_addresses  # type: ignore[assignment]
        _original_get_host_addresses = None
    if _original_register_rtp_receiver is not None:
        RTCDtlsTransport._register_rtp_receiver = _original_register_rtp_receiver  # type: ignore[method-assign]
        _original_register_rtp_receiver = None
    if _original_route_rtp is not None:
        RtpRouter.route_rtp = _original_route_rtp  # type: ignore[method-assign]
        _original_route_rtp = None


def relay_keyframe_requests(sender: RTCRtpSender, request: Callable[[], None]) -> None:
    """Route a subscriber's PLI/FIR on ``sender`` to ``request`` instead of the encoder flag.

    ``RTCRtpSender._handle_rtcp_packet`` calls ``self._send_keyframe()``; an instance attribute
    shadows the method for this sender only.
    """
    if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):
        raise RuntimeError("aiortc RTCRtpSender has no _send_keyframe: the keyframe hook is broken")
    sender._send_keyframe = request  # type: ignore[method-assign]


class _KeepReceiving(RTCRtpReceiver):
    """An RTCRtpReceiver whose ``_enabled`` stays True, whatever the negotiated direction."""

    @property  # type: ignore[override]
    def _enabled(self) -> bool:
        return True

    @_enabled.setter
    def _enabled(self, value: bool) -> None:
        pass


def keep_receiving(receiver: RTCRtpReceiver) -> None:
    """Let ``receiver`` take RTP in every direction (see 5. above): its instance becomes a
    subclass whose ``_enabled`` property shadows the attribute aiortc sets."""
    if type(receiver) is _KeepReceiving:
        return
    if type(receiver) is not RTCRtpReceiver or "_enabled" not in vars(receiver):
        raise RuntimeError("aiortc RTCRtpReceiver has no _enabled flag: the direction hook is "
                           "broken")
    receiver.__class__ = _KeepReceiving


_RTX_SSRC_ATTRIBUTE = "_RTCRtpReceiver__rtx_ssrc"


def media_sources(receiver: RTCRtpReceiver) -> list[int]:
    """The media SSRCs ``receiver`` heard in the last 10 s: its active sources without RTX ones.

    aiortc keeps ``{rtx_ssrc: media_ssrc}`` from the remote description in a private dict.
    """
    rtx_to_media = getattr(receiver, _RTX_SSRC_ATTRIBUTE, None)
    if not isinstance(rtx_to_media, dict):
        raise RuntimeError("aiortc RTCRtpReceiver has no RTX SSRC map: the SSRC hook is broken")
    return [s.source for s in receiver.getSynchronizationSources()
            if s.source not in rtx_to_media]


AudioLevelFn = Callable[[int, int], None]


def watch_audio_levels(receiver: RTCRtpReceiver, on_level: AudioLevelFn) -> None:
    """Call ``on_level(rtp_timestamp, level)`` for each RTP packet ``receiver`` takes that
    carries an audio level (see 6. above); ``level`` is -dBov, 0 loudest to 127 silent."""

    _receiving(receiver).level_watchers.append(on_level)
    _relearn(receiver)


def forward_audio_levels(sender: RTCRtpSender, level: Callable[[], int | None]) -> None:
    """Write the audio level extension on what ``sender`` forwards (see 7. above): ``level()``
    gives the level (-dBov) of the packet the sender's track handed out last, or None."""
    original = getattr(sender, "_next_encoded_frame", None)
    if not callable(original):
        raise RuntimeError("aiortc RTCRtpSender has no _next_encoded_frame: the level hook is "
                           "broken")

    async def next_encoded_frame(codec: RTCRtpCodecParameters) -> Any:
        frame = await original(codec)
        if frame is not None and frame.audio_level is None:
            value = level()
            if value is not None:
                # The sender writes -audio_level (it computes levels as negative dBov).
                frame.audio_level = -value
        return frame

    sender._next_encoded_frame = next_encoded_frame  # type: ignore[method-assign]


_TIMESTAMP_MAPPER_ATTRIBUTE = "_RTCRtpReceiver__timestamp_mapper"


def rtp_timestamp(receiver: RTCRtpReceiver, pts: int) -> int | None:
    """The RTP timestamp of a packet ``receiver`` gave with ``pts`` (see 7. above); None before
    the receiver took its first packet."""
    mapper = getattr(receiver, _TIMESTAMP_MAPPER_ATTRIBUTE, None)
    if mapper is None or not hasattr(mapper, "_origin"):
        raise RuntimeError("aiortc RTCRtpReceiver has no timestamp mapper: the level hook is "
                           "broken")
    origin = mapper._origin
    if origin is None:
        return None
    return int(pts + origin) & 0xFFFFFFFF


RtpTap = Callable[[RtpPacket, RTCRtpCodecParameters], None]
_CODECS_ATTRIBUTE = "_RTCRtpReceiver__codecs"
_RECEIVER = "_RTCRtpReceiver__"
_RECEIVER_PARTS = ("active_ssrc", "codecs", "decoder_error", "decoder_queue", "jitter_buffer",
                   "nack_generator", "remote_bitrate_estimator", "remote_streams", "rtx_ssrc",
                   "timestamp_mapper", "rtcp_ssrc", "kind")
# Read per packet or per frame: spelled out once.
_RTCP_SSRC = _RECEIVER + "rtcp_ssrc"
_DECODER_THREAD = _RECEIVER + "decoder_thread"


class _Receiving:
    """One receiver's taps (8.) and its synchronous handling of a packet (14.)."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        missing = [name for name in _RECEIVER_PARTS if not hasattr(receiver, _RECEIVER + name)]
        if missing or not callable(getattr(receiver, "_handle_rtp_packet", None)):
            raise RuntimeError(f"aiortc RTCRtpReceiver lacks {missing or '_handle_rtp_packet'}: "
                               "the receive hooks are broken")
        self.receiver = receiver
        self.taps: list[RtpTap] = []
        # forward_legs: the legs a forwarder keeps, and their clock; watch_audio_levels's.
        self.legs: list[LegWriter] | None = None
        self.legs_clock: Callable[[], float] = time.monotonic
        self.level_watchers: list[AudioLevelFn] = []
        self._codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, _CODECS_ATTRIBUTE)
        self._rtx_to_media: dict[int, int] = getattr(receiver, _RTX_SSRC_ATTRIBUTE)
        self._active: dict[int, Any] = getattr(receiver, _RECEIVER + "active_ssrc")
        self._streams: dict[int, Any] = getattr(receiver,
                                                             _RECEIVER + "remote_streams")
        self._estimator: Any = getattr(receiver, _RECEIVER + "remote_bitrate_estimator")
        self._nacks: Any = getattr(receiver, _RECEIVER + "nack_generator")
        self._jitter_buffer: Any = getattr(receiver, _RECEIVER + "jitter_buffer")
        self._decoder_error: Any = getattr(receiver, _RECEIVER + "decoder_error")
        self._mapper: Any = getattr(receiver, _RECEIVER + "timestamp_mapper")
        self._video = getattr(receiver, _RECEIVER + "kind") == "video"
        original = receiver._handle_rtp_packet

        async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            # aiortc's own path, before receive_inline (14.) takes over.
            media = self.media(packet)
            if media is not None:
                self.tap(*media)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]

    def media(self, packet: RtpPacket) -> tuple[RtpPacket, RTCRtpCodecParameters] | None:
        """The media packet ``packet`` carries and its codec, RTX undone; None for an unknown
        payload type or RTX source."""
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return None
        if codec.mimeType.lower().endswith("/rtx"):
            media_ssrc = self._rtx_to_media.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if media_ssrc is None or not isinstance(apt, int) or apt not in self._codecs \
                    or len(packet.payload) < 2:
                return None
            return unwrap_rtx(packet, payload_type=apt, ssrc=media_ssrc), self._codecs[apt]
        return packet, codec

    def tap(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> None:
        if not packet.payload:
            return  # padding only (Chromium's bandwidth probes): no media in it
        try:
            if self.legs:
                forward(self.legs, packet, codec, self.legs_clock(), time.time())
            level = packet.extensions.audio_level
            if level is not None:
                for watcher in self.level_watchers:
                    watcher(packet.timestamp, level[1])
        except Exception as exc:
            self._tap_failed(exc)
        for tap in self.taps:
            try:
                tap(packet, codec)
            except Exception as exc:
                self._tap_failed(exc)

    @staticmethod
    def _tap_failed(exc: BaseException) -> None:
        logger.error("an RTP tap failed", exc_info=exc)

    def receive(self, packet: RtpPacket, arrival_time_ms: int, send_rtcp: Callable[[bytes], bool],
                ) -> None:
        """What ``RTCRtpReceiver._handle_rtp_packet`` does with ``packet``, synchronously."""
        receiver = self.receiver
        media = self.media(packet)
        if media is not None:
            self.tap(*media)
        if not receiver._enabled:
            return
        if self._estimator is not None and packet.extensions.abs_send_time is not None:
            remb = self._estimator.add(abs_send_time=packet.extensions.abs_send_time,
                                       arrival_time_ms=arrival_time_ms,
                                       payload_size=len(packet.payload) + packet.padding_size,
                                       ssrc=packet.ssrc)
            if remb is not None:
                self.feedback(send_rtcp, packet.ssrc, FEEDBACK_REMB, remb)
        self._active[packet.ssrc] = clock.current_datetime()
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        statistics = self._streams.get(packet.ssrc)
        if statistics is None:
            statistics = self._streams[packet.ssrc] = NativeStatistics(codec.clockRate)
        statistics.add(packet)
        if media is None:
            return
        packet, codec = media
        if self._nacks is not None and self._nacks.add(packet):
            self.feedback(send_rtcp, packet.ssrc, FEEDBACK_NACK, None)
        payload = packet.payload
        try:
            if not payload:
                data = b""
            elif codec.name == "VP8":
                data = vp8_depayload(payload)
            else:
                data = depayload(codec, payload)
        except ValueError:
            return
        packet._data = data  # type: ignore[attr-defined]
        pli, encoded_frame = self._jitter_buffer.add(packet)
        if self._decoder_error.is_set():
            self._decoder_error.clear()
            pli = pli or self._video  # report the lost picture (RFC 4585 section 6.3.1.1)
        if pli:
            self.feedback(send_rtcp, packet.ssrc, FEEDBACK_PLI, None)
        if encoded_frame is not None:
            self.deliver(codec, encoded_frame)

    def feedback(self, send_rtcp: Callable[[bytes], bool], media_ssrc: int, kind: int,
                 value: Any) -> None:
        """Send the RTCP the bookkeeping asks for: a REMB (``value``: bit rate and SSRCs), a
        NACK of the missing packets, a PLI; or log a tap's exception (``value``)."""
        if kind == FEEDBACK_ERROR:
            self._tap_failed(value)
            return
        rtcp_ssrc: int | None = getattr(self.receiver, _RTCP_SSRC)
        if rtcp_ssrc is None:
            return
        if kind == FEEDBACK_REMB:
            send_rtcp(bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                                           fci=pack_remb_fci(*value))))
        elif kind == FEEDBACK_NACK:
            nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=media_ssrc)
            nack.lost = sorted(self._nacks.missing)
            send_rtcp(bytes(nack))
        elif kind == FEEDBACK_PLI:
            send_rtcp(bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=rtcp_ssrc,
                                           media_ssrc=media_ssrc)))

    def deliver(self, codec: RTCRtpCodecParameters, encoded_frame: Any) -> None:
        """A reassembled frame, to the receiver's decoder queue (11.) once it has started."""
        if getattr(self.receiver, _DECODER_THREAD, None) is not None:
            encoded_frame.timestamp = self._mapper.map(encoded_frame.timestamp)
            getattr(self.receiver, _DECODER_QUEUE_ATTRIBUTE).put((codec, encoded_frame))

    def route(self, packet: RtpPacket, send_rtcp: Callable[[bytes], bool],
              extensions_map: Any) -> Route | None:
        """How the C path (17.) may take the next packets of ``packet``'s source, or None when
        they must stay on this one: other taps, RTX, a codec depacketized in Python (H.264), or
        bookkeeping that is not rooms._native's."""
        codec = self._codecs.get(packet.payload_type)
        statistics = self._streams.get(packet.ssrc)
        if (self.taps or len(self.level_watchers) > 1 or codec is None
                or codec.mimeType.lower() in ("video/h264", "video/rtx", "audio/rtx")
                or not isinstance(statistics, NativeStatistics)
                or not isinstance(self._jitter_buffer, NativeJitterBuffer)
                or not isinstance(self._estimator, NativeEstimator | None)
                or not isinstance(self._nacks, NativeNackGenerator | None)):
            return None
        ids = getattr(extensions_map, "_HeaderExtensionsMap__ids", None)
        if ids is None:
            return None
        return Route(receiver=self.receiver, codec=codec, writers=self.legs,
                     clock=None if self.legs_clock is time.monotonic else self.legs_clock,
                     on_level=self.level_watchers[0] if self.level_watchers else None,
                     estimator=self._estimator, statistics=statistics, nacks=self._nacks,
                     jitter=self._jitter_buffer,
                     on_feedback=functools.partial(self.feedback, send_rtcp, packet.ssrc),
                     on_frame=functools.partial(self.deliver, codec),
                     active=self._active, now_datetime=clock.current_datetime,
                     decoder_error=self._decoder_error, payload_type=packet.payload_type,
                     video=self._video, vp8=codec.mimeType.lower() == "video/vp8",
                     extension_ids=tuple(getattr(ids, name) or 0 for name in _EXTENSION_IDS))


_receivings: weakref.WeakKeyDictionary[RTCRtpReceiver, _Receiving] = weakref.WeakKeyDictionary()


def _receiving(receiver: RTCRtpReceiver) -> _Receiving:
    receiving = _receivings.get(receiver)
    if receiving is None:
        receiving = _receivings[receiver] = _Receiving(receiver)
    return receiving


def forward_rtp(receiver: RTCRtpReceiver, handler: RtpTap) -> None:
    """Call ``handler(packet, codec)`` for each media RTP packet ``receiver`` takes, before its
    jitter buffer (see 8. above): RTX packets unwrapped, padding-only packets left out."""
    _receiving(receiver).taps.append(handler)
    _relearn(receiver)


def forward_legs(receiver: RTCRtpReceiver, legs: list[LegWriter],
                 clock_fn: Callable[[], float] = time.monotonic) -> None:
    """Send each media RTP packet ``receiver`` takes on the live ones of ``legs``
    (``rooms._native.forward``, with ``clock_fn``'s time): as a tap (8.), and from the C path
    (17.). The list is read at each packet: its owner changes it in place."""
    receiving = _receiving(receiver)
    receiving.legs = legs
    receiving.legs_clock = clock_fn
    _relearn(receiver)


def _relearn(receiver: RTCRtpReceiver) -> None:
    """A receiver's taps changed: the C path (17.) learns its sources again."""
    inbound = _inbounds.get(receiver.transport)
    if inbound is not None:
        inbound.routes.clear()


# The header extension ids a Route reads, in its order (aiortc's HeaderExtensionsMap.__ids).
_EXTENSION_IDS = ("mid", "rtp_stream_id", "repaired_rtp_stream_id", "abs_send_time",
                  "transmission_offset", "audio_level", "transport_sequence_number")
_DTLS_COUNTERS = ("_RTCDtlsTransport__tx_bytes", "_RTCDtlsTransport__tx_packets")
_DTLS_RX_COUNTERS = ("_RTCDtlsTransport__rx_bytes", "_RTCDtlsTransport__rx_packets")


def _nominated(dtls: RTCDtlsTransport) -> dict[int, Any]:
    connection = getattr(dtls.transport, "_connection", None)
    nominated = getattr(connection, "_nominated", None)
    if (not isinstance(nominated, dict)
            or not all(isinstance(getattr(dtls, name, None), int)
                       for name in (*_DTLS_COUNTERS, *_DTLS_RX_COUNTERS))
            or not hasattr(dtls, "_tx_srtp") or not hasattr(dtls, "_state")):
        raise RuntimeError("aiortc's DTLS or aioice's connection lacks the names the RTP send "
                           "and receive hooks use: they are broken")
    return nominated


_SRTP_FUNCTIONS = ("srtp_protect", "srtp_unprotect", "srtp_protect_rtcp", "srtp_unprotect_rtcp")
_SRTP_SIGNATURE = "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"


def native_srtp(session: pylibsrtp.Session) -> NativeSrtp:
    """``session``'s protect, unprotect, protect_rtcp and unprotect_rtcp, called in C (see 16.
    above)."""
    from pylibsrtp._binding import ffi, lib

    functions = [ffi.addressof(lib, name) for name in _SRTP_FUNCTIONS]
    srtp = getattr(session, "_srtp", None)
    if (any(ffi.typeof(function).cname != _SRTP_SIGNATURE for function in functions)
            or not isinstance(srtp, ffi.CData)
            or ffi.typeof(srtp).cname != "struct srtp_ctx_t_ * *"):
        raise RuntimeError("pylibsrtp's libsrtp functions or session are not the ones the "
                           "native SRTP hook calls: it is broken")
    return NativeSrtp(session, int(ffi.cast("uintptr_t", srtp[0])),
                      *(int(ffi.cast("uintptr_t", function)) for function in functions))


def rtp_sink(dtls: RTCDtlsTransport) -> RtpSink:
    """A synchronous send on ``dtls`` (see 12. above): its ``send`` (RTP) and ``send_rtcp``
    answer True when the packet went to the socket, False when the transport is not connected
    (yet or any more). Each send reads the transport's state, pair and SRTP session again."""
    return RtpSink(dtls, _nominated(dtls), DtlsState.CONNECTED, native_srtp)


def rtp_sender(sender: RTCRtpSender) -> RtpSink:
    """``rtp_sink`` of ``sender``'s transport. Make it once the sender starts: bundling may give
    the sender another transport before."""
    return rtp_sink(sender.transport)


def receive_inline(dtls: RTCDtlsTransport) -> bool:
    """Take the SRTP arriving on ``dtls``'s nominated ICE pair without aiortc's queue and
    coroutines (see 14. above): False (and nothing changed) until the transport is connected."""
    nominated = _nominated(dtls)
    pair = nominated.get(1)
    rx_srtp = getattr(dtls, "_rx_srtp", None)
    if dtls._state is not DtlsState.CONNECTED or pair is None or rx_srtp is None:
        return False
    protocol = pair.protocol
    if "datagram_received" in vars(protocol):
        return True
    router = dtls._rtp_router
    extensions_map = dtls._rtp_header_extensions_map
    # This transport's receivers: a plain dict is quicker than the weak one, and lives as long.
    receivings: dict[Any, _Receiving] = {}

    def receive_rtp(data: bytes, arrival_time_ms: int) -> None:
        """What the C path (17.) leaves to Python: a decrypted RTP packet, parsed, routed (13.)
        and received; then its source is given a route, or None to stay here."""
        try:
            packet = RtpPacket.parse(data, extensions_map)
        except (ValueError, struct.error):
            return  # as aiortc does: a packet it cannot parse is dropped
        receiver = router.route_rtp(packet)
        receiving = receivings.get(receiver)
        if receiving is None and isinstance(receiver, RTCRtpReceiver):
            receiving = receivings[receiver] = _receiving(receiver)
        if receiving is None:
            return
        receiving.receive(packet, arrival_time_ms, sink.send_rtcp)
        if packet.ssrc not in inbound.routes:
            # None: this source stays here until the routes are learnt again.
            inbound.routes[packet.ssrc] = receiving.route(packet, sink.send_rtcp, extensions_map)

    def receive_rtcp(data: bytes) -> None:
        """A decrypted RTCP datagram, to aiortc's own handling (parse, route, the senders' and
        receivers' handlers), run at once (18.)."""
        run_now(dtls._handle_rtcp_data(data))

    sink = rtp_sink(dtls)

    async def send_rtp(data: bytes) -> None:
        """aiortc's own sends (its senders' and receivers' reports, its RTP on the frame path),
        without the four coroutines (18.)."""
        if dtls._state is not DtlsState.CONNECTED:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        if is_rtcp(data):
            sink.send_rtcp(data)
        else:
            sink.send(data)

    inbound = Inbound(protocol.datagram_received, dtls, DtlsState.CONNECTED,
                      native_srtp(rx_srtp), receive_rtp, receive_rtcp, router)
    protocol.datagram_received = inbound
    dtls._send_rtp = send_rtp  # type: ignore[method-assign]
    _inbounds[dtls] = inbound
    return True


_inbounds: weakref.WeakKeyDictionary[RTCDtlsTransport, Inbound] = weakref.WeakKeyDictionary()


def run_now(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` in this call until it finishes or first waits (see 18. above); if it
    waits, it goes on when what it waits for is done, as a task's would. Its exception is
    logged, as the event loop logs a task's."""
    try:
        waited = coroutine.send(None)
    except StopIteration:
        return
    except Exception:
        logger.exception("RTCP handling failed")
        return
    loop = asyncio.get_running_loop()
    if waited is None:  # a bare yield (asyncio.sleep(0)): the next step comes soon
        loop.call_soon(run_now, coroutine)
        return
    waited._asyncio_future_blocking = False
    waited.add_done_callback(lambda _: run_now(coroutine))


def capture_send_parameters(sender: RTCRtpSender,
                            on_send: Callable[[RTCRtpSendParameters], None]) -> None:
    """Call ``on_send(parameters)`` when ``sender`` starts with its negotiated parameters (9.)."""
    original = getattr(sender, "send", None)
    if not callable(original):
        raise RuntimeError("aiortc RTCRtpSender has no send: the RTP forwarding hook is broken")

    async def send(parameters: RTCRtpSendParameters) -> None:
        on_send(parameters)
        await original(parameters)

    sender.send = send  # type: ignore[method-assign]


_SENT_ATTRIBUTES = ("_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__rtp_timestamp",
                    "_RTCRtpSender__packet_count", "_RTCRtpSender__octet_count")


def check_sender_counters(sender: RTCRtpSender) -> None:
    """Raise unless ``sender`` has the counters its sender reports are made of (see 10. above)."""
    for name in _SENT_ATTRIBUTES:
        if not isinstance(getattr(sender, name, None), int):
            raise RuntimeError(f"aiortc RTCRtpSender has no {name}: the sender report hook is "
                               "broken")


class _LegSender(RTCRtpSender):
    """An RTCRtpSender whose report counters (10.) are its leg's ``LegWriter``'s."""

    _leg: LegWriter


def _counter(name: str) -> property:
    def read(sender: _LegSender) -> int:
        return int(getattr(sender._leg, name))

    def ignore(sender: _LegSender, value: int) -> None:
        pass  # aiortc's own sending loop never sends here: the leg's counts are the truth

    return property(read, ignore)


for _name, _leg_name in zip(_SENT_ATTRIBUTES, ("ntp_timestamp", "rtp_timestamp", "packets",
                                                "octets"), strict=True):
    setattr(_LegSender, _name, _counter(_leg_name))


def report_leg(sender: RTCRtpSender, leg: LegWriter) -> None:
    """Make ``sender``'s reports and getStats count what ``leg`` sends (see 10. above): its
    instance becomes a subclass whose properties read the leg's counters."""
    if type(sender) is _LegSender:
        sender._leg = leg
        return
    check_sender_counters(sender)
    if type(sender) is not RTCRtpSender:
        raise RuntimeError("an RTCRtpSender subclass: the sender report hook is broken")
    sender.__class__ = _LegSender
    cast(_LegSender, sender)._leg = leg


def answer_nacks(sender: RTCRtpSender, retransmit: Callable[[int], Awaitable[None]]) -> None:
    """Route each sequence number a subscriber NACKs on ``sender`` to ``retransmit`` (10.)."""
    if not callable(getattr(RTCRtpSender, "_retransmit", None)):
        raise RuntimeError("aiortc RTCRtpSender has no _retransmit: the NACK hook is broken")
    sender._retransmit = retransmit  # type: ignore[method-assign, assignment]
