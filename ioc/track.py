"""The vessels' track chains at the centre: followed and verified as their records arrive, breaks flagged.

A node's ``track`` records form a hash chain per store epoch, and its ``track_sig`` records sign
the chain's hash now and then (``sync.chain``). The receiver hands every stored batch of either
stream to :class:`TrackCheck`, which follows the chain from where it stopped (``track_chains``)
up to the newest signature, in idx order whatever order the batches came in, and flags in
``track_flags`` what an operator must see:

- ``new_chain``: a device started another chain (its store was wiped or replaced);
- ``gap``: more than ``gap_s`` between two consecutive records: the node was off (while it runs
  it records at least a "no fix" heartbeat a minute), or its time jumped back;
- ``break``: records that do not match the hash the node signed (changed on the way or in the
  database), or records that never arrived; the chain goes on from the signed hash;
- ``bad_signature``: a signature that does not verify (forged, another CA's device, a chain that is
  not a signer's device certificate for this device, a certificate revoked before it signed or
  before the centre received it: ``provisioning.signing``). With no CA
  configured the signatures are checked against the certificates that came with them alone,
  and the chain's ``ca_checked`` is 0 (the dashboard says "CA not checked").

Records after the newest signature wait for the next one: the node signs every few minutes.

:func:`export_chain` writes a stretch of a stored chain as the node's ``ioc-edge track export``
does (``sync.trackfile``), the notes' texts (``track_note``: warnings delivered and acknowledged
on board) included, for ``ioc-center track export``.

Example::

    check = TrackCheck(db, ca_cert)        # ca_cert None: the certificates alone
    check(batch)                           # a stored batch of the track or track_sig stream
    chain_status(db, "vessel-042")         # {"chains": [...], "flags": [...]}
    export_chain(db, "vessel-042", from_ms, to_ms, Path("week.track"))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cryptography import x509

from ioc.db import Cursor, Database, now_ms
from provisioning.revocation import CrlFile
from provisioning.signing import Enrolled, SignatureChecker, SignatureError, signed_at
from sync.chain import GAP_S, HASH, IDX, ChainHead, canonical, gaps, genesis, link, sig_message
from sync.records import TrackNote, TrackPoint, TrackSig
from sync.trackfile import (
    BLOCK_RECORDS,
    TrackExportError,
    TrackFileWriter,
    export_header,
    span,
    usable_signatures,
)
from sync.wire import TRACK, TRACK_NOTE, TRACK_SIG, Batch

__all__ = ["FLAG_KINDS", "GAP_S", "TrackCheck", "chain_status", "export_chain"]

log = logging.getLogger(__name__)

FLAG_KINDS = ("break", "gap", "bad_signature", "new_chain")
HOLE_WAIT_S = 3600.0
"""How long records after a missing one may wait for it before the hole is flagged as a break."""
PAGE = 50_000


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)


_COLUMNS = _quoted(TRACK.names)


@dataclass
class _Chain:
    """One chain's row of ``track_chains`` while it is followed."""

    device: str
    epoch: str
    last_idx: int
    last_hash: bytes
    last_ts_ms: int | None
    signed_idx: int
    chain_pem: bytes
    flags: list[tuple[int, str, int | None, str]] = field(default_factory=list)
    enrolled: list[Enrolled] | None = None
    """The device's certificates in the enrolment register; None: no register to ask."""


