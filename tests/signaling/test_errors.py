"""The one error catalogue: every refusal the source raises by name is in it, every room-layer
error maps to one of its entries, and docs/protocol.md lists it as it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rooms.errors import RoomError, RoomFull
from signaling.errors import CATALOGUE, SignalError, from_room_error

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE = ("server", "signaling", "rooms", "recordings")


def literal_names(node: ast.expr) -> list[str]:
    """The string constants an argument can be (both sides of `a if c else b`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return literal_names(node.body) + literal_names(node.orelse)
    return []


def raised_names(path: Path) -> list[str]:
    """The catalogue names a module passes to `SignalError(...)` as literals."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else \
            func.attr if isinstance(func, ast.Attribute) else ""
        if called == "SignalError":
            names.extend(literal_names(node.args[0]))
    return names


def all_subclasses(cls: type[RoomError]) -> set[type[RoomError]]:
    found: set[type[RoomError]] = set(cls.__subclasses__())
    for sub in list(found):
        found |= all_subclasses(sub)
    return found


def catalogue_table() -> str:
    """The catalogue as docs/protocol.md shows it."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| name | HTTP | message | message_en |", "|---|---|---|---|"]
    rows += [f"| `{name}` | {text.status} | {cell(text.zh)} | {cell(text.en)} |"
             for name, text in CATALOGUE.items()]
    return "\n".join(rows) + "\n"


def test_every_error_the_source_raises_by_name_is_in_the_catalogue() -> None:
    missing = {
        f"{path.relative_to(ROOT)}: {name}"
        for layer in SOURCE for path in (ROOT / layer).rglob("*.py")
        for name in raised_names(path) if name not in CATALOGUE
    }
    assert not missing, "\n".join(sorted(missing))


def test_the_scan_sees_literal_and_conditional_names(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("raise SignalError('a')\nraise errors.SignalError('b' if x else 'c', 'd')\n"
                      "raise SignalError(code)\nraise ValueError('e')\n", encoding="utf-8")
    assert raised_names(module) == ["a", "b", "c"]


def test_every_room_error_maps_to_a_catalogue_entry() -> None:
    import rooms.manager  # noqa: F401  (RoomExists is declared there)

    wrong = {cls.__name__: cls.code for cls in all_subclasses(RoomError) | {RoomError}
             if cls.code not in CATALOGUE}
    assert not wrong


def test_a_room_error_answers_with_its_code_and_its_text_as_the_detail() -> None:
    answer = from_room_error(RoomFull("8 publishers already")).to_dict()
    assert answer["error"]["code"] == "room_full"
    assert answer["error"]["message"] == CATALOGUE["room_full"].zh
    assert answer["error"]["detail"] == "8 publishers already"


@pytest.mark.parametrize("name", ["not_found.room", "forbidden.reviewers", "busy.exports"])
def test_a_variant_answers_with_its_code_and_its_own_texts(name: str) -> None:
    error = SignalError(name)
    assert error.code == name.split(".")[0]
    assert error.status == CATALOGUE[name].status
    assert error.to_dict() == {"ok": False, "error": {
        "code": error.code, "message": CATALOGUE[name].zh, "message_en": CATALOGUE[name].en}}


def test_parameters_fill_the_texts() -> None:
    error = SignalError("invalid_payload.seconds", name="min_duration")
    assert error.message == "min_duration 应为不小于 0 的秒数。"
    assert error.message_en == "min_duration must be a number of seconds ≥ 0."


def test_an_unknown_name_answers_internal() -> None:
    assert SignalError("no_such_error").to_dict()["error"]["code"] == "internal"


def test_protocol_md_lists_the_catalogue() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    table = catalogue_table()
    assert table in text, "docs/protocol.md should hold this table (## Errors):\n\n" + table
