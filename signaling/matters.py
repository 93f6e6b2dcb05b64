"""The matter catalogue (事项库): what each department handles, with the materials an applicant
brings, the legal basis, fee, time limit and whether it can be done online; values that check
themselves, and their Redis store (keys in signaling/keys.py)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from rooms.config import ConfigError
from signaling import keys

logger = logging.getLogger(__name__)

# A matter's id is a stable slug (`tax-invoice`): it names the matter in URLs, notices and the
# audit log, so it never changes when the matter is renamed.
MATTER_ID = re.compile(r"^(?=.{1,64}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_DEPT_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # signaling/departments.py's rule
FORMS = ("original", "copy", "either")  # 原件, 复印件, 原件或复印件
MAX_NAME = 64
MAX_NOTES = 200
MAX_LEGAL_BASIS = 1000
MAX_SHORT = 100  # fee and time limit
MAX_COUNT = 99
MAX_MATERIALS = 50
# Whole attempts at a matter's read-check-write before giving up (another admin saving the same
# matter at the same moment is the only reason to retry).
MAX_TRIES = 10


class MatterError(ConfigError):
    """A matter or material that does not check: the English reason is the message, `zh` the
    Chinese one (the admin page shows it as it is)."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.zh = zh


def _text(value: object, field: str, label: str, low: int, high: int,
          lines: bool = False) -> str:
    """A text field: 1 (or 0) to `high` characters, no control characters (line breaks only
    where `lines`: a name, fee or time limit is one line on the kiosk and the notice)."""
    if not isinstance(value, str):
        raise MatterError(f"{field} must be text", f"{label}应为文字")
    if not low <= len(value.strip()) <= high or len(value) > high:
        if low:
            raise MatterError(f"{field} must be text of 1 to {high} characters",
                              f"{label}应为 1 到 {high} 个字")
        raise MatterError(f"{field} must be at most {high} characters",
                          f"{label}最多 {high} 个字")
    allowed = "\n\r\t" if lines else ""
    if any((ord(c) < 32 or 0x7f <= ord(c) < 0xa0) and c not in allowed for c in value):
        raise MatterError(f"{field} must not contain control characters",
                          f"{label}含有不允许的控制字符")
    return value


def _known(data: Mapping[str, Any], known: set[str], what: str, label: str) -> None:
    unknown = set(data) - known
    if unknown:
        names = ", ".join(sorted(str(u) for u in unknown))
        raise MatterError(f"{what}: unknown field(s) {names}", f"{label}含有未知字段：{names}")


@dataclass(frozen=True)
class Material:
    """One material an applicant brings: its name, whether the original or a copy (or either),
    how many, and notes (e.g. 加盖公章)."""

    name: str
    form: str
    count: int
    notes: str

    def __post_init__(self) -> None:
        _text(self.name, "material name", "材料名称", 1, MAX_NAME)
        if self.form not in FORMS:
            raise MatterError(f"material form must be one of {', '.join(FORMS)}",
                              "材料形式应为原件、复印件或原件或复印件")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or \
                not 1 <= self.count <= MAX_COUNT:
            raise MatterError(f"material count must be a whole number from 1 to {MAX_COUNT}",
                              f"材料份数应为 1 到 {MAX_COUNT} 的整数")
        _text(self.notes, "material notes", "材料备注", 0, MAX_NOTES, lines=True)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "form": self.form, "count": self.count, "notes": self.notes}

    @classmethod
    def from_dict(cls, data: object) -> Material:
        if not isinstance(data, Mapping):
            raise MatterError("a material must be an object", "每项材料应为一个对象")
        _known(data, {"name", "form", "count", "notes"}, "material", "材料")
        count = data.get("count", 1)
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        return cls(name=_text(data.get("name"), "material name", "材料名称", 1,
                              MAX_NAME).strip(),
                   form=data.get("form", "original"), count=count,
                   notes=_text(data.get("notes", ""), "material notes", "材料备注", 0,
                               MAX_NOTES, lines=True).strip())