class TrackCheck:
    """Follows each chain a stored batch belongs to; see the module's docstring.

    ``ca`` None checks signatures against their own certificates only; ``crls`` as
    :class:`SignatureChecker` takes them (a signature the centre received after its certificate was
    revoked is bad whatever time it claims); ``enrolled`` gives a device's certificates in the
    enrolment register (read before the chain's transaction: it may use the same database). Never
    raises for bad data (that is a flag); a database error propagates (the receiver sends no ack,
    the node sends again).
    """

    def __init__(
        self,
        db: Database,
        ca: x509.Certificate | None,
        gap_s: float = GAP_S,
        hole_wait_s: float = HOLE_WAIT_S,
        *,
        crls: CrlFile | None = None,
        enrolled: Callable[[str], list[Enrolled]] | None = None,
    ) -> None:
        self.db = db
        self.checker = SignatureChecker(ca, crls=crls)
        self.enrolled = enrolled
        self.gap_ms, self.hole_wait_ms = int(gap_s * 1000), int(hole_wait_s * 1000)

    def __call__(self, batch: Batch) -> None:
        self.advance(batch.device, batch.epoch)

    def advance(self, device: str, epoch: str) -> None:
        """Follow ``device``'s chain ``epoch`` as far as its records and signatures allow."""
        enrolled = self.enrolled(device) if self.enrolled is not None else None
        with self.db.transaction() as cur:
            chain = self._load(cur, device, epoch)
            chain.enrolled = enrolled
            start = chain.last_idx
            sigs = self._sigs(cur, chain)
            while sigs:
                before = chain.last_idx
                self._walk(cur, chain, sigs)
                sigs = [s for s in sigs if s["idx"] > chain.last_idx]
                if chain.last_idx == before:
                    break
            if chain.last_idx == start and not chain.flags:
                return
            cur.execute(
                "UPDATE track_chains SET last_idx = ?, last_hash = ?, last_ts_ms = ?, signed_idx = ?, "
                "chain_pem = ?, updated_ms = ? WHERE device = ? AND epoch = ?",
                [
                    chain.last_idx, chain.last_hash, chain.last_ts_ms, chain.signed_idx, chain.chain_pem,
                    now_ms(), device, epoch,
                ],
            )  # fmt: skip
            self._flag(cur, chain)

    def _load(self, cur: Cursor, device: str, epoch: str) -> _Chain:
        now = now_ms()
        cur.execute(
            "INSERT INTO track_chains (device, epoch, last_idx, last_hash, last_ts_ms, signed_idx, "
            "chain_pem, ca_checked, first_seen_ms, updated_ms) VALUES (?, ?, -1, ?, NULL, -1, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [device, epoch, genesis(device, epoch), b"", int(self.checker.ca is not None), now, now],
        )
        created = cur.rowcount == 1
        # Locks the row (PostgreSQL) before reading it: two receivers storing batches of one chain at
        # once follow it one after the other (SQLite's write transactions are one at a time anyway).
        cur.execute(
            "UPDATE track_chains SET updated_ms = updated_ms WHERE device = ? AND epoch = ?", [device, epoch]
        )
        cur.execute(
            "SELECT last_idx, last_hash, last_ts_ms, signed_idx, chain_pem FROM track_chains "
            "WHERE device = ? AND epoch = ?",
            [device, epoch],
        )
        row = cur.fetchone()
        assert row is not None, "the row was inserted above, in this transaction"
        chain = _Chain(device, epoch, row[0], bytes(row[1]), row[2], row[3], bytes(row[4]))
        if created:
            cur.execute("SELECT epoch FROM track_chains WHERE device = ? AND epoch <> ?", [device, epoch])
            others = sorted(r[0] for r in cur.fetchall())
            if others:
                detail = f"a new chain began (the node's store was replaced); earlier: {', '.join(others)}"
                chain.flags.append((0, "new_chain", None, detail))
        return chain

    def _sigs(self, cur: Cursor, chain: _Chain) -> list[dict[str, Any]]:
        cur.execute(
            "SELECT idx, clock_ms, hash, signature, chain_pem, received_ms FROM rec_track_sig "
            "WHERE device = ? AND epoch = ? AND idx > ? ORDER BY idx",
            [chain.device, chain.epoch, chain.last_idx],
        )
        names = ("idx", "clock_ms", "hash", "signature", "chain_pem", "received_ms")
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _walk(self, cur: Cursor, chain: _Chain, sigs: list[dict[str, Any]]) -> None:
        """Follow the chain up to the newest signature, one page of records at a time."""
        upto = sigs[-1]["idx"]
        by_idx = {s["idx"]: s for s in sigs}
        while chain.last_idx < upto:
            cur.execute(
                f"SELECT {_COLUMNS}, received_ms FROM rec_track WHERE device = ? AND epoch = ? "
                f"AND idx > ? AND idx <= ? ORDER BY idx, seq LIMIT {PAGE}",
                [chain.device, chain.epoch, chain.last_idx, upto],
            )
            rows = cur.fetchall()
            if not rows:
                return
            rows = self._once_each(chain, rows)
            points = [TrackPoint._make(r[:-1]) for r in rows]
            run = next((i for i, p in enumerate(points) if p.idx != chain.last_idx + 1 + i), len(points))
            if run:
                self._follow(chain, points[:run], by_idx)
            if run < len(points):
                self._hole(chain, points[run], rows[run][-1], sigs)
                return
            if len(rows) < PAGE:
                return

    def _once_each(self, chain: _Chain, rows: list[tuple]) -> list[tuple]:
        """``rows`` with one record per idx, the first stored; a second copy that differs is a break."""
        kept: list[tuple] = []
        for row in rows:
            if kept and row[IDX] == kept[-1][IDX]:
                if row[:-1] != kept[-1][:-1]:
                    detail = f"record {row[IDX]} came twice with different contents; the first is followed"
                    chain.flags.append((row[IDX], "break", row[0], detail))
                continue
            kept.append(row)
        return kept

    def _follow(self, chain: _Chain, points: list[TrackPoint], sigs: dict[int, dict[str, Any]]) -> None:
        """Link consecutive ``points`` onto the chain, checking gaps and each signature among them."""
        ts = np.array([p.ts_ms for p in points], np.int64)
        idx = np.array([p.idx for p in points], np.int64)
        for gap in gaps(idx, ts, chain.last_ts_ms, self.gap_ms):
            chain.flags.append((gap.idx, "gap", gap.ts_ms, gap.detail))
        canon = canonical(points).astype("<i8").tobytes()
        width, first, lo = len(canon) // len(points), points[0].idx, 0
        for k in [*sorted(i for i in sigs if first <= i <= points[-1].idx), None]:
            hi = k - first + 1 if k is not None else len(points)
            if hi > lo:
                chain.last_hash = link(chain.last_hash, canon[lo * width : hi * width])[-HASH:]
            if k is not None:
                self._signature(chain, sigs[k], points[hi - 1].ts_ms)
            lo = hi
        chain.last_idx, chain.last_ts_ms = points[-1].idx, points[-1].ts_ms

    def _signature(self, chain: _Chain, sig: dict[str, Any], ts_ms: int) -> None:
        """Check the signature at the chain's end; after a break the chain goes on from the signed hash."""
        idx, digest = sig["idx"], bytes(sig["hash"])
        chain.chain_pem = bytes(sig["chain_pem"]) or chain.chain_pem
        try:
            message = sig_message(chain.device, chain.epoch, idx, digest, sig["clock_ms"])
            self.checker.check(
                chain.chain_pem,
                chain.device,
                message,
                bytes(sig["signature"]),
                signed_at(sig["clock_ms"]),
                received_ms=sig["received_ms"],
                enrolled=chain.enrolled,
            )
        except SignatureError as exc:
            chain.flags.append((idx, "bad_signature", ts_ms, str(exc)))
            log.warning("event=track_bad_signature device=%s epoch=%s idx=%d", chain.device, chain.epoch, idx)
            return
        if digest != chain.last_hash:
            detail = f"records {chain.signed_idx + 1}..{idx} do not match the hash signed at record {idx}"
            chain.flags.append((idx, "break", ts_ms, detail))
            log.warning("event=track_break device=%s epoch=%s idx=%d", chain.device, chain.epoch, idx)
            chain.last_hash = digest
        chain.signed_idx = idx

    def _hole(self, chain: _Chain, after: TrackPoint, received_ms: int, sigs: list[dict[str, Any]]) -> None:
        """Records ``chain.last_idx + 1 .. after.idx - 1`` are missing: wait, then flag and re-anchor."""
        if now_ms() - received_ms < self.hole_wait_ms:
            return
        anchor = next((s for s in sigs if s["idx"] >= after.idx - 1), None)
        if anchor is None:
            return
        detail = (
            f"records {chain.last_idx + 1}..{after.idx - 1} never arrived; "
            f"verified again from record {anchor['idx'] + 1}"
        )
        chain.flags.append((chain.last_idx + 1, "break", after.ts_ms, detail))
        chain.last_idx, chain.last_hash, chain.last_ts_ms = anchor["idx"], bytes(anchor["hash"]), None
        self._signature(chain, anchor, after.ts_ms)  # the anchor's own signature must hold

    def _flag(self, cur: Cursor, chain: _Chain) -> None:
        if chain.flags:
            now = now_ms()
            cur.executemany(
                "INSERT INTO track_flags (device, epoch, idx, kind, ts_ms, detail, flagged_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (chain.device, chain.epoch, idx, kind, ts, detail, now)
                    for idx, kind, ts, detail in chain.flags
                ],
            )


