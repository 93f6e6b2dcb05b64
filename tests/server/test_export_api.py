"""Composite export over HTTP and on the supervisor page: the background job, its progress, the
download, who may ask, the audit entries, and retention purging the export with its recording."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
from typing import Any

import aiohttp
import av
import pytest
import redis.asyncio as aioredis

from recordings.archive import Archive
from recordings.audit import AUDIT as AUDIT_STREAM
from recordings.jobs import STATE
from server.keys import ACCOUNTS, ARCHIVE, AUDIT, EXPORTS
from signaling.accounts import hash_password
from tests.support.browser import submit_login
from tests.support.export_media import two_party
from tests.support.http import client_session, logged_in
from tests.support.server import LiveServer
from tests.support.streams import stream_entries

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


async def _recording(server: LiveServer, recording_id: str = "r-tax-001",
                     started_at: float = T0, department: str = "tax") -> Archive:
    """A real two-party recording (Recorder-written VP8/Opus), indexed and sealed."""
    archive = server.app[ARCHIVE]
    summary = await asyncio.to_thread(two_party, archive.root, recording_id, started_at)
    if department != "tax":
        summary["department"] = department
    await archive.index(summary)
    return archive


async def _wait_done(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = await session.get(url)
        assert response.status == 200
        job = (await response.json())["export"]
        seen.append(job)
        if job["state"] not in ("queued", "running"):
            return seen
        await asyncio.sleep(0.1)
    pytest.fail(f"the export did not finish: {seen[-1]}")


async def test_an_export_runs_in_the_background_and_downloads(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    archive = await _recording(server)
    url = f"{server.url}/api/recordings/r-tax-001/export"
    async with client_session() as sup:
        await logged_in(sup, server.url, "supervisor")
        assert (await (await sup.get(url)).json())["export"]["state"] == "none"
        response = await sup.get(url + ".mp4")
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_ready"

        started = time.monotonic()
        response = await sup.post(url)
        assert response.status == 202
        job = (await response.json())["export"]
        assert job["state"] in ("queued", "running")
        # The loop stays free while the export encodes: the API answers at once meanwhile.
        ping = time.monotonic()
        assert (await sup.get(f"{server.url}/healthz")).status == 200
        assert time.monotonic() - ping < 1.0
        # Asking again while it runs returns the same job, it does not start a second one.
        again = await sup.post(url)
        assert again.status == 200
        assert (await again.json())["export"]["state"] in ("queued", "running", "done")

        seen = await _wait_done(sup, url)
        done = seen[-1]
        assert done["state"] == "done" and done["progress"] == 100 and done["size"] > 10_000
        progress = [j["progress"] for j in seen]
        assert progress == sorted(progress)
        assert time.monotonic() - started < 60

        response = await sup.get(url + ".mp4")
        assert response.status == 200
        assert response.headers["Content-Type"] == "video/mp4"
        assert response.headers["Content-Disposition"] == \
            'attachment; filename="yunzhen-r-tax-001.mp4"'
        body = await response.read()
        assert len(body) == done["size"]
        with av.open(io.BytesIO(body), "r") as container:
            assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
            assert container.duration is not None
            assert abs(container.duration / 1e6 - 6.0) < 1.0
        # Range requests (a player seeking in the download) are answered, and not audited again.
        ranged = await sup.get(url + ".mp4", headers={"Range": "bytes=100-199"})
        assert ranged.status == 206 and len(await ranged.read()) == 100

        # Done is done: asking again returns the file, no new job.
        again = await sup.post(url)
        assert again.status == 200 and (await again.json())["export"]["state"] == "done"

        entries = await server.app[AUDIT].entries()  # newest first
        rows = [(e["who"], e["action"], e["recording_id"], e["detail"])
                for e in entries if e["action"].startswith("export")]
        assert rows == [
            ("supervisor", "export", "r-tax-001", "done"),
            ("supervisor", "export_file", "r-tax-001", "r-tax-001.mp4"),
            ("supervisor", "export", "r-tax-001", rows[2][3]),
            ("supervisor", "export", "r-tax-001", "started")]
        assert rows[2][3] in ("queued", "running", "done")  # the second ask, while it ran
        assert all(e["department"] == "tax" and e["remote"] == "127.0.0.1"
                   for e in entries if e["action"].startswith("export"))

    # The export lives outside the sealed recording: verify still finds nothing added.
    config_dir = server.app[EXPORTS].root
    assert (config_dir / "r-tax-001.mp4").is_file()
    assert not (archive.root / "r-tax-001" / "r-tax-001.mp4").exists()
    report = await archive.verify("r-tax-001")
    assert report.ok, report.problems
    assert (await redis_client.hgetall(STATE.format("r-tax-001")))["state"] == "done"


async def test_who_may_export(server: LiveServer, redis_client: aioredis.Redis) -> None:
    await _recording(server)
    await _recording(server, "r-fund-001", department="fund")
    await server.app[ACCOUNTS].put("taxsup", display_name="税务督查", role="supervisor",
                                     departments=("tax",),
                                     password_hash=hash_password("demo12345"))
    paths = ("/export", "/export.mp4")
    async with client_session() as anonymous:
        for suffix in paths:
            response = await anonymous.get(f"{server.url}/api/recordings/r-tax-001{suffix}")
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthenticated"
        assert (await anonymous.post(f"{server.url}/api/recordings/r-tax-001/export")
                ).status == 401
    async with client_session() as staff:
        await logged_in(staff, server.url, "tax01")
        for suffix in paths:
            response = await staff.get(f"{server.url}/api/recordings/r-tax-001{suffix}")
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "forbidden"
        assert (await staff.post(f"{server.url}/api/recordings/r-tax-001/export")).status == 403
    async with client_session() as sup:
        # Another department's recording answers exactly like one that does not exist, and so
        # does a forged id or path.
        await logged_in(sup, server.url, "taxsup")
        missing = await (await sup.post(f"{server.url}/api/recordings/nope/export")).json()
        assert missing["error"]["code"] == "not_found"
        for path in ("/api/recordings/r-fund-001/export",
                     "/api/recordings/..%2Fr-fund-001/export",
                     "/api/recordings/r-tax-001%2F..%2Fr-fund-001/export",
                     "/api/recordings/%2E%2E/export"):
            response = await sup.post(server.url + path)
            assert response.status == 404, path
            body = await response.json()
            # (%2E%2E is resolved by the router before any handler: no route, the same code.)
            assert body == missing or "%2E" in path, path
            assert body["error"]["code"] == "not_found", path
            for suffix in ("", ".mp4"):
                response = await sup.get(server.url + path + suffix)
                assert response.status == 404, path + suffix
    assert await redis_client.exists(STATE.format("r-fund-001")) == 0
    # Refusals write nothing to the audit stream; nothing was exported.
    entries = await stream_entries(redis_client, AUDIT_STREAM)
    assert [f["action"] for f in entries if f["action"] != "login"] == []
    assert not server.app[EXPORTS].path("r-fund-001").exists()


async def test_retention_purges_the_export_with_its_recording(
        server: LiveServer, redis_client: aioredis.Redis) -> None:
    old = time.time() - 400 * 86400.0
    archive = await _recording(server, "r-old", started_at=old)
    async with client_session() as sup:
        await logged_in(sup, server.url, "supervisor")
        url = f"{server.url}/api/recordings/r-old/export"
        assert (await sup.post(url)).status == 202
        assert (await _wait_done(sup, url))[-1]["state"] == "done"
        path = server.app[EXPORTS].path("r-old")
        assert path.is_file()
        assert await archive.purge_expired() == ["r-old"]
        assert not path.exists()
        assert await redis_client.exists(STATE.format("r-old")) == 0
        assert (await sup.get(url)).status == 404
        assert (await sup.get(url + ".mp4")).status == 404


@pytest.mark.browser
async def test_the_supervisor_page_exports_and_downloads(server: LiveServer,
                                                          browser: Any) -> None:
    from playwright.async_api import expect

    await _recording(server)
    context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                        accept_downloads=True)
    page = await context.new_page()
    await page.goto(f"{server.url}/supervisor")
    await submit_login(page, "supervisor")
    await expect(page.get_by_test_id("recording-row")).to_have_count(1, timeout=10_000)
    await page.get_by_test_id("recording-play").click()
    start = page.get_by_test_id("export-start")
    await expect(start).to_be_visible()
    await expect(start).to_have_text("导出合成视频")
    await expect(page.get_by_test_id("export-download")).to_be_hidden()
    # Watch the progress bar while the job runs: it shows, and its value only grows.
    await page.evaluate("""() => {
      window.__progress = [];
      const bar = document.querySelector('[data-testid=export-progress]');
      new MutationObserver(() => { if (!bar.hidden) window.__progress.push(bar.value); })
        .observe(bar, {attributes: true});
    }""")
    await start.click()
    link = page.get_by_test_id("export-download")
    await expect(link).to_be_visible(timeout=60_000)
    await expect(link).to_have_text("下载")
    bar = page.get_by_test_id("export-progress")
    await expect(bar).to_be_visible()
    assert await bar.evaluate("el => el.value") == 100
    await expect(page.get_by_test_id("export-status")).to_have_text("导出完成")
    await expect(start).to_be_hidden()
    values = await page.evaluate("window.__progress")
    assert values and values == sorted(values) and values[-1] == 100
    href = await link.get_attribute("href")
    assert href == "/api/recordings/r-tax-001/export.mp4"
    response = await page.request.get(server.url + href)
    assert response.status == 200
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(await response.body())) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    # Clicking the link downloads the file (Content-Disposition: attachment).
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    assert download.suggested_filename == "yunzhen-r-tax-001.mp4"
    # Opening the player again shows the finished export at once.
    await page.get_by_test_id("player-close").click()
    await page.get_by_test_id("recording-play").click()
    await expect(page.get_by_test_id("export-download")).to_be_visible()
    await expect(start).to_be_hidden()
    await context.close()


@pytest.mark.browser
async def test_an_export_error_shows_in_chinese(server: LiveServer, browser: Any) -> None:
    from playwright.async_api import expect

    await _recording(server)
    page = await browser.new_page()
    await page.goto(f"{server.url}/supervisor")
    await submit_login(page, "supervisor")
    await page.get_by_test_id("recording-play").click()
    await expect(page.get_by_test_id("export-start")).to_be_visible()
    # The recording's media vanishes before the export is asked for: the job fails and the
    # page says so in Chinese, with the button back for another try.
    archive = server.app[ARCHIVE]
    for track in (archive.root / "r-tax-001").glob("*.webm"):
        track.unlink()
    (archive.root / "r-tax-001" / "timeline.json").write_text(
        '{"started_at": 5, "ended_at": 5, "tracks": []}', encoding="utf-8")
    await page.get_by_test_id("export-start").click()
    error = page.get_by_test_id("export-error")
    await expect(error).to_be_visible(timeout=20_000)
    await expect(error).to_contain_text("导出失败")
    await expect(error).to_contain_text("录像时长为 0")
    await expect(page.get_by_test_id("export-start")).to_be_visible()
    await expect(page.get_by_test_id("export-download")).to_be_hidden()
    await page.close()


async def test_stopping_the_server_stops_a_running_export(config: Any,
                                                          redis_client: aioredis.Redis) -> None:
    from tests.support.export_media import record
    from tests.support.server import start_server

    live = await start_server(config)
    stopped = False
    try:
        archive = live.app[ARCHIVE]
        summary = await asyncio.to_thread(
            record, archive.root, "r-long", started_at=T0, duration=30.0, participants=[
                {"id": "s-tax01", "role": "staff", "name": "王小明", "join": 0.0,
                 "video": (0.0, 30.0), "audio": (0.0, 30.0, 440.0)}])
        await archive.index(summary)
        exports = live.app[EXPORTS]
        async with client_session() as sup:
            await logged_in(sup, live.url, "supervisor")
            url = f"{live.url}/api/recordings/r-long/export"
            assert (await sup.post(url)).status == 202
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                job = (await (await sup.get(url)).json())["export"]
                if job["state"] == "running" and job["progress"] > 0:
                    break
                await asyncio.sleep(0.02)
            assert job["state"] == "running" and job["progress"] < 100
        await live.runner.cleanup()
        stopped = True
        # The job was stopped, not left running or half-written.
        assert list(exports.root.iterdir()) == []
        assert await redis_client.exists(STATE.format("r-long")) == 0
    finally:
        if not stopped:
            await live.runner.cleanup()
