"""List endpoints as CSV, for the people who write reports in a spreadsheet.

One header row, then one row per item. Beside ``ts_ms`` (UTC ms) comes
``time_local``, the same instant in the centre's time zone; nested values
are flattened (``box`` becomes ``box_x1 .. box_y2``, a dict is JSON). Text
that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a TAB or
a CR first: OWASP's list) gets a leading apostrophe. A ``ts_ms`` no calendar can
show (a record an older centre stored unchecked) has ``time_local`` ``invalid``:
one such row never cuts the export short.

Example::

    >>> from zoneinfo import ZoneInfo
    >>> item = {"device": "v1", "ts_ms": 1714500000000, "message": "=1+1"}
    >>> "".join(csv_rows([item], list(item), ZoneInfo("Asia/Ho_Chi_Minh")))
    "device,ts_ms,time_local,message\\r\\nv1,1714500000000,2024-05-01T01:00:00.000+07:00,'=1+1\\r\\n"
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

_BOX = ("x1", "y1", "x2", "y2")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
INVALID_TIME = "invalid"


def local_time(ms: object, zone: ZoneInfo) -> str | None:
    """``ms`` (UTC ms) as an ISO 8601 time in ``zone``; None without a time, :data:`INVALID_TIME` for
    one outside what ``datetime`` can hold (before year 1, after 9999, or not an integer).

    >>> local_time(2**62, ZoneInfo("UTC"))
    'invalid'
    """
    if ms is None:
        return None
    if not isinstance(ms, int) or isinstance(ms, bool):
        return INVALID_TIME
    try:
        return datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return INVALID_TIME


def _flatten(item: dict, zone: ZoneInfo) -> dict:
    out: dict = {}
    for key, value in item.items():
        if key == "box" and isinstance(value, list):
            out.update({f"box_{n}": v for n, v in zip(_BOX, value, strict=True)})
            continue
        if isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        elif isinstance(value, str) and value.startswith(_FORMULA_STARTS):
            value = "'" + value
        out[key] = value
        if key == "ts_ms":
            out["time_local"] = local_time(value, zone)
    return out


def header(keys: Iterable[str]) -> list[str]:
    """The CSV columns of items with these keys."""
    template = {key: [None] * len(_BOX) if key == "box" else None for key in keys}
    return list(_flatten(template, ZoneInfo("UTC")))


def csv_rows(items: Iterable[dict], keys: Iterable[str], zone: ZoneInfo, block: int = 65536) -> Iterator[str]:
    """The CSV text of ``items`` (dicts with ``keys``), header first, in pieces of about ``block`` characters.

    Pieces rather than rows: each piece of a streamed answer costs a hop between threads.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header(keys), extrasaction="ignore")
    writer.writeheader()
    for item in items:
        writer.writerow(_flatten(item, zone))
        if buffer.tell() >= block:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
