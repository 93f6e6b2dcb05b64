"""The key layout (signaling/keys.py): every key documented, built in one place, and the queue
script's builders (generated into its prelude) build the same keys as Python's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from signaling import keys
from signaling.queue import prelude

SIGNALING = Path(keys.__file__).parent


def _string_constants(path: Path) -> list[str]:
    """The string literals of a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def test_every_key_of_signaling_is_in_the_documented_layout() -> None:
    doc = keys.__doc__ or ""
    for name, key in keys.signaling_keys().items():
        written = key.documented_as if isinstance(key, keys.Family) else key
        assert f"  {written} " in doc or f"  {written}\n" in doc, f"{name} ({written})"


def test_no_key_is_built_by_hand_outside_the_key_module() -> None:
    lua = (SIGNALING / "queue.lua").read_text(encoding="utf-8")
    assert keys.PREFIX not in lua
    for path in sorted(SIGNALING.glob("*.py")):
        if path.name != "keys.py":
            bad = [s for s in _string_constants(path) if keys.PREFIX in s]
            assert not bad, f"{path.name}: {bad}"


def test_a_family_takes_exactly_its_parts() -> None:
    assert keys.NODE("n1", "rooms") == "yz:node:n1:rooms"
    assert keys.DECLINED("t1") == "yz:ticket:t1:declined"
    with pytest.raises(TypeError, match="ticket:"):
        keys.TICKET()
    with pytest.raises(TypeError):
        keys.QUEUE("tax", "extra")


async def test_the_lua_builders_build_the_same_keys(redis_client: aioredis.Redis) -> None:
    calls, expected = [], []
    for name, key in keys.signaling_keys().items():
        if isinstance(key, keys.Family):
            parts = [f"p{i}" for i in range(len(key.fields))]
            calls.append(f"K.{name}({', '.join(repr(p) for p in parts)})")
            expected.append(key(*parts))
        else:
            calls.append(f"K.{name}")
            expected.append(key)
    script = prelude() + f"return {{{', '.join(calls)}}}"
    assert await redis_client.eval(script, 0) == expected


async def test_a_name_missing_from_the_prelude_is_an_error_not_nil(
        redis_client: aioredis.Redis) -> None:
    with pytest.raises(redis.exceptions.ResponseError, match=r"Presence\.BUSY is not defined"):
        await redis_client.eval(prelude() + "return Presence.BUSY", 0)
