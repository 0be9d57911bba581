"""Every command of both command lines, nested groups included, has help with an example and is in docs.

The walk asks each group for its commands as click does (``list_commands``/``get_command``), so a
group that loads its commands lazily is walked like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from edge.cli import main as edge_main
from ioc.cli import main as center_main

COMMANDS_MD = Path(__file__).resolve().parents[1] / "docs" / "commands.md"
PROGRAMS = {"ioc-edge": edge_main, "ioc-center": center_main}


def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    """``(path, command)`` for ``command`` and every command under it: ``("ioc-center ca init", ...)``."""
    yield path, command
    if isinstance(command, click.Group):
        context = click.Context(command, info_name=path)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, f"{path} lists {name!r} but cannot load it"
            yield from walk(sub, f"{path} {name}")


def documented(path: str, docs: str) -> bool:
    """Whether ``docs`` shows ``path`` in a code span, as `` `ioc-edge config check FILE` `` shows it."""
    return re.search("`" + re.escape(path) + r"(?![\w-])", docs) is not None


def problems(path: str, command: click.Command, docs: str) -> list[str]:
    """What ``command`` (called as ``path``) lacks: help text, an example, a place in docs/commands.md."""
    program = path.split()[0]
    found = []
    text = command.help or ""
    if not text.strip():
        found.append(f"{path}: no help text: give the command a docstring")
    elif f"Example: {program}" not in text:
        found.append(f"{path}: its help has no 'Example: {program} ...' line")
    if not documented(path, docs):
        found.append(f"{path}: not in docs/commands.md: add a row `{path} ...` with an example")
    return found


def resolve(words: list[str]) -> str | None:
    """The first word of ``words`` (a command line as docs show it) that names no command, else None."""
    command: click.Command = PROGRAMS[words[0]]
    for word in words[1:]:
        if not isinstance(command, click.Group) or not re.fullmatch(r"[a-z][a-z0-9-]*", word):
            return None  # past the command: an argument such as FILE, an option, a [placeholder]
        sub = command.get_command(click.Context(command), word)
        if sub is None:
            return word
        command = sub
    return None


ALL = [item for program, main in PROGRAMS.items() for item in walk(main, program)]


@pytest.mark.parametrize(("path", "command"), ALL, ids=[path for path, _ in ALL])
def test_each_command_has_help_with_an_example_and_a_row_in_the_docs(path, command):
    assert problems(path, command, COMMANDS_MD.read_text(encoding="utf-8")) == []


def test_the_walk_reaches_nested_groups():
    paths = {path for path, _ in ALL}
    assert {"ioc-edge config check", "ioc-edge decode nmea", "ioc-center ca revoke-signer"} <= paths
    assert {"ioc-center broker disconnect", "ioc-center user unlock", "ioc-center track verify"} <= paths


def test_every_command_the_docs_name_exists():
    docs = COMMANDS_MD.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `((?:ioc-edge|ioc-center)(?: [^`]*)?)`", docs, re.M)
    assert len(rows) >= 30
    unknown = {row: word for row in rows if (word := resolve(row.split())) is not None}
    assert unknown == {}, "docs/commands.md names commands that do not exist"


def test_a_command_without_help_example_or_docs_is_named_with_what_to_do():
    @click.group()
    def tool() -> None:
        """A tool.

        Example: tool quiet
        """

    @tool.command()
    def quiet() -> None:
        pass

    @tool.command()
    def terse() -> None:
        """Does things."""

    found = [p for path, command in walk(tool, "tool") for p in problems(path, command, "`tool terse FILE`")]
    assert found == [
        "tool quiet: no help text: give the command a docstring",
        "tool quiet: not in docs/commands.md: add a row `tool quiet ...` with an example",
        "tool terse: its help has no 'Example: tool ...' line",
    ]
    assert documented("tool terse", "`tool terse-all`") is False
    assert resolve(["ioc-center", "ca", "revoke-all", "NAME"]) == "revoke-all"
    assert resolve(["ioc-center", "ca", "revoke", "DEVICE"]) is None
