"""The layers of docs/architecture.md hold: no module imports one of a layer its own may not import.

The table in docs/architecture.md is the rule; this test reads it, so the rule is written once.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "sync", "provisioning", "drivers", "inference", "edge", "ioc")

KNOWN: set[tuple[str, str]] = set()
"""Imports that break the layers (none now: see docs/architecture.md); a new one needs a reason there."""


def layers(doc: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    """``(prefix -> layer, layer -> layers it may import)`` from the table between the markers."""
    text = doc.read_text()
    table = text[text.index("<!-- layers:") : text.index("<!-- end of layers -->")]
    prefixes: dict[str, str] = {}
    allowed: dict[str, set[str]] = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("layer", "---"):
            continue
        name, modules, may = cells
        prefixes |= dict.fromkeys(re.findall(r"`([a-z_.]+)`", modules), name)
        allowed[name] = {m.strip() for m in may.split(",") if m.strip()}
    return prefixes, allowed


def layer_of(module: str, prefixes: dict[str, str]) -> str | None:
    """The layer of the longest prefix of ``module`` in the table; None for a module of no layer."""
    found = [p for p in prefixes if module == p or module.startswith(p + ".")]
    return prefixes[max(found, key=len)] if found else None


def imports(path: Path, root: Path) -> set[str]:
    """The modules of our packages that ``path`` imports, anywhere in it (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from sync import wire` imports sync.wire: name the module when it is one.
            names |= {
                f"{node.module}.{alias.name}"
                if (root / node.module.replace(".", "/") / f"{alias.name}.py").exists()
                else node.module
                for alias in node.names
            }
    return {n for n in names if n.split(".")[0] in PACKAGES}


def violations(root: Path, doc: Path) -> set[tuple[str, str]]:
    """Every ``(importer, imported)`` pair of modules under ``root`` that the table does not allow."""
    prefixes, allowed = layers(doc)
    found = set()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            mine = layer_of(module, prefixes)
            for name in imports(path, root):
                theirs = layer_of(name, prefixes)
                if mine is None or theirs is None:
                    found.add((module, name))  # a module the table does not place is an error too
                elif theirs != mine and theirs not in allowed[mine]:
                    found.add((module, name))
    return found


def test_every_import_keeps_to_the_layers() -> None:
    found = violations(ROOT, ROOT / "docs" / "architecture.md")
    assert found - KNOWN == set(), "imports that break docs/architecture.md's layers"
    assert KNOWN - found == set(), "these no longer break the layers: take them off KNOWN"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("common/clock.py", "from sync.records import Position\n", {("common.clock", "sync.records")}),
        ("sync/wire.py", "def f():\n    import edge.config\n", {("sync.wire", "edge.config")}),
        ("ioc/receiver.py", "from drivers import nmea\n", {("ioc.receiver", "drivers.nmea")}),
        ("ioc/demo.py", "from drivers import nmea\n", set()),
        ("edge/cli.py", "from ioc.db import Database\n", {("edge.cli", "ioc.db")}),
        ("edge/cli.py", "from sync.store import Store\n", set()),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, module: str, source: str, expected: set) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "drivers" / "nmea.py").write_text("")
    (tmp_path / module).write_text(source)
    assert violations(tmp_path, ROOT / "docs" / "architecture.md") == expected
