"""Keeps bench/ from rotting: the transcoding baseline server answers two RoomClients and media
flows both ways for a couple of seconds; the bench helpers read CPU time and percentiles."""

from __future__ import annotations

import os
import time

import aioice.ice
import pytest

from bench.common import ServerProcess, cpu_seconds, percentile
from rooms.client import RoomClient


def test_percentile_and_cpu_seconds() -> None:
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    start = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) > start


async def test_transcode_server_relays_media_between_two_room_clients(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The clients need a loopback host candidate (aioice leaves 127.0.0.1 out); restored after.
    monkeypatch.setattr(aioice.ice, "get_host_addresses",
                        lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else [])
    server = ServerProcess(["bench.transcode_server"], name="smoke")
    await server.start()
    clients: list[RoomClient] = []
    try:
        for name in ("applicant", "staff"):
            clients.append(await RoomClient.connect(server.url, "bench", "any", name=name,
                                                    width=320, height=240))
        assert [c.role for c in clients] == ["applicant", "staff"]
        for client in clients:
            await client.wait_for_video(30, timeout=15)
        for client in clients:
            (stats,) = client.stats().values()
            assert stats["audio_frames"] + stats["audio_packets"] > 0
        assert cpu_seconds(server.pid) > 0
        await clients[1].hangup()
        await clients[0].peer.ended.wait()
        assert clients[0].peer.ended_reason == "hangup"
    finally:
        for client in clients:
            await client.close()
        await server.stop()


async def test_recording_bench_records_the_same_stream_both_ways() -> None:
    from bench.recording import measure

    figures = await measure(1.0, 1)
    assert figures["remux_us_per_packet"] > 0
    assert figures["mediarecorder_us_per_packet"] > figures["remux_us_per_packet"]
    frames = figures["decoded_frames_in_outputs"]
    assert frames["remux_video"] == frames["mediarecorder_video"] == 30
