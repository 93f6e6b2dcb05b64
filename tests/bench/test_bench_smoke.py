"""Keeps bench/ from rotting: the transcoding baseline server answers two RoomClients and media
flows both ways for a couple of seconds; the bench helpers read CPU time and percentiles; the
rooms bench runs one short 3-person pass-through room; the auth bench signs in beside one; the
server's loop-lag probe sees a blocked loop; the soak runs for 15 s with 25 sockets; the event-loop
bench compares its medians."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import event_loop
from bench.common import ROOT, ServerProcess, cpu_seconds, percentile
from rooms.client import RoomClient
from server.looplag import LoopLagProbe, read_samples


def test_percentile_and_cpu_seconds() -> None:
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    start = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) > start


async def test_transcode_server_relays_media_between_two_room_clients(
        loopback_candidates: None) -> None:
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


def test_rooms_bench_three_person_pass_through_rooms(tmp_path: Path) -> None:
    # A subprocess: the bench installs the pass-through hooks in its own process. One room with
    # its participants in the bench process, then two with theirs in two worker processes.
    out = tmp_path / "rooms.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.rooms", "--plan", "pt3:1,pt3:2", "--seconds", "2",
         "--settle", "0.5", "--late-joins", "1", "--loop-seconds", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["machines"]["rooms"]["cores"] == os.cpu_count()
    assert data["rooms_detail"]["failed_runs"] == {}
    run = data["rooms_detail"]["runs"]["passthrough_3p_x1"]
    assert (run["mode"], run["participants"], run["rooms"]) == ("passthrough", 3, 1)
    # Every packet a publisher sends goes to the two others.
    assert run["rtp_forwarded_per_s"] > 1.5 * run["rtp_sent_by_publishers_per_s"] > 0
    assert run["fps_decoded_min"] > 0 and run["fps_received_min"] > 0
    assert run["loop_lag"]["samples"] > 0
    assert run["us_per_forwarded_packet"] > 0
    assert data["rooms_per_core_3p"] > 0
    assert data["loop_lag_p99_ms"] >= 0
    assert 0 < data["late_join_first_frame_ms"] < 15000
    assert set(data["rooms_per_core_3p_check"]) >= {"basis", "full_frame_rate"}
    two = data["rooms_detail"]["runs"]["passthrough_3p_x2"]
    assert two["rtp_forwarded_per_s"] > 1.5 * two["rtp_sent_by_publishers_per_s"] > 0
    assert two["fps_decoded_min"] > 0
    assert data["rooms_per_core_3p_check"]["concurrent_rooms"] == 2
    assert data["us_per_packet"] == two["us_per_forwarded_packet"] > 0


def test_auth_bench_signs_in_beside_a_three_person_room(tmp_path: Path) -> None:
    # A subprocess, as the rooms bench: it installs the pass-through hooks in its own process.
    out = tmp_path / "auth.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.auth", "--seconds", "1.2", "--rate", "10", "--settle",
         "0.5", "--loop-seconds", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["machines"]["auth"]["cores"] == os.cpu_count()
    detail = data["auth_detail"]
    # Four of each kind, answered as they should be: every attempt reached the password check.
    assert detail["statuses"] == {"known_right": {"200": 4}, "known_wrong": {"401": 4},
                                  "unknown": {"401": 4}}
    for window in detail["windows"].values():
        assert window["loop_lag"]["samples"] > 0
        assert window["pairs"] == 6 and window["fps_received_min"] > 0
    assert data["loop_lag_p99_ms_idle"] >= 0 and data["loop_lag_p99_ms_during_logins"] >= 0
    for kind in ("known", "unknown"):
        assert 0 < data[f"login_p50_ms_{kind}"] <= data[f"login_p99_ms_{kind}"]


def test_auth_bench_cycles_right_wrong_and_unknown_over_the_demo_staff() -> None:
    from bench.auth import ACCOUNTS, attempts

    plan = attempts(30)
    assert [a.kind for a in plan[:3]] == ["known_right", "known_wrong", "unknown"]
    known = [a.username for a in plan if a.kind != "unknown"]
    assert set(known) == set(ACCOUNTS)
    # Never two wrong passwords for one account without its right one between: no lockout.
    for account in ACCOUNTS:
        kinds = [a.kind for a in plan if a.username == account]
        assert "known_wrong, known_wrong" not in ", ".join(kinds)
    unknown = [a.username for a in plan if a.kind == "unknown"]
    assert len(set(unknown)) == len(unknown) and not set(unknown) & set(ACCOUNTS)


def test_rooms_bench_plan_is_checked() -> None:
    from bench.rooms import parse_plan

    assert parse_plan("pt3:1, tc6:2") == [("passthrough", 3, 1), ("transcode", 6, 2)]
    for bad in ("xx3:1", "pt3", "pt9:1", "pt3:0"):
        with pytest.raises(ValueError):
            parse_plan(bad)


async def test_loop_lag_probe_records_a_blocked_loop(tmp_path: Path) -> None:
    path = tmp_path / "lag.txt"
    probe = LoopLagProbe(path)
    start = time.monotonic()
    task = asyncio.create_task(probe.run())
    await asyncio.sleep(0.1)
    time.sleep(0.08)  # noqa: ASYNC251 (blocks the loop on purpose: the probe wakes ~80 ms late)
    await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    samples = read_samples(path, start, time.monotonic())
    assert len(samples) >= 5
    assert max(samples) >= 60
    assert read_samples(path, 0, start - 1) == []


def test_soak_bench_short_run_loses_no_ticket(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--kiosks", "20", "--staff", "5", "--minutes",
         "0.25", "--rate", "3", "--procs", "1", "--empty-room", "1", "--sample-every", "5",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["machines"]["soak"]["cores"] == os.cpu_count()
    assert data["sockets"] == data["sockets_connected_at_end"] == 25
    assert data["tickets"] > 10
    assert (data["tickets_lost"], data["double_booked"]) == (0, 0)
    assert data["queue_log_problems"] == 0 and data["still_waiting_or_ringing"] == 0
    counts = data["counts"]
    assert counts["accepts"] > 0 and counts["declines"] > 0
    assert 0 < data["ring_latency_p50_ms"] <= data["ring_latency_p99_ms"]
    for name in ("rss_mb_start", "rss_mb_end", "redis_mb_start", "redis_mb_end"):
        assert data[name] > 0
    assert data["server_log_tracebacks"] == 0


def test_event_loop_bench_compares_the_medians_of_each_loop() -> None:
    def run(dispatches: float, us: float | None) -> dict[str, Any]:
        return {"dispatch": {"dispatches_per_s": dispatches},
                "rtp": {"us_per_forwarded_packet": us} if us is not None else {"error": "x"}}

    compared = event_loop.compare({
        "uvloop": [run(600, 60), run(580, None), run(620, 64)],
        "asyncio": [run(500, 70), run(480, 68)],
    })
    assert compared["event_loop"]["uvloop"] == {
        "dispatch": {"dispatches_per_s": 600}, "rtp": {"us_per_forwarded_packet": 62}}
    assert compared["event_loop"]["asyncio"]["dispatch"] == {"dispatches_per_s": 490}
    # A run that failed (no figure) is left out of the median, not counted as zero.
    assert compared["uvloop_vs_asyncio"] == {"dispatch.dispatches_per_s": round(600 / 490, 3),
                                             "rtp.us_per_forwarded_packet": round(62 / 69, 3)}
