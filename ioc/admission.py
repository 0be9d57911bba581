"""What the receiver admits beyond the wire format: record times, field sizes, a per-device quota.

The wire format (``sync.wire``) refuses what no node may ever send, a time before 1970 or after
9999 among them, and a node sets such records aside before sending. What is left depends on the
centre: its clock (a record dated far ahead of it), the sizes it stores, and how many bytes one
device may store an hour. One stolen node must not be able to fill the database, pin its records
to the top of every list, or send a body the pages cannot read.

Two kinds of refusal, each counted under its reason (``reject.<reason>``):

- a **record** (dated more than ``future_s`` ahead of the centre's clock: ``future``; a field
  over its size: ``too_big``; a NUL in a text: ``bad_text``; a status or commissioning body that
  is not a small JSON object: ``bad_json``) is dropped and the rest of its batch stored; the
  batch is acked whole, because the node cannot know the centre's clock or limits and would
  otherwise send the record again for ever (the ack means "done with", not "stored");
- a **batch** of a device over its quota (``quota``) is refused whole and not acked: the node
  sends it again after its ack timeout and nothing is lost; by then the quota has refilled.

Example::

    >>> bounds = Bounds(Limits(), clock=lambda: 1_700_000_000_000)
    >>> from sync.records import NodeStatus
    >>> batch = Batch("buoy-7", "a1b2c3d4e5f60718", "status", [1, 2],
    ...               [NodeStatus(1_700_000_000_000, 2, 0, '{"version": "1"}'),
    ...                NodeStatus(1_700_000_000_000, 2, 0, "[" * 9)])
    >>> admitted = bounds.admit(batch)
    >>> admitted.batch.seqs, dict(admitted.refused)
    ([1], {'bad_json': 1})
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from common.errors import IocEdgeError
from ioc.db import now_ms
from sync.wire import STREAMS, Batch

__all__ = ["FIELD_BYTES", "Admitted", "Bounds", "Limits", "OverQuota", "json_object"]

FIELD_BYTES: Mapping[tuple[str, str], int] = MappingProxyType(
    {
        # A node's status is ~1-4 kB (edge.runtime's report: backlog, drops, counters per driver).
        ("status", "body"): 65_536,
        ("commissioning", "body"): 65_536,
        # A PEM chain (device and signer certificates) is ~1.5 kB; an ECDSA signature ~72 bytes.
        ("commissioning", "chain"): 16_384,
        ("commissioning", "signature"): 1_024,
        ("track_sig", "chain_pem"): 16_384,
        ("track_sig", "signature"): 1_024,
        ("track_sig", "hash"): 64,
        # The node's own bound: edge.config's camera snapshot_max_bytes is at most 500 000.
        ("event", "jpeg"): 500_000,
        ("alarm", "message"): 4_096,
        ("event", "message"): 4_096,
        # A command's result: a kind's details (a node's status, a self-test's results), as a status body.
        ("command_result", "details"): 65_536,
    }
)
"""Largest size in bytes of these text and blob fields; other text fields get ``Limits.text_bytes``."""

JSON_BODIES = frozenset({("status", "body"), ("commissioning", "body")})
"""Fields that must hold a JSON object (what every node sends there), read by the pages and the API."""

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _json_depth(text: str, limit: int) -> int:
    """How deep ``text``'s arrays and objects nest (strings skipped), counted without recursing;
    stops counting once past ``limit``."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > limit:
            break
    return deepest


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is too large for a JSON number")
    return value


def json_object(text: str, max_depth: int = 8, max_bytes: int = 65_536) -> dict:
    """``text`` parsed as a JSON object of at most ``max_bytes`` nested at most ``max_depth`` deep,
    every number finite (what a JSON answer can hold); raises ``ValueError`` naming what is wrong.

    The depth is measured before parsing, so a body of ``"[" * 200000`` costs one scan, not a
    ``RecursionError``.

    >>> json_object('{"backlog": {"position": 3}}')
    {'backlog': {'position': 3}}
    >>> json_object("[" * 20000)
    Traceback (most recent call last):
    ValueError: JSON nested deeper than 8 levels
    """
    if len(text) > max_bytes or len(text.encode()) > max_bytes:
        raise ValueError(f"JSON of more than {max_bytes} bytes")
    if _json_depth(text, max_depth) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # unreachable once the depth is bounded; kept a ValueError regardless
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


@dataclass(frozen=True)
class Limits:
    """The receiver's bounds on what it stores (``ioc-center run --quota-mb-per-hour`` sets the quota).

    Example: ``Receiver(db, host, port, limits=Limits(quota_bytes_per_hour=8 * 2**20))``
    """

    future_s: float = (1024 * 7 + 1) * 86_400.0
    """A record dated more than this ahead of the centre's clock is refused (``future``): 1024
    weeks and a day. A GPS date from before 2020 is taken as a week-counter rollover and moved
    1024 weeks on (``drivers.nmea``): a replayed 2017 capture is stamped 2036, and that is real data.
    Nothing an honest clock does reaches further; a forged 2^62 ms is refused by the wire already."""
    text_bytes: int = 1_024
    """Largest text or blob field not in :data:`FIELD_BYTES` (names, kinds, an AIS sentence)."""
    field_bytes: Mapping[tuple[str, str], int] = field(default_factory=lambda: FIELD_BYTES)
    json_depth: int = 8
    """Deepest nesting of a JSON body; a status report nests 3 deep."""
    quota_bytes_per_hour: int = 64 * 2**20
    """Bytes one device may store an hour, refilled continuously; 0: no quota. A busy camera's
    events (30 kB snapshots) take ~10-20 MB/h, an environment node ~1 MB/h; a day's backlog
    after an outage drains at this pace. Each receiver process counts on its own."""

    def max_bytes(self, stream: str, column: str) -> int:
        return self.field_bytes.get((stream, column), self.text_bytes)


