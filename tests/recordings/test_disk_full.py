"""A full disk during a call: a real server process (`python -m server serve --demo`) whose
recordings directory is a 1.2 MB tmpfs mounted in a mount namespace of its own (`unshare -m`;
the tests run as root), two aiortc peers in a call until the tmpfs is full. The call goes on
(both peers keep decoding video after the fill), the recording is indexed incomplete with reason
disk_full, supervisors get an alert (GET /api/alerts, the red banner on the supervisor page,
acknowledged once and audited), and the track files decode with PyAV up to the fill."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from bench.common import open_room
from rooms.client import RoomClient
from server.redis_server import EmbeddedRedis
from signaling.client import SignalingClient
from tests.support.browser import submit_login
from tests.support.harness import ServerProcess, wait_until
from tests.support.http import client_session, logged_in

TMPFS = "1200k"


class NamespacedServer(ServerProcess):
    """The server with ``<data>/recordings`` a small tmpfs that only this process (and its
    children) can see."""

    def __init__(self, redis_url: str, data_dir: Path) -> None:
        unshare = shutil.which("unshare")
        assert unshare, "util-linux unshare is needed"
        self.recordings = data_dir / "recordings"
        self.recordings.mkdir(parents=True, exist_ok=True)
        mount = [unshare, "-m", "sh", "-c",
                 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"', "sh",
                 TMPFS, str(self.recordings)]
        super().__init__(redis_url, data_dir, prefix=mount, PYTHONUNBUFFERED="1")

    def seen_recordings(self) -> Path:
        """The tmpfs as the server sees it (through its mount namespace)."""
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/root") / str(self.recordings).lstrip("/")


def _decoded_frames(path: Path) -> list[float]:
    times: list[float] = []
    with av.open(str(path)) as container:
        try:
            frames: Iterator[Any] = container.decode(container.streams[0])  # video or audio
            for frame in frames:
                if frame.time is not None:
                    times.append(frame.time)
        except av.error.FFmpegError:
            pass  # the cut-off end
    return times


@pytest.mark.timeout(180)
async def test_a_full_disk_cuts_the_recording_not_the_call_and_alerts_supervisors(
        tmp_path: Path, browser: Any, loopback_candidates: None) -> None:
    redis = EmbeddedRedis(tmp_path / "redis")
    await redis.start()
    server = NamespacedServer(redis.url, tmp_path / "data")
    clients: list[RoomClient] = []
    sockets: list[SignalingClient] = []
    sup: aiohttp.ClientSession | None = None
    try:
        await server.start()
        # Outside the server's namespace the recordings directory is the plain, empty one.
        assert os.statvfs(server.recordings).f_blocks != os.statvfs(
            server.seen_recordings()).f_blocks
        sup = client_session()
        await logged_in(sup, server.url, "supervisor")

        async def alerts() -> list[dict[str, Any]]:
            assert sup is not None
            response = await sup.get(f"{server.url}/api/alerts")
            assert response.status == 200
            found: list[dict[str, Any]] = (await response.json())["alerts"]
            return found

        # 1.2 MB free is under recordings_min_free_mb (500): alerted at start.
        low = await wait_until(lambda: _kind(alerts(), "low_space"), 15, what="low space")
        assert "MB free" in low[0]["detail"]

        applicant_room, staff_room, sockets = await open_room(server.url)
        room_id = staff_room["room_id"]
        for name, room in (("applicant", applicant_room), ("staff", staff_room)):
            clients.append(await RoomClient.connect(server.url, room["room_id"], room["token"],
                                                    name=name))
        for client in clients:
            await client.wait_for_video(1, timeout=20)

        full = await wait_until(lambda: _kind(alerts(), "disk_full"), 60, interval=0.5,
                                what="the disk_full alert")
        alerted_at = time.time()
        assert full[0]["room_id"] == room_id and full[0]["department"] == "tax"
        assert full[0]["ticket_number"].startswith("税")
        assert full[0]["acknowledged"] is False
        space = os.statvfs(server.seen_recordings())
        assert space.f_bavail * space.f_frsize < 300 * 1024

        # The call goes on: both peers keep decoding each other's video after the fill.
        before = [_frames(client) for client in clients]
        await asyncio.sleep(3)
        after = [_frames(client) for client in clients]
        for was, now in zip(before, after, strict=True):
            assert now - was >= 30, (before, after)

        # A staff member may not read alerts.
        async with client_session() as staff:
            await logged_in(staff, server.url, "tax01")
            assert (await staff.get(f"{server.url}/api/alerts")).status == 403
            assert (await staff.post(f"{server.url}/api/alerts/{full[0]['id']}/ack")
                    ).status == 403

        # The supervisor page shows the alert in a red banner; acknowledging it is audited.
        await _banner_is_shown_and_acknowledged(browser, server.url, full[0])
        assert (await sup.post(f"{server.url}/api/alerts/1-0/ack")).status == 404
        async with client_session() as auditor:  # the audit is the auditor's to read
            await logged_in(auditor, server.url, "auditor")
            audit = await (await auditor.get(f"{server.url}/api/audit")).json()
        acks = [e for e in audit["entries"] if e["action"] == "alert_ack"]
        assert len(acks) == 1 and acks[0]["recording_id"] == room_id
        assert next(a for a in await alerts() if a["id"] == full[0]["id"])["acknowledged"]

        await clients[1].hangup()

        async def indexed() -> dict[str, Any] | None:
            assert sup is not None
            body = await (await sup.get(f"{server.url}/api/recordings")).json()
            return next((r for r in body["recordings"] if r["recording_id"] == room_id), None)

        entry = await wait_until(indexed, 30, interval=0.5, what="the indexed recording")
        assert entry["complete"] is False
        assert entry["incomplete_reason"] == "disk_full"
        assert entry["tracks"] == 4
        only_incomplete = await (await sup.get(
            f"{server.url}/api/recordings?incomplete=1")).json()
        assert room_id in [r["recording_id"] for r in only_incomplete["recordings"]]
        # One alert for the room, from the live watch and the indexing together.
        assert len(await _kind(alerts(), "disk_full")) == 1

        view = await (await sup.get(f"{server.url}/api/recordings/{room_id}")).json()
        timeline = view["timeline"]
        assert timeline["complete"] is False and timeline["incomplete_reason"] == "disk_full"
        failed_at = next(e["t"] for e in timeline["events"] if e["type"] == "recording_failed")
        assert failed_at <= alerted_at
        videos = [t for t in timeline["tracks"] if t["kind"] == "video"]
        assert len(videos) == 2
        for track in videos:
            response = await sup.get(f"{server.url}/api/recordings/{room_id}/files/"
                                     f"{track['file']}")
            assert response.status == 200
            path = tmp_path / track["file"]
            path.write_bytes(await response.read())
            times = _decoded_frames(path)
            assert len(times) >= 30, (track["file"], len(times))
            # Written up to the fill: the last decodable frame lies within the last second or
            # two before the failure (the cluster being written then is cut off).
            last = track["started_at"] + max(times)
            assert failed_at - 2.5 <= last <= failed_at + 0.5, (track["file"], last, failed_at)
        assert "Traceback" not in server.log_path.read_text(encoding="utf-8", errors="replace")
    finally:
        for client in clients:
            await client.close()
        for sock in sockets:
            await sock.close()
        if sup is not None:
            await sup.close()
        await server.stop()
        await redis.stop()


def _frames(client: RoomClient) -> int:
    return sum(s["video_frames"] for s in client.stats().values())


async def _kind(pending: Any, kind: str) -> list[dict[str, Any]]:
    return [a for a in await pending if a["kind"] == kind]


async def _banner_is_shown_and_acknowledged(browser: Any, base: str,
                                            alert: dict[str, Any]) -> None:
    alert_id = alert["id"]
    context = await browser.new_context(locale="zh-CN")
    try:
        page = await context.new_page()
        await page.goto(f"{base}/supervisor")
        await submit_login(page, "supervisor")
        banner = page.locator('[data-testid="storage-alert"]')
        await banner.wait_for(state="visible", timeout=15000)
        item = banner.locator(f'[data-alert-id="{alert_id}"]')
        await item.wait_for(state="visible", timeout=10000)
        text = await item.inner_text()
        assert "录像存储空间不足" in text and alert["ticket_number"] in text, text
        await item.locator('[data-testid="alert-ack"]').click()
        await item.wait_for(state="detached", timeout=10000)
    finally:
        await context.close()