def chain_status(db: Database, device: str, flags: int = 100) -> dict[str, Any]:
    """``device``'s chains (newest first) and its newest ``flags`` flags, for the dashboard.

    Index lookups only (no count of a chain's records: a year of a vessel is 31 million rows).
    """
    chains = db.fetch(
        "SELECT c.epoch, c.last_idx, c.last_ts_ms, c.signed_idx, c.ca_checked, c.first_seen_ms, "
        "c.updated_ms, "
        "(SELECT MAX(t.idx) FROM rec_track t WHERE t.device = c.device AND t.epoch = c.epoch) AS newest_idx "
        "FROM track_chains c WHERE c.device = ? ORDER BY c.first_seen_ms DESC, c.epoch",
        [device],
    )
    for c in chains:
        c["ca_checked"] = bool(c["ca_checked"])
        c["verified_idx"] = c.pop("signed_idx")
        c["waiting"] = (c["newest_idx"] if c["newest_idx"] is not None else -1) - c["verified_idx"]
    items = db.fetch(
        "SELECT epoch, idx, kind, ts_ms, detail, flagged_ms FROM track_flags WHERE device = ? "
        f"ORDER BY flagged_ms DESC, epoch, idx DESC LIMIT {int(flags)}",
        [device],
    )
    return {"device": device, "chains": chains, "flags": items}


