"""The vessel's track log: every position into a signed hash chain the owner can prove, and its export.

Vietnamese rules for fishing vessels want a position at least every two hours at sea, track data
that cannot be edited and is kept for years. This node logs beside the certified monitoring
device, so its record must be worth something as evidence: each fix becomes a ``track`` record
chained to the one before (``sync.chain``); when the receiver has no fix for ``heartbeat_s`` a
"no fix" record is chained instead, so a gap is visible and proven, never silent; a note (a
warning delivered or acknowledged on board: :meth:`TrackLog.note`) is chained with the last
position and its text's digest, the text archived as a ``track_note``; every ``sign_every_s`` (and
at stop) the node signs the chain's head with its device key (a ``track_sig`` record). The three
streams are archived in the store (kept ``retention_months``, whatever the IOC acks) and synced
like any other.

The chain's state is never saved apart from the records: at start the log recomputes its head
from the archive (the last signature and the records after it), so a power cut cannot put the
two out of step.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from common.clock import Clock
from common.component import Component
from provisioning.signing import DeviceSigner
from sync.chain import ChainHead, note_digest, sig_message
from sync.records import Position, TrackNote, TrackPoint, TrackSig
from sync.store import Store
from sync.trackfile import (
    BLOCK_RECORDS,
    TrackExportError,
    TrackFileWriter,
    export_header,
    span,
    usable_signatures,
)  # fmt: skip
from sync.wire import TRACK

__all__ = ["TrackExportError", "TrackLog", "export_track"]

log = logging.getLogger(__name__)

MONTH_S = 31 * 86_400
"""A month of retention: the longest, so that nothing is pruned before its time."""
ARCHIVE_BYTES_PER_S = 8
"""What the compacted archive takes for a second of 1 Hz fixes, signatures included (bench/track.py:
~6 B a position), with a margin: the store's max_bytes must hold retention_months of it."""
PRUNE_EVERY_S = 3600.0
"""How often the archive is pruned (retention) and compacted."""
NOTE_BYTES = 2048
"""The longest note text (UTF-8): a receipt's canonical JSON, not a document."""
ARCHIVED = ("track", "track_sig", "track_note")
"""The track log's streams, pruned together by age."""
PEM_EVERY_S = 86_400.0
"""A signature carries the certificate chain at the start of a run and then once a day, so that
retention, which prunes by age, always leaves a signature with the chain before the others."""


# The wire's (lo, hi) of each quality figure, in the track's column order; a side without a bound is infinite.
_QUALITY = [
    (-math.inf if c.lo is None else c.lo, math.inf if c.hi is None else c.hi)
    for c in TRACK.columns
    if c.name in ("speed_kn", "course_deg", "fix", "sats", "hdop")
]


def _fit(p: Position) -> list:
    """The fix's quality figures, each None when outside what the wire carries (an hdop of 150):
    a record the IOC would refuse could never be sent, and the chain would have a hole there."""
    values = (p.speed_kn, p.course_deg, p.fix, p.sats, p.hdop)
    return [
        None if v is not None and not lo <= v <= hi else v
        for (lo, hi), v in zip(_QUALITY, values, strict=True)
    ]


def resume(store: Store, device: str) -> ChainHead:
    """The head of this store's chain, recomputed from the archive (no separate state)."""
    head = ChainHead.start(device, store.epoch)
    last_sig = next((rows[-1] for _, rows in store.archived("track_sig", newest_first=True)), None)
    if last_sig is not None:
        head.hash, head.next_idx = bytes(last_sig.hash), last_sig.idx + 1
    tail: list[list[TrackPoint]] = []
    for _, rows in store.archived("track", newest_first=True):
        tail.append([r for r in rows if r.idx >= head.next_idx])
        if rows[0].idx < head.next_idx:
            break
    for rows in reversed(tail):
        head.append(rows)
    return head