class OverQuota(IocEdgeError):
    """A device has stored its quota: its batch is refused unacked (``reason`` ``quota``)."""

    reason = "quota"

    def __init__(self, device: str, debt_bytes: int, limits: Limits) -> None:
        refill_s = debt_bytes * 3600 / max(limits.quota_bytes_per_hour, 1)
        super().__init__(
            f"{self.reason}: device {device!r} stored more than its {limits.quota_bytes_per_hour} bytes an "
            f"hour (ioc-center run --quota-mb-per-hour); its batches are taken again in {refill_s:.0f} s"
        )
        self.device = device


@dataclass(frozen=True)
class Admitted:
    """The part of a batch to store, and how many records were refused, by reason."""

    batch: Batch
    refused: Counter[str]
    why: str = ""
    """The first refusal in words, for the log (field, size, limit)."""


class _Quota:
    """A token bucket per device, in bytes: one hour's quota, refilled continuously.

    A batch is taken while the bucket is not empty and may take it below zero, so a batch larger
    than the whole quota still gets in (after waiting). Alarms and commissioning records (priority
    0) may draw on one more hour's worth, so a node that spent its quota on snapshots still gets
    its alarms through.
    """

    def __init__(self, per_hour: int, clock: Callable[[], int]) -> None:
        self.per_hour, self.clock = per_hour, clock
        self._buckets: dict[str, tuple[float, int]] = {}  # device -> (bytes left, at ms)
        self._lock = threading.Lock()  # several paho threads? one today; cheap insurance

    def take(self, device: str, cost: int, urgent: bool) -> float:
        """Take ``cost`` bytes; returns 0 when taken, else the debt that must refill first."""
        with self._lock:
            now = self.clock()
            left, at = self._buckets.get(device, (float(self.per_hour), now))
            left = min(float(self.per_hour), left + max(now - at, 0) * self.per_hour / 3_600_000)
            floor = -self.per_hour if urgent else 0
            if left <= floor:
                self._buckets[device] = (left, now)
                return floor - left + 1
            self._buckets[device] = (left - cost, now)
            return 0.0


_NUMBER_BYTES = 8
_KEY_BYTES = 48
"""What a stored record costs besides its text and blob fields: device, epoch, seq, received_ms."""


class Bounds:
    """Applies :class:`Limits` to each decoded batch before the receiver stores it.

    ``clock`` is the centre's time in UTC ms. ``over_quota`` counts the batches refused per device
    (for ``ioc_center_quota_refused_batches_total``). See the module docstring for the rules.
    """

    def __init__(self, limits: Limits | None = None, clock: Callable[[], int] = now_ms) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        self.over_quota: Counter[str] = Counter()
        self._quota = _Quota(self.limits.quota_bytes_per_hour, clock)
        self._fields = {
            name: [(i, c.name) for i, c in enumerate(s.columns) if c.kind in ("text", "blob")]
            for name, s in STREAMS.items()
        }

    def admit(self, batch: Batch) -> Admitted:
        """The records of ``batch`` to store; raises :class:`OverQuota` when its device is over quota."""
        horizon = self.clock() + int(self.limits.future_s * 1000)
        fields = self._fields[batch.stream]
        numbers = (len(STREAMS[batch.stream].columns) - len(fields)) * _NUMBER_BYTES + _KEY_BYTES
        refused: Counter[str] = Counter()
        why = ""
        seqs, records, cost = [], [], 0
        for seq, record in zip(batch.seqs, batch.records, strict=True):
            reason, detail, size = self._check(batch.stream, record, fields, horizon)
            if reason:
                refused[reason] += 1
                why = why or f"seq={seq} {detail}"
                continue
            seqs.append(seq)
            records.append(record)
            cost += numbers + size
        if cost and self.limits.quota_bytes_per_hour:
            debt = self._quota.take(batch.device, cost, STREAMS[batch.stream].priority == 0)
            if debt:
                self.over_quota[batch.device] += 1
                raise OverQuota(batch.device, int(debt), self.limits)
        return Admitted(batch._replace(seqs=seqs, records=records), refused, why)

    def _check(
        self, stream: str, record: tuple, fields: list[tuple[int, str]], horizon: int
    ) -> tuple[str, str, int]:
        """``(reason, detail, bytes)``: why ``record`` is refused ("" when admitted) and its fields' size."""
        if record[0] > horizon:  # every record starts with ts_ms (sync.records)
            return "future", f"ts_ms={record[0]} is more than {self.limits.future_s:.0f} s ahead", 0
        size = 0
        for i, name in fields:
            value = record[i]
            n = len(value.encode()) if isinstance(value, str) else len(value)
            limit = self.limits.max_bytes(stream, name)
            if n > limit:
                return "too_big", f"field={stream}.{name} bytes={n} limit={limit}", 0
            if isinstance(value, str) and "\x00" in value:
                # PostgreSQL cannot store a NUL in text: the batch would fail and come back for ever.
                return "bad_text", f"field={stream}.{name} holds a NUL character", 0
            size += n
            if (stream, name) in JSON_BODIES:
                try:
                    json_object(value, self.limits.json_depth, limit)
                except ValueError as exc:
                    return "bad_json", f"field={stream}.{name} {exc}", 0
        return "", "", size