def export_chain(
    db: Database, device: str, from_ms: int, to_ms: int, out: Path, epoch: str | None = None
) -> dict[str, Any]:
    """Write ``device``'s chain ``epoch`` (None: its newest) between ``from_ms`` and ``to_ms`` to
    ``out``, as the node's export does: widened to the signatures around the range, the notes'
    texts in the header. The records are the ones the node sent (the first copy of each idx): a
    break the centre flagged fails the file's verify at that record, as it should.

    Returns the file's header with ``records``, ``notes`` and ``unsigned`` (records of the range
    that no signature has covered yet). Raises :class:`TrackExportError` when nothing can be exported.
    """
    if epoch is None:
        newest = db.fetch(
            "SELECT epoch FROM track_chains WHERE device = ? ORDER BY first_seen_ms DESC, epoch LIMIT 1",
            [device],
        )
        if not newest:
            raise TrackExportError(f"no track chain of {device} at the centre")
        epoch = str(newest[0]["epoch"])
    where = "device = ? AND epoch = ?"
    (ends,) = db.fetch(
        f"SELECT MIN(idx) AS lo, MAX(idx) AS hi FROM rec_track WHERE {where} AND ts_ms >= ? AND ts_ms < ?",
        [device, epoch, from_ms, to_ms],
    )
    if ends["lo"] is None:
        raise TrackExportError(f"no track records of {device} chain {epoch} in that range")
    sigs = db.fetch(
        f"SELECT {_quoted(TRACK_SIG.names)} FROM rec_track_sig WHERE {where} ORDER BY idx, seq",
        [device, epoch],
    )
    usable = usable_signatures(_first_of_each(TrackSig._make(r.values()) for r in sigs))
    spanned = span(usable[0], ends["lo"], ends["hi"])
    if spanned is None:
        raise TrackExportError(
            f"no signature of {device} covers that range yet: a node signs every few minutes"
        )
    anchor, first, last = spanned
    head = ChainHead.start(device, epoch)
    if anchor:
        head.hash, head.next_idx = bytes(anchor.hash), first
    header = export_header(device, epoch, head.hash, first, last, usable, from_ms, to_ms)
    notes = db.fetch(
        f"SELECT {_quoted(TRACK_NOTE.names)} FROM rec_track_note WHERE {where} AND idx >= ? AND idx <= ? "
        "ORDER BY idx, seq",
        [device, epoch, first, last],
    )
    with TrackFileWriter(out, header, [TrackNote._make(n.values()) for n in notes]) as writer:
        batch: list[TrackPoint] = []
        for points in _pages(db, device, epoch, first, last):
            batch += points
            if len(batch) >= BLOCK_RECORDS:
                writer.write_points(head, batch)
                batch = []
        writer.write_points(head, batch)
    return {**header, "records": writer.records, "notes": writer.notes, "unsigned": max(ends["hi"] - last, 0)}


def _first_of_each(records: Iterator[Any]) -> Iterator[Any]:
    """``records`` (in idx order) with the first of each idx: a node may send one twice."""
    last = None
    for r in records:
        if r.idx != last:
            last = r.idx
            yield r


def _pages(db: Database, device: str, epoch: str, first: int, last: int) -> Iterator[list[TrackPoint]]:
    """The stored records ``first..last`` of a chain, a page at a time, the first copy of each idx."""
    after = first - 1
    while after < last:
        rows = db.fetch(
            f"SELECT {_COLUMNS} FROM rec_track WHERE device = ? AND epoch = ? AND idx > ? AND idx <= ? "
            f"ORDER BY idx, seq LIMIT {PAGE}",
            [device, epoch, after, last],
        )
        if not rows:
            return
        yield list(_first_of_each(TrackPoint._make(r.values()) for r in rows))
        after = rows[-1]["idx"]