@dataclass(frozen=True)
class Matter:
    """A matter (事项) of one department, as the catalogue keeps it."""

    id: str
    department: str
    name: str
    materials: tuple[Material, ...]
    legal_basis: str
    fee: str
    time_limit: str
    online: bool

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not MATTER_ID.match(self.id):
            raise MatterError("id must be lower-case letters and digits in words joined by -, "
                              "starting with a letter (at most 64)",
                              "事项编号应以小写字母开头，由小写字母、数字和单个 - 连接而成，"
                              "不以 - 结尾（最多 64 个）")
        if not isinstance(self.department, str) or not _DEPT_ID.match(self.department):
            raise MatterError("department is not a department id", "所属部门编号不正确")
        _text(self.name, "name", "事项名称", 1, MAX_NAME)
        if not isinstance(self.materials, tuple) or \
                not all(isinstance(m, Material) for m in self.materials):
            raise MatterError("materials must be a list of materials", "材料清单格式不正确")
        if len(self.materials) > MAX_MATERIALS:
            raise MatterError(f"at most {MAX_MATERIALS} materials",
                              f"材料最多 {MAX_MATERIALS} 项")
        names = [m.name for m in self.materials]
        if len(set(names)) != len(names):
            raise MatterError("a material is listed twice", "材料清单中有重复的材料")
        _text(self.legal_basis, "legal_basis", "设定依据", 0, MAX_LEGAL_BASIS, lines=True)
        _text(self.fee, "fee", "收费标准", 0, MAX_SHORT)
        _text(self.time_limit, "time_limit", "办理时限", 0, MAX_SHORT)
        if not isinstance(self.online, bool):
            raise MatterError("online must be true or false", "是否可网办应为是或否")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "department": self.department, "name": self.name,
                "materials": [m.to_dict() for m in self.materials],
                "legal_basis": self.legal_basis, "fee": self.fee,
                "time_limit": self.time_limit, "online": self.online}

    @classmethod
    def from_dict(cls, data: object) -> Matter:
        if not isinstance(data, Mapping):
            raise MatterError("a matter must be an object", "事项应为一个对象")
        _known(data, {"id", "department", "name", "materials", "legal_basis", "fee",
                      "time_limit", "online"}, "matter", "事项")
        for field, label in (("id", "事项编号"), ("department", "所属部门"), ("name", "事项名称")):
            if not isinstance(data.get(field), str):
                raise MatterError(f"{field} is required (text)", f"请填写{label}")
        materials = data.get("materials", [])
        if not isinstance(materials, list):
            raise MatterError("materials must be a list of materials", "材料清单格式不正确")
        if len(materials) > MAX_MATERIALS:
            raise MatterError(f"at most {MAX_MATERIALS} materials",
                              f"材料最多 {MAX_MATERIALS} 项")
        texts = {field: _text(data.get(field, ""), field, label, 0, high, lines).strip()
                 for field, label, high, lines in (
                     ("legal_basis", "设定依据", MAX_LEGAL_BASIS, True),
                     ("fee", "收费标准", MAX_SHORT, False),
                     ("time_limit", "办理时限", MAX_SHORT, False))}
        return cls(id=data["id"], department=data["department"],
                   name=_text(data["name"], "name", "事项名称", 1, MAX_NAME).strip(),
                   materials=tuple(Material.from_dict(m) for m in materials),
                   online=data.get("online", False), **texts)


class Matters:
    """The catalogue in Redis: one JSON string per matter, and each department's matters in the
    order they were first saved (a changed matter keeps its place; one moved to another
    department goes to the end of that department's list)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        # decode_responses=True: every reply is str (as signaling/store.py's).
        self.redis = redis

    async def get(self, matter_id: str) -> Matter | None:
        if not MATTER_ID.match(matter_id):
            return None
        return self._parse(await self.redis.get(keys.MATTER(matter_id)))

    async def for_department(self, dept: str) -> list[Matter]:
        return await self._load(cast(list[str], await self.redis.zrange(keys.MATTERS_OF(dept),
                                                                         0, -1)))

    async def all(self) -> list[Matter]:
        """Every matter, in the order they were first saved."""
        return await self._load(cast(list[str], await self.redis.zrange(keys.MATTERS, 0, -1)))

    async def put(self, matter: Matter) -> Matter | None:
        """Create or replace a matter; returns the one it replaced (None when new)."""
        key = keys.MATTER(matter.id)
        text = json.dumps(matter.to_dict(), ensure_ascii=False, sort_keys=True)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_TRIES):
                try:
                    await pipe.watch(key)
                    before = self._parse(await pipe.get(key))
                    seq = await self.redis.incr(keys.MATTER_SEQ)
                    pipe.multi()
                    pipe.set(key, text)
                    if before is not None and before.department != matter.department:
                        pipe.zrem(keys.MATTERS_OF(before.department), matter.id)
                    pipe.zadd(keys.MATTERS_OF(matter.department), {matter.id: seq}, nx=True)
                    pipe.zadd(keys.MATTERS, {matter.id: seq}, nx=True)
                    await pipe.execute()
                    return before
                except WatchError:
                    continue
        raise RuntimeError(f"matter {matter.id}: changed by others {MAX_TRIES} times in a row")

    async def delete(self, matter_id: str) -> Matter | None:
        """Remove a matter; returns it (None when there was none)."""
        if not MATTER_ID.match(matter_id):
            return None
        key = keys.MATTER(matter_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_TRIES):
                try:
                    await pipe.watch(key)
                    before = self._parse(await pipe.get(key))
                    pipe.multi()
                    pipe.delete(key)
                    if before is not None:
                        pipe.zrem(keys.MATTERS_OF(before.department), matter_id)
                    pipe.zrem(keys.MATTERS, matter_id)
                    await pipe.execute()
                    return before
                except WatchError:
                    continue
        raise RuntimeError(f"matter {matter_id}: changed by others {MAX_TRIES} times in a row")

    async def _load(self, ids: list[str]) -> list[Matter]:
        if not ids:
            return []
        rows = await self.redis.mget([keys.MATTER(i) for i in ids])
        return [m for m in (self._parse(row) for row in rows) if m is not None]

    @staticmethod
    def _parse(raw: str | bytes | None) -> Matter | None:
        if raw is None:
            return None
        try:
            return Matter.from_dict(json.loads(raw))
        except (ValueError, ConfigError) as exc:
            # Only this module writes the key, after the same checks: a bad one was changed by
            # hand. Leave it out rather than fail every catalogue read.
            logger.error("a stored matter does not check, left out: %s", exc)
            return None
