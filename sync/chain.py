"""The track log's hash chain: canonical bytes of a record, the chain's hashes, what a node signs.

A chain is one store epoch's track (``chain`` is the epoch: a wiped node starts a new chain, which
the IOC sees). Its records are numbered ``idx`` 0, 1, 2 ... and hashed in order::

    h[-1] = SHA-256(DOMAIN \\0 device \\0 chain)
    h[i]  = SHA-256(h[i-1] || canonical(record i))

so each hash commits to every record before it. The node signs ``h[i]`` now and then, with the
time (:func:`sig_message`); one signature proves every record up to ``i``. A note (a warning
delivered or acknowledged on board) is a record like the others, committing to its text by the
text's digest (:func:`note_digest`), so the next signature proves the text too.

The canonical bytes come from the ``track`` stream's own columns (``sync.wire``), the integers
the wire sends: ``round(value * scale)`` for a decimal, the integer for an integer, and
:data:`NULL` for a missing value, each as a little-endian int64. The IOC, which gets the values
back from the wire, and ``ioc-center track verify`` compute the same bytes: one definition.

Example::

    >>> from sync.records import TrackPoint
    >>> chain = ChainHead.start("vessel-042", "a1b2c3d4e5f60718")
    >>> chain.append([TrackPoint(1700000000000, 1, 1700000000000, 0, 16.46, 107.59)])[0].hex()[:16]
    'd30d8ee1cc96a840'
    >>> chain.next_idx
    1
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sync.wire import TRACK

__all__ = [
    "DOMAIN", "GAP_S", "NULL", "ChainHead", "Gap", "canonical", "gaps", "genesis", "link", "note_digest",
    "sig_message",
]  # fmt: skip

DOMAIN = b"ioc-edge track v2"
"""v2: records carry a note's digest (``note_hi``, ``note_lo``); v1 chains are not migrated."""
NULL = -(2**63)
"""A missing value (no fix: no position) in the canonical bytes: no real value is this integer."""
WIDTH = 8 * len(TRACK.columns)
"""Bytes of one record's canonical form."""
HASH = 32
IDX = TRACK.names.index("idx")
GAP_S = 120.0
"""Twice the node's default heartbeat: longer without any record means the node was off
(``ioc-center run --track-gap-s`` and ``track verify --gap-s`` for a fleet with another
``track.heartbeat_s``)."""


def canonical(records: Sequence[tuple]) -> np.ndarray:
    """The canonical integers of ``records`` (``TrackPoint`` values): int64, one row per record.

    ``canonical(records).astype("<i8").tobytes()`` are the bytes that are hashed.
    """
    rows = np.empty((len(records), len(TRACK.columns)), np.int64)
    if not len(records):
        return rows
    for j, (col, values) in enumerate(zip(TRACK.columns, zip(*records, strict=True), strict=True)):
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        missing = np.isnan(arr)
        # As the wire does it (np.rint of value * scale), so both sides get the same integer.
        ints = np.rint(np.where(missing, 0, arr) * col.scale).astype(np.int64)
        ints[missing] = NULL
        rows[:, j] = ints
    return rows


def note_digest(text: str) -> tuple[int, int]:
    """``(note_hi, note_lo)`` of a note: the first 104 bits of SHA-256 of its UTF-8 text, as two 52-bit
    integers (what the wire and the canonical bytes carry exactly).

    104 bits: finding another text with the same digest, to change a note after it was signed,
    takes ~2**104 hashes. A digest and not the text in the record, so that the chain keeps one
    fixed width (the export is hashed at memory speed) and the centre follows it without the texts.

    >>> note_digest('{"event":"acknowledged"}')[0] < 2**52
    True
    """
    top = int.from_bytes(hashlib.sha256(text.encode()).digest()[:13], "big")
    return top >> 52, top & (2**52 - 1)


def genesis(device: str, chain: str) -> bytes:
    """``h[-1]``: what the chain's first record links to."""
    return hashlib.sha256(b"\0".join((DOMAIN, device.encode(), chain.encode()))).digest()


