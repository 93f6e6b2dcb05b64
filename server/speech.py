"""Spoken prompts for the kiosk: the Mandarin texts the server agrees to speak (PROMPTS, the same
texts as the speak_* entries of web/static/js/i18n.js), rendered once by espeak-ng into WAV files
cached under data_dir/speech, named by a hash of the voice and the text."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

from signaling.errors import SignalError

logger = logging.getLogger(__name__)

# Prompt key → Mandarin template. The page speaks exactly these words (it shows them too); a text
# the server is asked to speak must be one of them with its {fields} filled.
PROMPTS: dict[str, str] = {
    "speak_start": "欢迎使用云诊视频咨询。请点一下您要咨询的部门。",
    "speak_notice": "您选择了{dept}。咨询全程录音录像。同意请勾选，再点开始视频咨询。",
    "speak_declined": "没有同意录音录像，不能视频咨询。请到大厅窗口咨询。",
    "speak_waiting": "您的号码是{number}，排在第{n}位。请在屏幕前稍候。",
    "speak_ringing": "请{number}号准备，工作人员马上接通。",
    "speak_call": "视频已接通，请看着屏幕说话。",
    "speak_rating": "通话已结束。请为本次服务评价。",
    "speak_thanks": "感谢您的评价，祝您办事顺利。",
    "speak_callback": "现在不能视频咨询。您可以留下电话，工作人员会给您回电。",
    "speak_callback_done": "登记成功，工作人员会给您回电。",
    "speak_revoked": "本设备已停用，请到大厅窗口咨询。",
    "speak_error": "操作没有成功，请再试一次，或请工作人员帮助。",
}
# What a {field} may hold: a hall number (prefix, lane, digits), a department name, a position.
FIELDS: dict[str, str] = {
    "number": r"[A-Za-z\u4e00-\u9fff]{0,4}[0-9]{1,5}",
    "dept": r"[\u4e00-\u9fffA-Za-z0-9·（）() ]{1,30}",
    "n": r"[0-9]{1,4}",
}
MAX_TEXT = 120  # characters: the longest filled template stays well below
RENDER_TIMEOUT = 15.0  # seconds espeak-ng may take for one prompt
NAME = re.compile(r"[0-9a-f]{32}\.wav")
_FIELD = re.compile(r"\{(\w+)\}")


def _pattern(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    last = 0
    for match in _FIELD.finditer(template):
        parts.append(re.escape(template[last:match.start()]))
        parts.append(f"(?:{FIELDS[match.group(1)]})")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts))


_PATTERNS = {key: _pattern(text) for key, text in PROMPTS.items()}


def prompt_key(text: str) -> str | None:
    """The prompt `text` is (a template with its fields filled), or None for any other text."""
    if not 0 < len(text) <= MAX_TEXT:
        return None
    for key, pattern in _PATTERNS.items():
        if pattern.fullmatch(text):
            return key
    return None


def audio_name(voice: str, text: str) -> str:
    """The cache file name of `text` spoken by `voice`."""
    return hashlib.sha256(f"{voice}\n{text}".encode()).hexdigest()[:32] + ".wav"


class Speech:
    """Renders prompts with espeak-ng into `folder`: each text once (concurrent asks for the same
    text share one render), at most `concurrency` renders at a time, at most `max_files` files
    kept (the oldest go first)."""

    def __init__(self, folder: Path, *, voice: str = "cmn", binary: str = "espeak-ng",
                 concurrency: int = 2, max_files: int = 500) -> None:
        self.folder = folder
        self.voice = voice
        self.max_files = max_files
        self.binary = shutil.which(binary)
        self._slots = asyncio.Semaphore(concurrency)
        self._rendering: dict[str, asyncio.Task[None]] = {}
        if self.binary is None:
            logger.warning("speech: %s is not installed; kiosks fall back to the browser's own "
                           "voice or to text only (apt-get install espeak-ng)", binary)
        else:
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def available(self) -> bool:
        return self.binary is not None

    def path(self, name: str) -> Path | None:
        """The rendered file called `name`, or None when there is none."""
        if not NAME.fullmatch(name):
            return None
        path = self.folder / name
        return path if path.is_file() else None

    async def render(self, text: str) -> str:
        """The file name of `text` spoken, rendering it on the first ask. Refuses any text that
        is not a prompt (invalid_payload.speech) and answers unavailable.speech without espeak-ng
        or when it fails."""
        if prompt_key(text) is None:
            raise SignalError("invalid_payload.speech", "not a known prompt")
        if self.binary is None:
            raise SignalError("unavailable.speech", "espeak-ng is not installed")
        name = audio_name(self.voice, text)
        if (self.folder / name).is_file():
            return name
        task = self._rendering.get(name)
        if task is None:
            task = asyncio.create_task(self._render(text, name), name=f"speech-{name}")
            self._rendering[name] = task
            task.add_done_callback(self._rendered)
        try:
            await asyncio.shield(task)
        except (OSError, RuntimeError, TimeoutError) as exc:
            logger.warning("speech: rendering %s failed: %s", name, exc)
            raise SignalError("unavailable.speech", "rendering failed") from None
        return name

    def _rendered(self, task: asyncio.Task[None]) -> None:
        self._rendering.pop(task.get_name().removeprefix("speech-"), None)
        if not task.cancelled():
            task.exception()  # retrieved: the askers (if any are left) log it

    async def _render(self, text: str, name: str) -> None:
        assert self.binary is not None
        partial = self.folder / f".{name}.{os.getpid()}.part"
        async with self._slots:
            # The text goes in on stdin, never through a shell or as an argument.
            proc = await asyncio.create_subprocess_exec(
                self.binary, "-v", self.voice, "-w", str(partial), "--stdin",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
            try:
                _, err = await asyncio.wait_for(proc.communicate(text.encode()), RENDER_TIMEOUT)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                partial.unlink(missing_ok=True)
                raise
            if proc.returncode != 0 or not partial.is_file() or partial.stat().st_size <= 44:
                partial.unlink(missing_ok=True)
                raise RuntimeError(f"espeak-ng exit {proc.returncode}: {err.decode()[-200:]}")
            os.replace(partial, self.folder / name)
        logger.info("speech: rendered %s (%d characters)", name, len(text))
        self._trim()

    def _trim(self) -> None:
        """Keep at most max_files rendered prompts: the least recently written go."""
        try:
            files = sorted(self.folder.glob("*.wav"), key=lambda p: p.stat().st_mtime)
            for old in files[:max(0, len(files) - self.max_files)]:
                old.unlink(missing_ok=True)
        except OSError as exc:  # another process trimming the same folder
            logger.info("speech: trimming the cache: %s", exc)

    async def close(self) -> None:
        """Stop renders still running; may be called twice."""
        tasks = list(self._rendering.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
