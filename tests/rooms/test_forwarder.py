"""TrackForwarder's keyframe requests, against a stand-in for the publisher's RTCRtpReceiver."""

from __future__ import annotations

import asyncio
import datetime

from aiortc.mediastreams import VideoStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpSynchronizationSource

from rooms.forwarder import KEYFRAME_INTERVAL, TrackForwarder

RTX_SSRC = 1111
MEDIA_SSRC = 2222


class FakeReceiver:
    """Chromium's video as the server hears it early in a call: RTX padding came first."""

    def __init__(self) -> None:
        self._RTCRtpReceiver__rtx_ssrc = {RTX_SSRC: MEDIA_SSRC}
        self.sources = [RTX_SSRC, MEDIA_SSRC]
        self.plis: list[int] = []

    def getSynchronizationSources(self) -> list[RTCRtpSynchronizationSource]:
        now = datetime.datetime.now(datetime.UTC)
        return [RTCRtpSynchronizationSource(timestamp=now, source=s) for s in self.sources]

    async def _send_rtcp_pli(self, media_ssrc: int) -> None:
        self.plis.append(media_ssrc)


async def test_keyframe_request_names_the_media_ssrc_not_the_rtx_one() -> None:
    receiver = FakeReceiver()
    now = [10.0]
    forwarder = TrackForwarder(track=VideoStreamTrack(), receiver=receiver,  # type: ignore[arg-type]
                               kind="video", room_id="r1", publisher_id="s", queue_size=8,
                               clock=lambda: now[0])
    try:
        forwarder.request_keyframe()
        await asyncio.sleep(0)
        assert receiver.plis == [MEDIA_SSRC]
        forwarder.request_keyframe()  # rate-limited
        await asyncio.sleep(0)
        assert receiver.plis == [MEDIA_SSRC]
        now[0] += KEYFRAME_INTERVAL
        receiver.sources = [RTX_SSRC]  # only retransmissions heard lately: nothing to name
        forwarder.request_keyframe()
        await asyncio.sleep(0)
        assert receiver.plis == [MEDIA_SSRC]
        receiver.sources = [RTX_SSRC, MEDIA_SSRC]
        forwarder.request_keyframe()
        await asyncio.sleep(0)
        assert receiver.plis == [MEDIA_SSRC, MEDIA_SSRC]
        assert forwarder.keyframe_requests == 2
    finally:
        await forwarder.close()
