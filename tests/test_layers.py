"""The packages depend one way: server → signaling → rooms → recordings. Read from the import
statements of the source, so a new import against the direction fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("server", "signaling", "rooms", "recordings")


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports (also inside functions and TYPE_CHECKING)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def forbidden_for(layer: str) -> set[str]:
    """The layers above this one: it may import only itself and those below."""
    return set(LAYERS[: LAYERS.index(layer)])


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_itself_and_the_layers_below(layer: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}"
        for path in (ROOT / layer).rglob("*.py")
        if (bad := imported_packages(path) & forbidden_for(layer))
    }
    assert not wrong, "\n".join(sorted(wrong))


def test_the_check_sees_an_import_against_the_direction(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nif True:\n    from server.keys import ROOMS\n"
                      "from . import sibling\nimport rooms.room as r\n", encoding="utf-8")
    assert imported_packages(module) == {"os", "server", "rooms"}
    assert forbidden_for("rooms") == {"server", "signaling"}
    assert forbidden_for("server") == set()
