"""Spoken prompts (server/speech.py, /api/speech): a prompt renders once into a real audio file
(read back with PyAV), is served from the cache, and anything that is not a prompt is refused."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import replace
from pathlib import Path

import av
import pytest

from server.config import Config, ConfigError
from server.speech import MAX_TEXT, PROMPTS, Speech, audio_name, prompt_key
from signaling.errors import SignalError
from tests.support.http import client_session
from tests.support.server import LiveServer, start_server

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed: ./yunzhen.sh test installs it")
I18N = Path(__file__).resolve().parents[2] / "web" / "static" / "js" / "i18n.js"
TURN = "请税A001号准备，工作人员马上接通。"


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


def test_the_server_speaks_the_prompts_the_page_shows() -> None:
    source = I18N.read_text(encoding="utf-8")
    zh = source.split("  zh: {", 1)[1].split("\n  en: {", 1)[0]
    page = dict(re.findall(r"^\s{4}(speak_[a-z_]+): '([^']*)',$", zh, re.MULTILINE))
    assert page == PROMPTS


def test_only_prompts_with_plausible_fields_are_known() -> None:
    assert prompt_key(TURN) == "speak_ringing"
    assert prompt_key(PROMPTS["speak_notice"].replace("{dept}", "住房公积金")) == "speak_notice"
    assert prompt_key(PROMPTS["speak_waiting"].format(number="税A001", n=3)) == "speak_waiting"
    for text in ("", "你好", TURN + "再见", "请税A001号准备；rm -rf /，工作人员马上接通。",
                 PROMPTS["speak_waiting"].format(number="税A001", n="三"), "请" + "9" * 200):
        assert prompt_key(text) is None, text
    assert prompt_key(PROMPTS["speak_notice"].replace("{dept}", "税" * (MAX_TEXT))) is None


async def test_a_prompt_renders_once_into_real_audio(tmp_path: Path) -> None:
    speech = Speech(tmp_path / "speech", voice="cmn", max_files=3)
    try:
        # Two asks at once share one render.
        first, second = await asyncio.gather(speech.render(TURN), speech.render(TURN))
        assert first == second == audio_name("cmn", TURN)
        path = speech.path(first)
        assert path is not None and _duration(path) > 1.0
        written = path.stat().st_mtime_ns
        assert await speech.render(TURN) == first
        assert path.stat().st_mtime_ns == written  # from the cache, not rendered again
        with pytest.raises(SignalError) as refused:
            await speech.render("请把门打开")
        assert refused.value.name == "invalid_payload.speech"
        # The cache keeps max_files prompts: the oldest go.
        for n in range(1, 5):
            await speech.render(PROMPTS["speak_waiting"].format(number=f"税A00{n}", n=n))
        assert len(list((tmp_path / "speech").glob("*.wav"))) == 3
        assert speech.path(first) is None
        assert speech.path("../../etc/passwd") is None
    finally:
        await speech.close()


async def test_without_espeak_ng_nothing_renders_and_the_log_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    speech = Speech(tmp_path / "speech", binary="no-such-espeak-ng")
    assert not speech.available
    assert "no-such-espeak-ng is not installed" in caplog.text
    with pytest.raises(SignalError) as refused:
        await speech.render(TURN)
    assert refused.value.name == "unavailable.speech"
    assert not (tmp_path / "speech").exists()


def test_a_bad_voice_stops_the_start() -> None:
    for voice in ("", "cmn; rm -rf /", "-w/tmp/x", "x" * 41):
        with pytest.raises(ConfigError, match="speech_voice"):
            Config(speech_voice=voice)
    with pytest.raises(ConfigError, match="speech_cache_files"):
        Config(speech_cache_files=0)


async def test_the_kiosk_gets_a_url_and_the_audio(server: LiveServer) -> None:
    async with client_session() as http:
        answer = await http.get(f"{server.url}/api/speech", params={"text": TURN})
        assert answer.status == 200
        body = await answer.json()
        assert body["off"] is False and re.fullmatch(r"/speech/[0-9a-f]{32}\.wav", body["url"])
        audio = await http.get(server.url + body["url"])
        assert audio.status == 200 and audio.headers["Content-Type"] == "audio/wav"
        assert "immutable" in audio.headers["Cache-Control"]
        data = await audio.read()
        assert data[:4] == b"RIFF" and len(data) > 10_000
        for text in ("随便说点什么", "x" * (MAX_TEXT + 1), ""):
            refused = await http.get(f"{server.url}/api/speech", params={"text": text})
            assert refused.status == 400
            assert (await refused.json())["error"]["code"] == "invalid_payload"
        missing = await http.get(f"{server.url}/speech/{'0' * 32}.wav")
        assert missing.status == 404


async def test_speech_turned_off_answers_off(config: Config, redis_client: object) -> None:
    live = await start_server(replace(config, speech=False))
    try:
        async with client_session() as http:
            body = await (await http.get(f"{live.url}/api/speech",
                                         params={"text": TURN})).json()
            assert body == {"ok": True, "url": None, "off": True}
    finally:
        await live.runner.cleanup()
