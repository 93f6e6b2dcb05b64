"""Loss between the server and a subscriber: 5 % of the subscriber's incoming RTP is dropped in
the test peer before its receiver sees it; its NACKs (answered with RTX) and keyframe requests
must keep the video decoding. Runs on the configured forwarding path (YUNZHEN_MEDIA_FORWARDING)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rooms.client import RoomPeer
from rooms.room import Room
from rooms.rtp_forward import RtpLeg

logger = logging.getLogger(__name__)

JoinFn = Callable[..., Awaitable[RoomPeer]]

LOSS = 0.05
# A gap between two decoded frames longer than this counts as frozen (the peer sends 30 fps).
FROZEN_GAP = 0.2


def drop_incoming_rtp(peer: RoomPeer, loss: float, seed: int) -> list[int]:
    """Drop ``loss`` of the RTP packets each of ``peer``'s receivers takes, at random; returns
    a one-item list counting the drops."""
    rng = random.Random(seed)
    dropped = [0]
    for transceiver in peer.pc.getTransceivers():
        receiver = transceiver.receiver
        original = receiver._handle_rtp_packet

        async def handle(packet: Any, arrival_time_ms: int, original: Any = original) -> None:
            if rng.random() < loss:
                dropped[0] += 1
                return
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle  # type: ignore[method-assign]
    return dropped


async def test_video_keeps_decoding_with_five_percent_loss_toward_a_subscriber(
        room: Room, join: JoinFn) -> None:
    await join(room, "a", "applicant")
    b = await join(room, "b", "staff")
    await b.wait_for_video(10, timeout=10, participant_id="a")
    dropped = drop_incoming_rtp(b, LOSS, seed=15)
    stats = b.remote("a")
    assert stats is not None
    start_frames, start_errors = stats.video_frames, stats.video_decode_errors
    last_frames, last_change = start_frames, time.monotonic()
    frozen = 0.0
    started = time.monotonic()
    while time.monotonic() - started < 8.0:
        await asyncio.sleep(0.02)
        now = time.monotonic()
        if stats.video_frames != last_frames:
            if now - last_change > FROZEN_GAP:
                frozen += now - last_change
            last_frames, last_change = stats.video_frames, now
    if now - last_change > FROZEN_GAP:
        frozen += now - last_change
    decoded = stats.video_frames - start_frames
    publisher = room.participant("a")
    assert publisher is not None
    forwarder = publisher.published["video"]
    legs = [leg for leg in forwarder._legs.values() if isinstance(leg, RtpLeg)]
    retransmits = sum(leg.retransmits for leg in legs)
    logger.warning("5%% loss: %d packets dropped, %d frames decoded in 8 s, %.2f s frozen, "
                   "%d decode errors, %d retransmissions, %d keyframe requests", dropped[0],
                   decoded, frozen, stats.video_decode_errors - start_errors, retransmits,
                   forwarder.keyframe_requests)
    print(f"LOSS-RESULT forwarding={forwarder.forwarding} dropped={dropped[0]} "
          f"decoded={decoded} frozen_s={frozen:.2f} retransmits={retransmits} "
          f"keyframe_requests={forwarder.keyframe_requests}")
    assert dropped[0] > 20
    # 8 s at 30 fps is 240 frames: most of them must decode, and the picture never stops long.
    assert decoded >= 150, decoded
    if forwarder.forwarding == "rtp":
        # Measured 0.65-1.35 s frozen in 8 s (201-237 frames) on a busy 2-core machine; the
        # frame path 2.2 s (189 frames).
        assert frozen < 2.0, frozen
        assert retransmits > 0
    else:
        assert frozen < 3.5, frozen
