"""A server with ``media.video_codec = "h264"``: every video m-line offers only H.264, aiortc
participants decode each other's H.264 (a late joiner within 1 s, through the keyframe relay),
the recording's video tracks are Matroska files that decode with PyAV, crash recovery and the
composite export take them, an answer without H.264 gets a clear unsupported_codec, and the setting
is read from TOML or the environment and checked at start."""

from __future__ import annotations

import asyncio
import fractions
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import pytest

from recordings.codecs import h264_is_keyframe, h264_sps_dimensions
from recordings.export import export_recording
from recordings.recorder import Recorder
from recordings.recovery import recover_directory
from rooms.client import RoomPeer
from rooms.close_reason import CloseReason
from rooms.errors import InvalidAnswer
from rooms.room import Room
from server.config import Config, ConfigError, MediaConfig, load_config
from signaling.client import SignalingClient
from tests.support.rooms import Call

JoinFn = Callable[..., Awaitable[RoomPeer]]


@pytest.fixture
def media() -> MediaConfig:
    return MediaConfig(announce_addresses=("127.0.0.1",), empty_room_timeout=30.0,
                       video_codec="h264")


@pytest.fixture
def config(redis_url: str, tmp_path: Path) -> Config:
    """The real server (for ``call``) in H.264 mode."""
    return Config(host="127.0.0.1", port=8080, redis_url=redis_url, data_dir=tmp_path / "data",
                  demo=True, media=MediaConfig(announce_addresses=("127.0.0.1",),
                                               empty_room_timeout=5.0, video_codec="h264"))


def _video_codecs(sdp: str) -> list[str]:
    """The rtpmap codec names of every video m-line of ``sdp``."""
    names = []
    for section in sdp.split("\r\nm=")[1:]:
        if section.startswith("video"):
            names += re.findall(r"a=rtpmap:\d+ ([\w-]+)/", section)
    return names


