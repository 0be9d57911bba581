"""The test modules share helpers through conftest.py, helpers.py and support_*.py, never through each other.

Importing a test module runs its module-level code (marks, skips), makes the fixtures it imports the
importer's own, and turns its test-only globals into an API.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported(path: Path) -> set[str]:
    """The top-level names of the modules ``path`` imports, anywhere in it (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_of_the_tests_imports_a_test_module() -> None:
    found = sorted(
        f"{path.name} imports {name}"
        for path in TESTS.glob("*.py")
        for name in imported(path)
        if name.startswith("test_")
    )
    assert found == [], "move what is shared into helpers.py, a support_*.py module or conftest.py"