def link(prev: bytes, canon: bytes | memoryview) -> bytes:
    """The hashes of consecutive records whose canonical bytes are ``canon``, after ``prev``: 32 B each."""
    sha = hashlib.sha256
    data = bytes(canon)  # slicing bytes is the quickest way to the 104 bytes of each record
    out: list[bytes] = []
    add = out.append
    h = prev
    for off in range(0, len(data), WIDTH):
        h = sha(h + data[off : off + WIDTH]).digest()
        add(h)
    return b"".join(out)


def sig_message(device: str, chain: str, idx: int, digest: bytes, signed_ms: int) -> bytes:
    """What the node signs: the chain's hash at record ``idx``, bound to the device, the chain and the
    node's wall clock when it signed (``TrackSig.clock_ms``), against which checkers hold the
    certificate's validity (:func:`provisioning.signing.signed_at`)."""
    head = b"\0".join((DOMAIN, device.encode(), chain.encode()))
    return head + b"\0" + struct.pack(">Qq", idx, signed_ms) + digest


@dataclass
class ChainHead:
    """The end of a chain: the hash of its last record and the next record's ``idx``.

    Records must be numbered ``head.next_idx``, ``head.next_idx + 1`` ...; a hole is refused::

        >>> from sync.records import TrackPoint
        >>> head = ChainHead.start("vessel-042", "a1b2c3d4e5f60718")
        >>> head.append([TrackPoint(1700000000000, 1, 1700000000000, 5, 16.46, 107.59)])
        Traceback (most recent call last):
        ...
        ValueError: record idx 5 where 0 was expected
    """

    device: str
    chain: str
    hash: bytes
    next_idx: int

    @classmethod
    def start(cls, device: str, chain: str) -> ChainHead:
        return cls(device, chain, genesis(device, chain), 0)

    def append(self, records: Sequence[tuple]) -> list[bytes]:
        """Link ``records`` (their ``idx`` must continue the chain); returns their hashes.

        Raises ValueError when an ``idx`` does not follow: the chain would have a hole.
        """
        rows = canonical(records)
        expected = np.arange(self.next_idx, self.next_idx + len(records))
        if len(records) and not np.array_equal(rows[:, IDX], expected):
            bad = int(np.flatnonzero(rows[:, IDX] != expected)[0])
            raise ValueError(f"record idx {int(rows[bad, IDX])} where {int(expected[bad])} was expected")
        hashes = link(self.hash, rows.astype("<i8").tobytes())
        if records:
            self.hash = hashes[-HASH:]
            self.next_idx += len(records)
        return [hashes[i : i + HASH] for i in range(0, len(hashes), HASH)]


@dataclass(frozen=True)
class Gap:
    """Consecutive records ``idx - 1`` and ``idx`` more than the gap apart, or the time going back."""

    idx: int
    prev_ms: int
    ts_ms: int

    @property
    def detail(self) -> str:
        went = "no record from" if self.ts_ms > self.prev_ms else "the time went back from"
        return f"{went} {_when(self.prev_ms)} to {_when(self.ts_ms)}"


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def gaps(idx: np.ndarray, ts_ms: np.ndarray, prev_ms: int | None, gap_ms: int) -> list[Gap]:
    """The gaps among consecutive records ``idx`` at ``ts_ms`` (after a record at ``prev_ms``, if any).

    While a node runs it records at least a "no fix" heartbeat a minute: a longer silence means it
    was off. A jump back is one too: across it the records' times say nothing about the gap.
    The one rule for the centre's track check (``ioc.track``) and ``ioc-center track verify``.
    """
    if not len(ts_ms):
        return []
    before = np.concatenate(([ts_ms[0] if prev_ms is None else prev_ms], ts_ms[:-1]))
    return [
        Gap(int(idx[i]), int(before[i]), int(ts_ms[i]))
        for i in np.flatnonzero(np.abs(ts_ms - before) > gap_ms).tolist()
    ]