def _h264_packets(width: int, height: int, frames: int) -> list[av.Packet]:
    """Annex B access units from libx264 (baseline, as a hardware kiosk encoder would send)."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"profile": "baseline", "tune": "zerolatency", "keyint": "30"}
    packets: list[av.Packet] = []
    for i in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        frame.pts = i
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    return packets


async def test_h264_room_offers_only_h264_and_participants_decode_it(
        room: Room, join: JoinFn, closed_rooms: list[tuple[Room, dict[str, Any] | None]],
        tmp_path: Path) -> None:
    a = await join(room, "a", "applicant", width=320, height=240)
    b = await join(room, "b", "staff", width=320, height=240)
    await a.wait_for_video(15, timeout=10, participant_id="b")
    await b.wait_for_video(15, timeout=10, participant_id="a")
    offer = a.pc.remoteDescription.sdp
    assert set(_video_codecs(offer)) == {"H264", "rtx"}, offer
    assert "profile-level-id=42e01f" in offer and "packetization-mode=1" in offer
    assert "VP8" not in offer
    for peer, other in ((a, "b"), (b, "a")):
        stats = peer.remote(other)
        assert stats is not None
        assert stats.video_codec == "h264"
        assert stats.video_decode_errors == 0
        assert stats.audio_packets + stats.audio_frames > 10

    # A late joiner: the publishers are well past their first keyframe.
    await asyncio.sleep(1.5)
    c = await join(room, "c", "staff", width=320, height=240)
    started = time.monotonic()
    await c.wait_for_video(1, timeout=5, participant_id="a")
    await c.wait_for_video(1, timeout=5, participant_id="b")
    assert time.monotonic() - started < 1.5
    for other in ("a", "b"):
        stats = c.remote(other)
        assert stats is not None and stats.first_frame_delay is not None
        assert stats.first_frame_delay < 1.0, c.stats()
        assert stats.video_codec == "h264" and stats.video_decode_errors == 0
    participant = room.participant("a")
    assert participant is not None
    assert participant.published["video"].keyframe_requests >= 1
    # The others see the newcomer too (and its recording gets some length).
    await a.wait_for_video(10, timeout=5, participant_id="c")
    await b.wait_for_video(10, timeout=5, participant_id="c")

    await room.close(CloseReason.HANGUP)
    assert closed_rooms and closed_rooms[-1][1] is not None
    summary = closed_rooms[-1][1]
    videos = [t for t in summary["tracks"] if t["kind"] == "video"]
    audios = [t for t in summary["tracks"] if t["kind"] == "audio"]
    assert len(videos) == 3 and len(audios) == 3
    directory = Path(summary["dir"])
    for track in videos:
        assert track["codec"] == "h264" and track["file"].endswith(".mkv")
        with av.open(str(directory / track["file"])) as container:
            assert container.format.name.startswith("matroska")
            stream = container.streams.video[0]
            assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
            decoded = sum(1 for _ in container.decode(stream))
        assert decoded >= 10
    for track in audios:
        assert track["codec"] == "opus" and track["file"].endswith(".webm")

    # The composite export decodes the .mkv tracks like the WebM ones.
    result = export_recording(directory, summary, tmp_path / "out" / "r1.mp4", fps=5,
                              threads=1)
    assert result.cells == 3 and result.frames > 0
    with av.open(str(result.path)) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) > 0


async def test_an_answer_without_h264_is_refused_with_a_clear_error(room: Room) -> None:
    answers: asyncio.Queue[str] = asyncio.Queue()

    async def hold_answer(sdp: str) -> None:
        await answers.put(sdp)

    a = RoomPeer(hold_answer, name="a", width=320, height=240)
    try:
        await room.join(participant_id="a", role="applicant", name="a", department=None,
                        signal=a.handle)
        good = await asyncio.wait_for(answers.get(), 10)
        # What a client without H.264 would answer: another codec on the video m-line.
        no_h264 = re.sub(r"a=rtpmap:(\d+) H264/90000", r"a=rtpmap:\1 VP9/90000", good)
        assert no_h264 != good
        with pytest.raises(InvalidAnswer) as caught:
            await room.answer("a", no_h264)
        assert caught.value.code == "unsupported_codec"
        assert "H.264" in caught.value.message and "not support" in caught.value.message
        await room.answer("a", good)  # the offer still waits, and a good answer works
        participant = room.participant("a")
        assert participant is not None and await participant.wait_negotiated(5)
    finally:
        await a.close()


async def test_over_the_socket_an_answer_without_h264_gets_unsupported_codec(
        server: Any, call: Call) -> None:
    answers: asyncio.Queue[str] = asyncio.Queue()

    async def hold_answer(sdp: str) -> None:
        await answers.put(sdp)

    socket = await SignalingClient.connect(server.url, "/room")
    peer = RoomPeer(hold_answer, name="applicant", width=320, height=240)
    try:
        await socket.request("room:join", {"room_id": call.room_id,
                                           "token": call.applicant_token})
        offer = await socket.next("room:offer")
        assert set(_video_codecs(offer["sdp"])) == {"H264", "rtx"}
        await peer.handle("room:offer", offer)
        good = await asyncio.wait_for(answers.get(), 10)
        no_h264 = re.sub(r"a=rtpmap:(\d+) H264/90000", r"a=rtpmap:\1 VP9/90000", good)
        refused = await socket.call("room:answer", {"sdp": no_h264})
        assert refused["ok"] is False and refused["error"]["code"] == "unsupported_codec"
        assert "视频编码" in refused["error"]["message"]
        assert "only H.264 video" in refused["error"]["detail"], refused
        assert (await socket.call("room:answer", {"sdp": good}))["ok"] is True
    finally:
        await peer.close()
        await socket.close()


def test_keyframes_and_sps_dimensions_of_an_h264_stream() -> None:
    # 330x250 is not a multiple of 16: the SPS crops the coded 336x256.
    packets = _h264_packets(330, 250, 3)
    first = bytes(packets[0])
    assert h264_is_keyframe(first)
    assert not h264_is_keyframe(bytes(packets[1]))
    sps = next(unit for unit in first.split(b"\x00\x00\x01")[1:] if unit[0] & 0x1F == 7)
    assert h264_sps_dimensions(sps.rstrip(b"\x00")) == (330, 250)


def test_a_cut_off_h264_recording_is_recovered(tmp_path: Path) -> None:
    """A process dying mid-call leaves an .mkv without its trailer: recovery reads it back."""
    now = [1000.0]
    recorder = Recorder(tmp_path / "r1", room_id="r1", meta={}, clock=lambda: now[0])
    recorder.start()
    recorder.participant_joined("a", role="applicant", name="a", department=None)
    track = recorder.track("a", "video", "h264")
    for i, encoded in enumerate(_h264_packets(320, 240, 60)):
        packet = av.Packet(bytes(encoded))
        packet.pts = packet.dts = i * 3000
        packet.time_base = fractions.Fraction(1, 90000)
        packet.is_keyframe = h264_is_keyframe(bytes(encoded))
        now[0] += 1 / 30
        track.write(packet)
    assert track.file == "a-video-1.mkv"
    # What was on disk at the "crash": the file as written so far, the container still open.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(tmp_path / "r1" / "timeline.json", crashed / "timeline.json")
    shutil.copy(tmp_path / "r1" / track.file, crashed / track.file)
    recorder.close()

    summary = recover_directory(crashed)
    assert summary is not None and summary["recovered"] is True
    [entry] = summary["tracks"]
    assert entry["file"] == "a-video-1.mkv" and entry["codec"] == "h264"
    assert entry["packets"] >= 30
    with av.open(str(crashed / entry["file"])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        assert sum(1 for _ in container.decode(stream)) >= 30


def test_video_codec_setting_is_read_and_checked(tmp_path: Path) -> None:
    assert load_config(env={}).media.video_codec == "vp8"
    path = tmp_path / "yunzhen.toml"
    path.write_text('[media]\nvideo_codec = "h264"\n')
    assert load_config(path, env={}).media.video_codec == "h264"
    assert load_config(env={"YUNZHEN_MEDIA_VIDEO_CODEC": "H264"}).media.video_codec == "h264"
    # The environment wins over the file, as for every other setting.
    assert load_config(path, env={"YUNZHEN_MEDIA_VIDEO_CODEC": "vp8"}).media.video_codec == "vp8"
    for bad in ("vp9", "", "h265"):
        with pytest.raises(ConfigError, match=r"media\.video_codec: .* is not one of vp8, h264"):
            load_config(env={"YUNZHEN_MEDIA_VIDEO_CODEC": bad})
    path.write_text("[media]\nvideo_codec = 264\n")
    with pytest.raises(ConfigError, match=r"media\.video_codec"):
        load_config(path, env={})