class TrackLog(Component):
    """Chains every position into the ``track`` stream, with "no fix" heartbeats and signatures.

    ``add`` is the node's sink for positions (any thread); ``append`` is the recorder's. The
    thread adds heartbeats, signs every ``sign_every_s`` and prunes the archive past
    ``retention_s``; stopping signs what is not signed yet.

    Example::

        track = TrackLog(lambda: open_store(config), recorder.append, DeviceSigner.load(tls), clock)
        track.start()
        track.add([position])
        idx = track.note('{"event":"acknowledged","identifier":"..."}')
        track.stop()
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        append: Callable[[str, list], None],
        signer: DeviceSigner,
        clock: Clock,
        heartbeat_s: float = 60.0,
        sign_every_s: float = 600.0,
        retention_s: float = 60 * MONTH_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("track")
        self._open_store, self._append, self.signer, self.clock = open_store, append, signer, clock
        self.heartbeat_s, self.sign_every_s, self.retention_s = heartbeat_s, sign_every_s, retention_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.head: ChainHead | None = None
        self._store: Store | None = None
        self._last_record = self._last_sign = self._last_pem = self._last_prune = -1e18
        self._signed_idx = -1
        self._last_at: tuple[float, float] | tuple[None, None] = (None, None)
        self.heartbeats = 0
        self.signatures = 0

    def start(self) -> None:
        self._store = self._open_store()
        self.head = resume(self._store, self.signer.device)
        self._signed_idx = self.head.next_idx - 1 if self.head.next_idx else -1
        self._last_record = self._last_sign = self._monotonic()
        log.info(
            "event=track_resumed chain=%s next_idx=%d device=%s",
            self.head.chain,
            self.head.next_idx,
            self.head.device,
        )
        super().start()

    def _resumed(self) -> ChainHead:
        # start() resumes the chain before the node routes a position, reports or stops the log.
        assert self.head is not None, "the track log is used before start()"
        return self.head

    def add(self, positions: list[Position]) -> None:
        """Chain ``positions`` (fixes from the GPS driver) and hand them to the recorder."""
        with self._lock:
            next_idx = self._resumed().next_idx
            points = [
                TrackPoint(p.ts_ms, p.tsrc, p.clock_ms, next_idx + i, p.lat, p.lon, *_fit(p))
                for i, p in enumerate(positions)
            ]
            self._chain(points)
            if positions:
                self._last_at = (positions[-1].lat, positions[-1].lon)

    def note(self, text: str) -> int:
        """Chain a note stamped now: a record with the vessel's last position (of this run; none before
        its first fix) and the digest of ``text``, which is archived and synced as a ``track_note``.
        Returns the note's idx; the next signature (within ``sign_every_s``, or at stop) proves it.

        Raises ValueError when ``text`` is longer than :data:`NOTE_BYTES` in UTF-8.
        """
        if len(text.encode()) > NOTE_BYTES:
            raise ValueError(f"a track note is at most {NOTE_BYTES} bytes; this one is {len(text.encode())}")
        with self._lock:
            stamp = self.clock.now()
            idx = self._resumed().next_idx
            # The text first: a power cut between the two leaves a text without its record (the
            # export skips it), never a chained note without its text.
            self._append("track_note", [TrackNote(*stamp, idx, text)])
            hi, lo = note_digest(text)
            lat, lon = self._last_at
            self._chain([TrackPoint(*stamp, idx, lat, lon, note_hi=hi, note_lo=lo)])
            return idx

    def _chain(self, points: list[TrackPoint]) -> None:
        if points:
            self._resumed().append(points)
            self._append("track", points)
            self._last_record = self._monotonic()

    def describe(self) -> dict:
        """For the status report: the chain, how far it is chained and signed, this run's heartbeats."""
        with self._lock:
            head = self._resumed()
            return {
                "chain": head.chain,
                "records": head.next_idx,
                "signed_to": self._signed_idx,
                "signatures": self.signatures,
                "heartbeats": self.heartbeats,
            }

    def heartbeat(self) -> None:
        """Chain a "no fix" record stamped now."""
        with self._lock:
            self._chain([TrackPoint(*self.clock.now(), self._resumed().next_idx, None, None)])
            self.heartbeats += 1

    def sign(self) -> None:
        """Sign the chain's head, unless it is signed already."""
        with self._lock:
            head = self._resumed()
            idx = head.next_idx - 1
            if idx <= self._signed_idx:
                return
            now = self._monotonic()
            pem = self.signer.chain_pem if now - self._last_pem >= PEM_EVERY_S else b""
            stamp = self.clock.now()
            message = sig_message(head.device, head.chain, idx, head.hash, stamp.clock_ms)
            sig = TrackSig(*stamp, idx, head.hash, self.signer.sign(message), pem)
            self._append("track_sig", [sig])
            self._signed_idx, self._last_sign = idx, now
            self._last_pem = now if pem else self._last_pem
            self.signatures += 1

    def _run(self) -> None:
        store = self._store
        assert store is not None, "start() opens the store before the thread runs"
        tick = min(1.0, self.heartbeat_s / 4, self.sign_every_s / 4)
        while not self._stop.wait(tick):
            now = self._monotonic()
            if now - self._last_record >= self.heartbeat_s:
                self.heartbeat()
            if now - self._last_sign >= self.sign_every_s:
                self.sign()
            if now - self._last_prune >= PRUNE_EVERY_S:
                self._last_prune = now
                for stream in ARCHIVED:
                    store.prune_archive(stream, self.retention_s, self.clock.now().clock_ms)
                    store.compact_archive(stream)

    def _after_stop(self) -> None:
        self.sign()
        if self._store is not None:
            self._store.close()


