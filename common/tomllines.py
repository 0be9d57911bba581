"""Where things are in a TOML text: the line of a key, the line of a syntax error.

``tomllib`` keeps no line numbers; config errors that name the line a technician must fix need
them (the node's config, the centre's web settings).
"""

from __future__ import annotations

import contextlib
import json
import re


def toml_syntax_problem(message: str, text: str, source: str) -> str:
    """A TOMLDecodeError's message as ``source line N, column M: invalid TOML: ...``."""
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found:
        where = f"{source} line {found.group(1)}, column {found.group(2)}"
    else:
        found = re.search(r"\s*\(at end of document\)$", message)
        if not found:
            return f"{source}: invalid TOML: {message}"
        where = f"{source} line {len(text.splitlines()) or 1}, at the end"
    return f"{where}: invalid TOML: {message[: found.start()]}"


class KeyLines:
    """Line numbers of the keys and table headers of a TOML text (tomllib keeps none).

    A line scanner, not a parser: it knows ``[table]``, ``[[array]]``, ``key = ...`` with dotted
    and quoted keys, and skips multi-line strings; that covers config files written by people.
    Keys inside inline tables are not indexed: they map to the line of the enclosing key.
    """

    _PART = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*""")

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_string: str | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if in_string:
                if raw.count(in_string) % 2:
                    in_string = None
                continue
            if line.startswith("["):
                inner = line[2:] if line.startswith("[[") else line[1:]
                key, _ = self._key(inner, "]")
                if key:
                    table = key
                    self.lines.setdefault(table, number)
                continue
            key, rest = self._key(line, "=")
            if key:
                for size in range(1, len(key) + 1):  # `a.b = 1` also defines table `a`
                    self.lines.setdefault(table + key[:size], number)
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2:
                        in_string = quote

    def _key(self, text: str, end: str) -> tuple[tuple[str, ...], str]:
        parts: list[str] = []
        pos = 0
        while True:
            found = self._PART.match(text, pos)
            if not found or found.end() == pos:
                return (), ""
            bare, basic, literal = found.groups()
            if basic is not None:
                with contextlib.suppress(ValueError):  # a bad escape: keep the text as written
                    basic = json.loads(f'"{basic}"')
            parts.append(bare if bare is not None else basic if basic is not None else literal)
            pos = found.end()
            if text.startswith(end, pos):
                return tuple(parts), text[pos + 1 :]
            if not text.startswith(".", pos):
                return (), ""
            pos += 1

    def find(self, path: list[str]) -> int | None:
        """The line of ``path``, else of its closest enclosing key or table that is in the file."""
        for size in range(len(path), 0, -1):
            number = self.lines.get(tuple(path[:size]))
            if number is not None:
                return number
        return None
