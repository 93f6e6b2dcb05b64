"""The composite export of a recording: one MP4 (H.264 + AAC) with every participant in a grid,
each cell labelled with name and role, the consultation's wall-clock time in a corner, and all
audio tracks mixed, each placed at its own wall-clock start.

Runs in a worker thread (recordings/jobs.py): everything here is blocking PyAV and Pillow work.
Labels are drawn with Pillow from a CJK font (the PyAV wheels' FFmpeg has no drawtext), rendered
once per cell and state and pasted onto every frame.

Layout: one cell per participant who can publish (observing supervisors publish nothing and get
none), plus one cell per participant who shared their screen, next to theirs, for the whole
export (a grid that changes size mid-video is harder to follow). A cell shows a placeholder with
the name and why there is no picture: not joined yet, left, camera off, not sharing, no picture.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import logging
import math
import os
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

# Where the Debian package fonts-noto-cjk puts its fonts (both `serve` and `test` install it).
DEFAULT_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FONT_ENV = "YUNZHEN_CJK_FONT"
_FONT_GLOBS = ("/usr/share/fonts/**/NotoSansCJK*.tt[cf]", "/usr/share/fonts/**/NotoSansSC*.[ot]tf",
               "/usr/share/fonts/**/NotoSerifCJK*.tt[cf]", "/usr/share/fonts/**/wqy*.tt[cf]",
               "/usr/share/fonts/**/*CJK*.tt[cf]", "/usr/local/share/fonts/**/*CJK*.tt[cf]")

WIDTH, HEIGHT, FPS = 1280, 720, 15
SAMPLE_RATE = 48000
AUDIO_CHUNK = 4800  # samples mixed at a time (100 ms)
# A picture older than this is not shown any more: the sender stopped (camera off, a share
# stopped, a network stall), and a frozen face would mislead a reviewer.
STALE_S = 1.5
BACKGROUND = (24, 26, 30)
CELL_BACKGROUND = (0, 0, 0)
PLACEHOLDER = (48, 52, 60)

ROLE_NAMES = {"staff": "工作人员", "applicant": "群众", "guide": "导服", "supervisor": "督查"}
STATUS_TEXT = {
    "not_joined": "未加入", "left": "已离开", "camera_off": "摄像头已关闭",
    "not_sharing": "未共享屏幕", "no_video": "无画面",
}

Progress = Callable[[float], None]
Cancelled = Callable[[], bool]


class ExportError(Exception):
    """An export that cannot be made; ``message`` is for the page (Chinese)."""

    def __init__(self, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message = message
        self.message_en = message_en


class ExportCancelled(Exception):
    pass


@dataclass
class ExportResult:
    path: Path
    duration: float
    frames: int
    size: int
    cells: int


def find_font(preferred: str | os.PathLike[str] | None = None) -> Path:
    """A font with CJK glyphs: ``preferred``, then $YUNZHEN_CJK_FONT, the default path, and a
    search of the usual font folders. Fails clearly when there is none."""
    for candidate in (preferred, os.environ.get(FONT_ENV), DEFAULT_FONT):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    for pattern in _FONT_GLOBS:
        found = sorted(glob.glob(pattern, recursive=True))
        if found:
            return Path(found[0])
    raise ExportError("服务器上没有中文字体，无法导出（请安装 fonts-noto-cjk）。",
                      "No CJK font on the server: install fonts-noto-cjk.")


def grid(cells: int) -> tuple[int, int]:
    """Columns and rows: 1, 2 side by side, 2x2, 3x2, 3x3, 4x3..."""
    cols = max(1, math.ceil(math.sqrt(cells)))
    rows = max(1, math.ceil(cells / cols))
    return cols, rows


# --- the plan: cells, their sources and states, from the timeline -------------------------------

@dataclass
class _Track:
    file: Path
    offset: float  # seconds after the recording's start
    source: str  # camera, screen or audio


@dataclass
class _Cell:
    participant_id: str
    name: str
    role: str
    screen: bool
    presence: list[tuple[float, float]] = field(default_factory=list)
    # (t, on): camera on/off (media events) or share on/off (share events), in time order.
    switches: list[tuple[float, bool]] = field(default_factory=list)
    tracks: list[_Track] = field(default_factory=list)

    def label(self) -> str:
        role = ROLE_NAMES.get(self.role, self.role)
        text = f"{self.name} · {role}" if self.name else role
        return f"{text} · 共享屏幕" if self.screen else text

    def status(self, t: float) -> str | None:
        """Why there is no picture at ``t`` (None: show the video if there is one)."""
        if self.presence and not any(a <= t < b for a, b in self.presence):
            return "not_joined" if t < self.presence[0][0] else "left"
        on = not self.screen  # a camera is on until turned off; a screen is off until shared
        if self.screen and not self.switches:
            on = True  # no share events (an older or recovered recording): frames decide
        for at, value in self.switches:
            if at > t:
                break
            on = value
        if not on:
            return "not_sharing" if self.screen else "camera_off"
        return None


def plan(directory: Path, timeline: dict[str, Any]) -> tuple[float, float, list[_Cell],
                                                              list[_Track]]:
    """(start, duration, video cells, audio tracks) of a recording."""
    start = float(timeline.get("started_at") or 0)
    tracks = [t for t in timeline.get("tracks", []) if t.get("file")]
    end = timeline.get("ended_at")
    if end is None:
        end = max([start] + [float(t.get("started_at") or start) for t in tracks])
    duration = max(0.0, float(end) - start)
    events = timeline.get("events", [])
    screen_ids = {e.get("track_id") for e in events
                  if e.get("type") == "publish" and e.get("source") == "screen"}

    cells: dict[tuple[str, bool], _Cell] = {}
    info: dict[str, dict[str, Any]] = {}
    presence: dict[str, list[tuple[float, float]]] = {}
    for p in timeline.get("participants", []):
        pid = str(p.get("participant_id"))
        info.setdefault(pid, p)
        joined = float(p.get("joined_at") or start) - start
        left = float(p.get("left_at") or end) - start
        presence.setdefault(pid, []).append((joined, max(joined, left)))

    def cell(pid: str, screen: bool) -> _Cell:
        key = (pid, screen)
        if key not in cells:
            p = info.get(pid, {})
            role = str(p.get("role") or ("staff" if pid.startswith("s-") else "applicant"))
            cells[key] = _Cell(pid, str(p.get("name") or ""), role, screen,
                               presence=presence.get(pid, []))
        return cells[key]

    for pid, p in info.items():
        if p.get("role") != "supervisor":  # observers publish nothing
            cell(pid, False)
    audio: list[_Track] = []
    for t in tracks:
        path = directory / str(t["file"])
        if not path.is_file():
            logger.warning("export: %s is missing, left out", path)
            continue
        offset = float(t.get("started_at") or start) - start
        if t.get("kind") == "audio":
            audio.append(_Track(path, offset, "audio"))
            continue
        screen = t.get("track_id") in screen_ids
        cell(str(t["participant_id"]), screen).tracks.append(
            _Track(path, offset, "screen" if screen else "camera"))
    for e in events:
        pid = str(e.get("participant_id") or "")
        at = float(e.get("t") or start) - start
        if e.get("type") == "media" and (pid, False) in cells:
            cells[(pid, False)].switches.append((at, bool(e.get("video", True))))
        elif e.get("type") == "share" and (pid, True) in cells:
            cells[(pid, True)].switches.append((at, bool(e.get("on"))))
    order = list(info)
    ordered = sorted(cells.values(), key=lambda c: (
        order.index(c.participant_id) if c.participant_id in order else len(order), c.screen))
    for c in ordered:
        c.tracks.sort(key=lambda tr: tr.offset)
        c.switches.sort(key=lambda s: s[0])
    audio.sort(key=lambda tr: tr.offset)
    return start, duration, ordered, audio


# --- reading the tracks -------------------------------------------------------------------------

class _VideoReader:
    """Decodes one video track file in order; ``at(t)`` is the newest frame at or before ``t``
    (seconds into the recording) and its time."""

    def __init__(self, track: _Track) -> None:
        self.track = track
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._next: Any = None
        self._next_t = -math.inf
        self.frame: Any = None
        self.frame_t = -math.inf
        self.done = False

    def _pull(self) -> None:
        if self._frames is None:
            try:
                self._container = av.open(str(self.track.file))
                self._frames = self._container.decode(video=0)
            except (av.FFmpegError, IndexError):
                logger.warning("export: cannot read %s", self.track.file, exc_info=True)
                self.close()
                return
        assert self._frames is not None
        try:
            frame = next(self._frames)
        except (StopIteration, av.FFmpegError):
            # The end, or a cut-off cluster of a recovered recording: what decoded is kept.
            self.close()
            return
        self._next = frame
        self._next_t = self.track.offset + float(frame.time or 0)

    def at(self, t: float) -> tuple[Any, float]:
        if self._next is None and not self.done:
            self._pull()
        while self._next is not None and self._next_t <= t:
            self.frame, self.frame_t = self._next, self._next_t
            self._next = None
            self._pull()
        return self.frame, self.frame_t

    def close(self) -> None:
        self.done = True
        self._next = None
        if self._container is not None:
            self._container.close()
            self._container = None


class _AudioTrack:
    """One audio track as mono s16 samples at 48 kHz, placed on the recording's clock: the
    samples of any range, silence where the track has none (before it starts, gaps, after it
    ends)."""

    def __init__(self, track: _Track) -> None:
        self.track = track
        self._container = av.open(str(track.file))
        self._frames = self._container.decode(audio=0)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._buffer = bytearray()
        self._buffer_start = round(track.offset * SAMPLE_RATE)  # sample index of _buffer[0]
        self._done = False

    def _decode_one(self) -> None:
        try:
            frame = next(self._frames)
        except (StopIteration, av.FFmpegError):
            self._done = True
            self._container.close()
            return
        at = round((self.track.offset + float(frame.time or 0)) * SAMPLE_RATE)
        data = b"".join(bytes(out.planes[0])[:out.samples * 2]
                        for out in self._resampler.resample(frame))
        end = self._buffer_start + len(self._buffer) // 2
        if at > end:  # a gap in the track: silence
            self._buffer.extend(bytes((at - end) * 2))
        elif at < end:  # overlapping timestamps: the part already placed wins
            data = data[(end - at) * 2:]
        self._buffer.extend(data)

    def samples(self, first: int, count: int) -> bytes:
        while not self._done and self._buffer_start + len(self._buffer) // 2 < first + count:
            self._decode_one()
        if first > self._buffer_start:  # samples before ``first`` are never asked for again
            drop = min(first - self._buffer_start, len(self._buffer) // 2)
            del self._buffer[:drop * 2]
            self._buffer_start += drop
        out = bytearray()
        if first < self._buffer_start:
            out.extend(bytes(min(count, self._buffer_start - first) * 2))
        take = count - len(out) // 2
        out.extend(self._buffer[:take * 2])
        out.extend(bytes(count * 2 - len(out)))
        return bytes(out)


class _Mixer:
    """All audio tracks summed (FFmpeg's amix, not normalized: voices keep their level)."""

    def __init__(self, tracks: list[_Track]) -> None:
        self.tracks = [_AudioTrack(t) for t in tracks]
        self.graph: Any = None
        if not self.tracks:
            return
        graph = av.filter.Graph()
        sources = [graph.add_abuffer(format="s16", sample_rate=SAMPLE_RATE, layout="mono",
                                     time_base=Fraction(1, SAMPLE_RATE))
                   for _ in self.tracks]
        out = graph.add("aformat", f"sample_fmts=fltp:sample_rates={SAMPLE_RATE}"
                                   ":channel_layouts=mono")
        if len(sources) > 1:
            mix = graph.add("amix", f"inputs={len(sources)}:duration=longest:normalize=0")
            for i, src in enumerate(sources):
                src.link_to(mix, 0, i)
            mix.link_to(out)
        else:
            sources[0].link_to(out)
        sink = graph.add("abuffersink")
        out.link_to(sink)
        graph.configure()
        self.graph, self.sources, self.sink = graph, sources, sink

    def chunk(self, first: int, count: int) -> list[Any]:
        """The mixed frames for samples [first, first + count)."""
        if self.graph is None:
            frame = av.AudioFrame(format="fltp", layout="mono", samples=count)
            frame.planes[0].update(bytes(frame.planes[0].buffer_size))
            frame.sample_rate = SAMPLE_RATE
            frame.pts = first
            frame.time_base = Fraction(1, SAMPLE_RATE)
            return [frame]
        for track, src in zip(self.tracks, self.sources, strict=True):
            frame = av.AudioFrame(format="s16", layout="mono", samples=count)
            frame.planes[0].update(track.samples(first, count).ljust(
                frame.planes[0].buffer_size, b"\0"))
            frame.sample_rate = SAMPLE_RATE
            frame.pts = first
            frame.time_base = Fraction(1, SAMPLE_RATE)
            src.push(frame)
        out = []
        while True:
            try:
                out.append(self.sink.pull())
            except (av.BlockingIOError, av.EOFError):
                return out


# --- drawing ------------------------------------------------------------------------------------

class _Painter:
    def __init__(self, font_path: Path, width: int, height: int, cells: int) -> None:
        self.width, self.height = width, height
        self.cells = cells
        self.cols, self.rows = grid(cells)
        self.cell_w = width // self.cols // 2 * 2
        self.cell_h = height // self.rows // 2 * 2
        size = max(14, min(28, self.cell_h // 14))
        try:
            self.font = ImageFont.truetype(str(font_path), size)
            self.big = ImageFont.truetype(str(font_path), size + 8)
            self.clock_font = ImageFont.truetype(str(font_path), max(16, height // 30))
        except OSError as exc:
            raise ExportError(f"无法读取字体 {font_path}。", f"Cannot read font {font_path}: {exc}"
                              ) from None
        self._clock_text = ""
        self._clock_image: Image.Image | None = None

    def origin(self, index: int) -> tuple[int, int]:
        col, row = index % self.cols, index // self.cols
        # The last row, when not full, is centred.
        in_row = min(self.cols, self.cells - row * self.cols)
        shift = (self.cols - in_row) * self.cell_w // 2
        x0 = (self.width - self.cols * self.cell_w) // 2
        y0 = (self.height - self.rows * self.cell_h) // 2
        return x0 + shift + col * self.cell_w, y0 + row * self.cell_h

    def label(self, text: str) -> Image.Image:
        """White text on a translucent dark box, as RGBA to paste with its own mask."""
        left, top, right, bottom = (int(v) for v in self.font.getbbox(text))
        pad = 6
        w = min(self.cell_w, right - left + 2 * pad)
        image = Image.new("RGBA", (w, bottom - top + 2 * pad), (0, 0, 0, 150))
        ImageDraw.Draw(image).text((pad - left, pad - top), text, font=self.font,
                                   fill=(255, 255, 255, 255))
        return image

    def placeholder(self, name: str, status: str) -> Image.Image:
        image = Image.new("RGB", (self.cell_w, self.cell_h), PLACEHOLDER)
        draw = ImageDraw.Draw(image)
        for text, font, dy in ((name, self.big, -0.6), (STATUS_TEXT[status], self.font, 0.9)):
            left, top, right, bottom = (int(v) for v in font.getbbox(text))
            x = (self.cell_w - (right - left)) // 2 - left
            y = int(self.cell_h / 2 + dy * (bottom - top)) - (bottom - top) // 2 - top
            draw.text((x, y), text, font=font, fill=(220, 224, 230))
        return image

    def clock(self, text: str) -> Image.Image:
        if text != self._clock_text or self._clock_image is None:
            left, top, right, bottom = (int(v) for v in self.clock_font.getbbox(text))
            pad = 8
            image = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad),
                              (0, 0, 0, 160))
            ImageDraw.Draw(image).text((pad - left, pad - top), text, font=self.clock_font,
                                       fill=(255, 255, 255, 255))
            self._clock_text, self._clock_image = text, image
        return self._clock_image

    def fit(self, frame: Any) -> Image.Image:
        """A decoded frame scaled (by FFmpeg) to fit its cell, aspect kept."""
        scale = min(self.cell_w / frame.width, self.cell_h / frame.height)
        w = max(2, int(frame.width * scale) // 2 * 2)
        h = max(2, int(frame.height * scale) // 2 * 2)
        return frame.reformat(width=w, height=h, format="rgb24").to_image()


# --- the export ---------------------------------------------------------------------------------

def export_recording(directory: Path, timeline: dict[str, Any], out: Path, *,
                     timezone: str = "Asia/Shanghai", font: str | os.PathLike[str] | None = None,
                     width: int = WIDTH, height: int = HEIGHT, fps: int = FPS,
                     progress: Progress | None = None, cancelled: Cancelled | None = None,
                     threads: int = 2) -> ExportResult:
    """Write the composite MP4 of the recording in ``directory`` to ``out`` (written under a
    temporary name and renamed when complete)."""
    start, duration, cells, audio_tracks = plan(directory, timeline)
    if duration <= 0:
        raise ExportError("录像时长为 0，无法导出。", "The recording has no duration.")
    tz = zoneinfo.ZoneInfo(timezone)
    painter = _Painter(find_font(font), width, height, max(1, len(cells)))
    labels = [painter.label(c.label()) for c in cells]
    placeholders: dict[tuple[int, str], Image.Image] = {}
    readers: list[dict[int, _VideoReader]] = [{} for _ in cells]
    shown: list[tuple[Any, Image.Image] | None] = [None for _ in cells]

    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    container: Any = av.open(str(part), mode="w", format="mp4",
                             options={"movflags": "+faststart"})
    try:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23", "threads": str(threads)}
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        audio.bit_rate = 96000
        mixer = _Mixer(audio_tracks)
        total_frames = max(1, round(duration * fps))
        total_samples = round(duration * SAMPLE_RATE)
        mixed = 0
        for n in range(total_frames):
            if cancelled is not None and cancelled():
                raise ExportCancelled()
            t = n / fps
            # Audio first, up to this frame's time: the muxer then interleaves closely.
            while mixed < min(total_samples, round((t + 0.2) * SAMPLE_RATE)):
                count = min(AUDIO_CHUNK, total_samples - mixed)
                for frame in mixer.chunk(mixed, count):
                    frame.pts = None  # the encoder counts samples itself
                    container.mux(audio.encode(frame))
                mixed += count
            canvas = Image.new("RGB", (width, height), BACKGROUND)
            for i, c in enumerate(cells):
                x, y = painter.origin(i)
                status = c.status(t)
                picture = None
                if status is None:
                    picture = _picture(c, readers[i], t)
                    if picture is None:
                        status = "no_video"
                if picture is not None:
                    cached = shown[i]
                    if cached is None or cached[0] is not picture:
                        cached = (picture, painter.fit(picture))
                        shown[i] = cached
                    image = cached[1]
                    canvas.paste(CELL_BACKGROUND, (x, y, x + painter.cell_w, y + painter.cell_h))
                    canvas.paste(image, (x + (painter.cell_w - image.width) // 2,
                                         y + (painter.cell_h - image.height) // 2))
                else:
                    assert status is not None
                    key = (i, status)
                    if key not in placeholders:
                        placeholders[key] = painter.placeholder(c.name or c.label(), status)
                    canvas.paste(placeholders[key], (x, y))
                label = labels[i]
                canvas.paste(label, (x + 4, y + painter.cell_h - label.height - 4), label)
            when = dt.datetime.fromtimestamp(start + t, tz).strftime("%Y-%m-%d %H:%M:%S")
            stamp = painter.clock(when)
            canvas.paste(stamp, (width - stamp.width - 8, 8), stamp)
            frame = av.VideoFrame.from_image(canvas).reformat(format="yuv420p")
            frame.pts = n
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
            if progress is not None:
                progress((n + 1) / total_frames)
        container.mux(video.encode(None))
        while mixed < total_samples:  # a very short recording: the audio's tail
            count = min(AUDIO_CHUNK, total_samples - mixed)
            for frame in mixer.chunk(mixed, count):
                frame.pts = None
                container.mux(audio.encode(frame))
            mixed += count
        container.mux(audio.encode(None))
        container.close()
    except BaseException:
        with contextlib.suppress(Exception):
            container.close()
        part.unlink(missing_ok=True)
        raise
    finally:
        for by_track in readers:
            for reader in by_track.values():
                reader.close()
    os.replace(part, out)
    return ExportResult(path=out, duration=duration, frames=total_frames,
                        size=out.stat().st_size, cells=len(cells))


def _picture(c: _Cell, readers: dict[int, _VideoReader], t: float) -> Any:
    """The frame a cell shows at ``t``: from its newest track started by then, if that track
    has a frame no older than STALE_S."""
    current = None
    for index, track in enumerate(c.tracks):
        if track.offset <= t:
            current = index
    if current is None:
        return None
    for index in [k for k in readers if k != current]:
        readers.pop(index).close()  # a newer track (a reconnect) replaced it
    reader = readers.get(current)
    if reader is None:
        reader = readers[current] = _VideoReader(c.tracks[current])
    frame, at = reader.at(t)
    if frame is None or t - at > STALE_S:
        return None
    return frame