# -- export --------------------------------------------------------------------------------------


def _points(store: Store, after_seq: int, lo_idx: int, hi_idx: int) -> Iterator[list[TrackPoint]]:
    """The archive's track records ``lo_idx..hi_idx`` in chunks, scanning from ``after_seq``."""
    for _, rows in store.archived("track", after=after_seq):
        picked = [r for r in rows if lo_idx <= r.idx <= hi_idx]
        if picked:
            yield picked
        if rows[-1].idx >= hi_idx:
            return


def _locate(store: Store, from_ms: int, to_ms: int) -> tuple[int, int, int]:
    """(first idx, last idx, lowest seq to scan from) of the records stamped in ``[from_ms, to_ms)``."""
    lo = hi = seq_lo = None
    for seqs, rows in store.archived("track", stamped=(from_ms, to_ms)):
        for q, r in zip(seqs, rows, strict=True):
            if from_ms <= r.ts_ms < to_ms:
                if lo is None or r.idx < lo:
                    lo, seq_lo = r.idx, q
                hi = r.idx if hi is None else max(hi, r.idx)
    if lo is None:
        raise TrackExportError(f"no track records between {_iso(from_ms)} and {_iso(to_ms)} in the archive")
    assert hi is not None and seq_lo is not None, "set with lo"
    return lo, hi, seq_lo


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_track(store: Store, device: str, from_ms: int, to_ms: int, out: Path) -> dict:
    """Write the archive's track between ``from_ms`` and ``to_ms`` to ``out`` (``sync.trackfile``).

    The range is widened to signatures: back to just after the last signature before it (or the
    chain's start) and forward to the first signature after it, so that every record exported is
    proven. Returns the file's header, with ``unsigned``: records of the range left out because
    no signature covers them yet. Raises :class:`TrackExportError` when nothing can be exported.
    """
    lo, hi, seq_lo = _locate(store, from_ms, to_ms)
    usable = usable_signatures(s for _, rows in store.archived("track_sig") for s in rows)
    spanned = span(usable[0], lo, hi)
    if spanned is None:
        raise TrackExportError(
            f"no signature covers the records from {_iso(from_ms)} yet: the node signs every "
            "sign_every_s and when it stops; try again later"
        )
    anchor, first, last = spanned
    if last < hi:
        log.info("event=track_export_unsigned_tail first_unsigned=%d last=%d", last + 1, hi)
    head = ChainHead.start(device, store.epoch)
    if anchor:
        head.hash, head.next_idx = bytes(anchor.hash), first
    elif next(store.archived("track"))[1][0].idx != 0:
        raise TrackExportError(
            "the archive no longer holds the chain's start nor a signature before the range"
        )
    header = export_header(device, store.epoch, head.hash, first, last, usable, from_ms, to_ms)
    notes = [n for _, rows in store.archived("track_note") for n in rows if first <= n.idx <= last]
    with TrackFileWriter(out, header, notes) as writer:
        batch: list[TrackPoint] = []
        for rows in _points(store, max(seq_lo - (lo - first) - 1, 0), first, last):
            batch += rows
            if len(batch) >= BLOCK_RECORDS:
                writer.write_points(head, batch)
                batch = []
        writer.write_points(head, batch)
    # Not in the file: what the caller should tell (records of the range too new to be signed yet).
    return {**header, "records": writer.records, "notes": writer.notes, "unsigned": max(hi - last, 0)}
