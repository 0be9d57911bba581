"""TOML text from the plain data ``tomllib`` reads (the standard library reads TOML but cannot write it).

Covers what a node config holds: tables, arrays of tables, arrays, strings, numbers, booleans.

Example::

    >>> print(dumps({"node": {"device_id": "vessel-042"}, "drivers": {"gps": {"type": "nmea"}}}), end="")
    [node]
    device_id = "vessel-042"
    <BLANKLINE>
    [drivers.gps]
    type = "nmea"
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["dumps"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        # JSON's string escapes are all valid in a TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(path: tuple[str, ...], table: dict[str, Any], out: list[str], header: str = "[{}]") -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)}
    nested = {k: v for k, v in table.items() if k not in scalars}
    if path and (scalars or not nested or header == "[[{}]]"):
        out.append(("\n" if out else "") + header.format(".".join(_key(p) for p in path)))
    out.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars.items())
    for k, v in nested.items():
        if isinstance(v, dict):
            _table((*path, k), v, out)
        else:
            for item in v:
                _table((*path, k), item, out, "[[{}]]")


def dumps(data: dict[str, Any]) -> str:
    """``data`` as TOML text: top-level values first, then each table under its dotted header."""
    out: list[str] = []
    _table((), data, out)
    return "\n".join(out) + "\n"
