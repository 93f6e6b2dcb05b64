"""The composite export: a real recording (the room's Recorder, VP8 and Opus) made into one MP4,
read back with PyAV: streams, duration, grid, labels, placeholders, clock, mixed audio."""

from __future__ import annotations

import datetime as dt
import math
from array import array
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image, ImageStat

from recordings import export
from recordings.export import ExportCancelled, ExportError, export_recording, find_font, grid, plan
from tests.support.export_media import two_party

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


def _frames_at(path: Path, times: list[float]) -> dict[float, Image.Image]:
    out: dict[float, Image.Image] = {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            for t in times:
                if t not in out and abs(float(frame.time or 0) - t) < 0.04:
                    out[t] = frame.to_image()
    assert set(out) == set(times)
    return out


def _audio(path: Path) -> tuple[int, array[float]]:
    samples: array[float] = array("f")
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].rate
        for frame in container.decode(audio=0):
            samples.extend(array("f", bytes(frame.planes[0])[:frame.samples * 4]))
    return rate, samples


def _rms(samples: array[float], rate: int, start: float, end: float) -> float:
    part = samples[int(start * rate):int(end * rate)]
    return math.sqrt(sum(v * v for v in part) / max(1, len(part)))


def _bright(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """How many pixels in ``box`` are near white (text, or the test picture's bar)."""
    return sum(ImageStat.Stat(image.crop(box).convert("L").point(
        lambda v: 255 if v > 200 else 0)).sum) // 255


def test_the_export_is_one_h264_and_one_aac_stream_with_grid_labels_clock_and_audio(
        tmp_path: Path) -> None:
    summary = two_party(tmp_path, "r1", T0)
    seen: list[float] = []
    result = export_recording(tmp_path / "r1", summary, tmp_path / "out" / "r1.mp4",
                              progress=seen.append)
    assert result.path.is_file() and result.cells == 2
    assert not list((tmp_path / "out").glob("*.part"))
    assert seen == sorted(seen) and seen[-1] == 1.0

    with av.open(str(result.path)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert (video.width, video.height) == (1280, 720)
        assert video.codec_context.pix_fmt == "yuv420p"
        assert container.duration is not None
        assert abs(container.duration / 1e6 - summary["duration"]) < 1.0
    # faststart: the index (moov) comes before the media (mdat).
    head = result.path.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1
                                         or head.find(b"moov") < head.find(b"mdat"))

    frames = _frames_at(result.path, [1.0, 4.0])
    before, after = frames[1.0], frames[4.0]
    # Two cells side by side (640x360 each, the 4:3 camera letterboxed to 480x360).
    assert grid(2) == (2, 1)
    # At 1 s the applicant has not joined: their cell is the flat placeholder with text, ...
    placeholder = ImageStat.Stat(before.crop((660, 100, 1260, 250)).convert("L"))
    assert placeholder.stddev[0] < 3 and 40 < placeholder.mean[0] < 70
    assert _bright(before, (800, 300, 1120, 420)) > 200  # 李群众 / 未加入
    # ... at 4 s it is their video (a flat grey 150 with a white bar).
    cell = ImageStat.Stat(after.crop((700, 200, 1100, 400)).convert("L"))
    assert cell.mean[0] > 120
    # The staff member's video in the left cell, both times; its flat part is dark grey.
    assert 40 < ImageStat.Stat(after.crop((380, 200, 600, 300)).convert("L")).median[0] < 90
    # Names are drawn: the label corner of the left cell (over the black letterbox) has white
    # text, the same strip further right (no label) has none.
    assert _bright(after, (4, 670, 240, 718)) > 150
    assert _bright(after, (300, 670, 600, 718)) == 0
    # The clock (top right) shows the consultation's local time: it changes with the second.
    clock_box = (1030, 4, 1276, 46)
    assert _bright(after, clock_box) > 150
    assert before.crop(clock_box).tobytes() != after.crop(clock_box).tobytes()

    rate, samples = _audio(result.path)
    assert abs(len(samples) / rate - summary["duration"]) < 1.0
    # The staff member's 440 Hz for 0-3 s, the applicant's 880 Hz for 4-5 s, placed by their
    # own wall-clock starts; silence between and after.
    assert _rms(samples, rate, 0.5, 2.5) > 0.05
    assert _rms(samples, rate, 3.4, 3.9) < 0.01
    assert _rms(samples, rate, 4.2, 4.8) > 0.05
    assert _rms(samples, rate, 5.3, 5.9) < 0.01


def _timeline(**extra: Any) -> dict[str, Any]:
    start = 1000.0
    return {"started_at": start, "ended_at": start + 60, "duration": 60.0, "participants": [
        {"participant_id": "s-tax01", "role": "staff", "name": "王小明",
         "joined_at": start, "left_at": start + 60},
        {"participant_id": "a-1", "role": "applicant", "name": "",
         "joined_at": start + 5, "left_at": start + 40},
        {"participant_id": "s-sup", "role": "supervisor", "name": "督查甲",
         "joined_at": start + 10, "left_at": start + 20},
    ], "tracks": [], "events": [], **extra}


def test_the_plan_gives_cells_to_publishers_and_a_screen_cell_to_a_sharer(
        tmp_path: Path) -> None:
    for name in ("s-tax01-video-1.webm", "s-tax01-video-2.webm", "a-1-audio-1.webm"):
        (tmp_path / name).write_bytes(b"x")
    timeline = _timeline(
        tracks=[
            {"track_id": "s-tax01-video-1", "participant_id": "s-tax01", "kind": "video",
             "file": "s-tax01-video-1.webm", "started_at": 1000.5},
            {"track_id": "s-tax01-video-2", "participant_id": "s-tax01", "kind": "video",
             "file": "s-tax01-video-2.webm", "started_at": 1020.0},
            {"track_id": "a-1-audio-1", "participant_id": "a-1", "kind": "audio",
             "file": "a-1-audio-1.webm", "started_at": 1005.0},
            {"track_id": "a-1-video-1", "participant_id": "a-1", "kind": "video",
             "file": "missing.webm", "started_at": 1005.0}],
        events=[
            {"t": 1020.0, "type": "publish", "participant_id": "s-tax01", "kind": "video",
             "source": "screen", "track_id": "s-tax01-video-2"},
            {"t": 1020.0, "type": "share", "participant_id": "s-tax01", "on": True},
            {"t": 1030.0, "type": "share", "participant_id": "s-tax01", "on": False},
            {"t": 1008.0, "type": "media", "participant_id": "a-1", "audio": True,
             "video": False}])
    start, duration, cells, audio = plan(tmp_path, timeline)
    assert (start, duration) == (1000.0, 60.0)
    # The observing supervisor publishes nothing and gets no cell; the share is a cell of its
    # own next to the sharer's camera.
    assert [(c.participant_id, c.screen) for c in cells] == [
        ("s-tax01", False), ("s-tax01", True), ("a-1", False)]
    camera, screen, applicant = cells
    assert [t.offset for t in camera.tracks] == [0.5] and [t.offset for t in screen.tracks] == [20]
    assert applicant.tracks == []  # its file is missing: left out, the cell stays
    assert [t.offset for t in audio] == [5.0]
    assert camera.label() == "王小明 · 工作人员"
    assert screen.label() == "王小明 · 工作人员 · 共享屏幕"
    assert applicant.label() == "群众"
    assert applicant.status(2) == "not_joined" and applicant.status(6) is None
    assert applicant.status(9) == "camera_off" and applicant.status(45) == "left"
    assert screen.status(10) == "not_sharing" and screen.status(25) is None
    assert screen.status(35) == "not_sharing" and camera.status(59) is None
    assert [grid(n) for n in (1, 2, 3, 4, 5, 6, 7, 9, 10)] == [
        (1, 1), (2, 1), (2, 2), (2, 2), (3, 2), (3, 2), (3, 3), (3, 3), (4, 3)]


def test_a_cancelled_export_leaves_no_file(tmp_path: Path) -> None:
    summary = two_party(tmp_path, "r1", T0)
    calls: list[float] = []
    with pytest.raises(ExportCancelled):
        export_recording(tmp_path / "r1", summary, tmp_path / "out" / "r1.mp4",
                         progress=calls.append, cancelled=lambda: len(calls) >= 10)
    assert len(calls) == 10
    assert list((tmp_path / "out").iterdir()) == []


def test_without_a_cjk_font_the_export_says_so(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_font() == export.DEFAULT_FONT
    assert find_font(tmp_path / "nope.ttc") == export.DEFAULT_FONT
    monkeypatch.setattr(export, "DEFAULT_FONT", tmp_path / "nope.ttc")
    monkeypatch.setattr(export, "_FONT_GLOBS", (str(tmp_path / "*.ttc"),))
    monkeypatch.delenv(export.FONT_ENV, raising=False)
    with pytest.raises(ExportError) as caught:
        find_font()
    assert "fonts-noto-cjk" in caught.value.message and "中文字体" in caught.value.message
    summary = two_party(tmp_path, "r1", T0)
    with pytest.raises(ExportError):
        export_recording(tmp_path / "r1", summary, tmp_path / "out" / "r1.mp4")
    assert not (tmp_path / "out" / "r1.mp4").exists()


def test_an_empty_recording_cannot_be_exported(tmp_path: Path) -> None:
    timeline = _timeline(ended_at=1000.0, duration=0.0)
    with pytest.raises(ExportError) as caught:
        export_recording(tmp_path, timeline, tmp_path / "out.mp4")
    assert "时长为 0" in caught.value.message


def test_the_export_benchmark_reports_its_speed() -> None:
    from bench.recording import measure_export

    figures = measure_export(2.0)
    assert figures["export_x_realtime"] > 0
    assert figures["export"]["output_frames"] == 30  # 2 s at 15 fps
    assert figures["export"]["cpu_s"] > 0
