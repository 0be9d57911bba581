"""The track export file: a stretch of a node's track chain that anyone with the IOC's CA can check offline.

Layout: one line of JSON (the header), then blocks of records. Each block is a 4-byte
little-endian length and a zstd frame (with its checksum) holding, for ``n`` records, their
canonical bytes (``sync.chain``: ``n`` x 104 bytes, the ``track`` stream's integers) and then
their hashes (``n`` x 32 bytes). Binary and columnar because a year at one fix a second is
31.5 million records: parsing them as JSON would take longer than hashing them. The header::

    {"format": "ioc-edge-track", "version": 2, "device": "vessel-042", "chain": "<epoch>",
     "columns": ["ts_ms", ...], "scales": [1, ...], "first_idx": 0, "records": 86400,
     "prev_hash": "<hex: hash before the first record>", "certificates": ["<PEM chain>", ...],
     "signatures": [{"idx": 599, "signed_ms": ..., "hash": "<hex>", "signature": "<hex DER>",
                     "cert": 0}, ...],
     "notes": [{"idx": 4711, "text": "{\"event\":\"acknowledged\", ...}"}, ...],
     "from_ms": ..., "to_ms": ..., "exported_ms": ...}

``notes`` are the texts of the note records in the file (a warning delivered or acknowledged on
board): the chain holds only each text's digest, so the file carries the words. Version 2 (the
note columns, ``sync.chain.DOMAIN`` v2); version 1 files are not read.

The export starts at the chain's start or just after a signature (which is then in the file
too: it proves ``prev_hash``) and ends at a signature, so every record is covered by one.
:func:`verify` names the first record that does not verify, a note's text that does not match its
digest included, and lists the notes.

:func:`verify` also reports the gaps, by the centre's rule (``sync.chain.gaps``): more than
``gap_s`` between consecutive records (the node was off) or the time going back. They are not a
forgery (every record still verifies), so they are listed, not raised.

Example::

    report = verify(Path("vessel-042.track"), ca_certificate)   # raises TrackFileError
    print(report.summary())
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import zstandard
from cryptography import x509

from common.errors import IocEdgeError
from provisioning.revocation import CrlFile
from provisioning.signing import SignatureChecker, SignatureError, signed_at
from sync.chain import (
    GAP_S,
    HASH,
    IDX,
    NULL,
    WIDTH,
    ChainHead,
    Gap,
    canonical,
    gaps,
    genesis,
    link,
    note_digest,
    sig_message,
)
from sync.records import TrackNote, TrackPoint, TrackSig
from sync.wire import TRACK

__all__ = [
    "Note", "TrackExportError", "TrackFileError", "TrackFileWriter", "VerifyReport", "export_header",
    "read", "span", "usable_signatures", "verify",
]  # fmt: skip

FORMAT = "ioc-edge-track"
VERSION = 2
BLOCK_RECORDS = 65_536
"""Records per block: a few MB to hold in memory at a time, whatever the file's length."""
_TS = TRACK.names.index("ts_ms")
_LAT = TRACK.names.index("lat")
_LON = TRACK.names.index("lon")
_NOTE_HI, _NOTE_LO = TRACK.names.index("note_hi"), TRACK.names.index("note_lo")
_LATLON_SCALE = TRACK.columns[_LAT].scale
_MAX_HEADER = 256 * 1024 * 1024
GAPS_LISTED = 100
"""Gaps a report lists (it counts them all): a clock gone wrong can make one every record."""


class TrackExportError(IocEdgeError, ValueError):
    """Nothing can be exported for the range asked (no records, none signed yet), with why."""


class TrackFileError(IocEdgeError, ValueError):
    """The file is not a track export, or a record in it does not verify; the message names it."""


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TrackFileWriter:
    """Writes an export: blocks first (to a temporary file beside ``path``), the header on close.

    ``notes`` are the texts that may belong to the note records written (a node archives a note's
    text just before its record, so a power cut between can leave a text whose record was never
    chained): each note record written takes the text of its idx whose digest it carries, and the
    header lists those.

    Example::

        with TrackFileWriter(path, header, notes) as out:   # header without "records" and "notes"
            out.write_points(head, points)                  # TrackPoints, chained on from head
    """

    def __init__(self, path: Path, header: dict[str, Any], notes: Iterable[TrackNote] = ()) -> None:
        self.path, self.header = path, dict(header)
        self.records = 0
        self._candidates: dict[int, list[str]] = {}
        for n in notes:
            self._candidates.setdefault(n.idx, []).append(n.text)
        self.notes: list[dict[str, Any]] = []
        self._body = tempfile.TemporaryFile(dir=path.parent)  # noqa: SIM115 - closed by close()
        self._zc = zstandard.ZstdCompressor(level=3, write_checksum=True)

    def write(self, rows: np.ndarray, hashes: bytes) -> None:
        for lo in range(0, len(rows), BLOCK_RECORDS):
            part = rows[lo : lo + BLOCK_RECORDS]
            frame = self._zc.compress(
                part.astype("<i8").tobytes() + hashes[lo * HASH : (lo + len(part)) * HASH]
            )
            self._body.write(struct.pack("<I", len(frame)) + frame)
            self.records += len(part)

    def write_points(self, head: ChainHead, points: list[TrackPoint]) -> None:
        """Write ``points`` (records ``head.next_idx`` ...), chained on from ``head``, which moves on."""
        for p in points:
            if p.note_hi is not None:
                texts = self._candidates.get(p.idx, [])
                digest = (p.note_hi, p.note_lo)
                text = next((t for t in texts if note_digest(t) == digest), texts[0] if texts else None)
                if text is not None:  # else verify names the record: its text is missing
                    self.notes.append({"idx": p.idx, "text": text})
        if points:
            rows = canonical(points)
            hashes = link(head.hash, rows.astype("<i8").tobytes())
            head.hash, head.next_idx = hashes[-HASH:], head.next_idx + len(points)
            self.write(rows, hashes)

    def __enter__(self) -> TrackFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._body.close()

    def close(self) -> None:
        # A header that already has its notes (a file rewritten by a tool) keeps them.
        header = {"format": FORMAT, "version": VERSION, "notes": self.notes, **self.header}
        header["records"] = self.records
        tmp = self.path.with_name(self.path.name + ".part")
        with tmp.open("wb") as out:
            out.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
            self._body.seek(0)
            shutil.copyfileobj(self._body, out, 1 << 20)
        self._body.close()
        tmp.replace(self.path)


def read_header(f: BinaryIO, name: str) -> dict[str, Any]:
    """The header of an export open at its start; TrackFileError naming what is wrong."""
    line = f.readline(_MAX_HEADER)
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise TrackFileError(f"{name}: not a track export (the first line is not a JSON header)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TrackFileError(f"{name}: not a track export (header format is not {FORMAT!r})")
    if header.get("version") != VERSION:
        raise TrackFileError(f"{name}: export version {header.get('version')!r}; this tool reads {VERSION}")
    needed = {
        "device": str, "chain": str, "columns": list, "first_idx": int, "records": int,
        "prev_hash": str, "certificates": list, "signatures": list, "notes": list,
    }  # fmt: skip
    for key, kind in needed.items():
        if not isinstance(header.get(key), kind):
            raise TrackFileError(f"{name}: header field {key!r} is missing or not a {kind.__name__}")
    if header["columns"] != list(TRACK.names):
        raise TrackFileError(f"{name}: header columns {header['columns']} are not {list(TRACK.names)}")
    return header


def read_blocks(f: BinaryIO, name: str) -> Iterator[tuple[np.ndarray, bytes]]:
    """The blocks after the header: (canonical int64 rows, their hashes); TrackFileError if corrupt."""
    zd = zstandard.ZstdDecompressor()
    start = 0
    while size := f.read(4):
        if len(size) < 4:
            raise TrackFileError(f"{name}: truncated after record {start}")
        (length,) = struct.unpack("<I", size)
        frame = f.read(length)
        try:
            data = zd.decompress(frame) if len(frame) == length else b""
        except zstandard.ZstdError as exc:
            raise TrackFileError(f"{name}: the block after record {start} is corrupt ({exc})") from None
        n = len(data) // (WIDTH + HASH)
        if not n or n * (WIDTH + HASH) != len(data):
            raise TrackFileError(f"{name}: the block after record {start} is truncated or corrupt")
        yield np.frombuffer(data, "<i8", n * WIDTH // 8).reshape(n, -1), data[n * WIDTH :]
        start += n


def usable_signatures(sigs: Iterable[TrackSig]) -> tuple[list[tuple[TrackSig, int]], list[bytes]]:
    """The signatures of a chain (in idx order) that can be checked, each with the index of its
    certificate chain in the returned list: a signature is usable once a chain has come with it or
    before it (a node sends its PEM chain at the start of a run and once a day)."""
    pems: list[bytes] = []
    usable, pem = [], b""
    for s in sigs:
        pem = bytes(s.chain_pem) or pem
        if pem:
            if pem not in pems:
                pems.append(pem)
            usable.append((s, pems.index(pem)))
    return usable, pems


def span(usable: list[tuple[TrackSig, int]], lo: int, hi: int) -> tuple[TrackSig | None, int, int] | None:
    """(anchor signature or None, first idx, last idx) of an export of records ``lo..hi``: back to
    just after the last signature before ``lo`` (or the chain's start), on to the first signature at
    or after ``hi`` (or the newest). None when no signature covers any record of the range yet."""
    anchor = max((s for s, _ in usable if s.idx < lo), key=lambda s: s.idx, default=None)
    first = anchor.idx + 1 if anchor else 0
    after = [s.idx for s, _ in usable if s.idx >= hi]
    covering = [s.idx for s, _ in usable if s.idx >= max(first, lo)]
    if not covering:
        return None
    return anchor, first, min(after) if after else max(covering)


def export_header(
    device: str,
    chain: str,
    prev_hash: bytes,
    first: int,
    last: int,
    usable: tuple[list[tuple[TrackSig, int]], list[bytes]],
    from_ms: int,
    to_ms: int,
) -> dict[str, Any]:
    """The header of an export of records ``first..last`` (for :class:`TrackFileWriter`, which adds
    the notes' texts): the signatures of :func:`usable_signatures` that prove them."""
    sigs, pems = usable
    return {
        "device": device,
        "chain": chain,
        "columns": list(TRACK.names),
        "first_idx": first,
        "prev_hash": prev_hash.hex(),
        "certificates": [p.decode() for p in pems],
        "signatures": [
            {
                "idx": s.idx,
                "signed_ms": s.clock_ms,
                "hash": bytes(s.hash).hex(),
                "signature": bytes(s.signature).hex(),
                "cert": c,
            }
            for s, c in sigs
            if first - 1 <= s.idx <= last
        ],
        "from_ms": from_ms,
        "to_ms": to_ms,
        "exported_ms": time.time_ns() // 1_000_000,
    }


@dataclass(frozen=True)
class Note:
    """A note of a verified export: its record, time, the vessel's position then (None: no fix yet)
    and its text."""

    idx: int
    ts_ms: int
    lat: float | None
    lon: float | None
    text: str

    @property
    def line(self) -> str:
        where = "no position" if self.lat is None else f"at {self.lat:.5f}, {self.lon:.5f}"
        return f"  {_when(self.ts_ms)} record {self.idx} {where}: {self.text}"


@dataclass(frozen=True)
class VerifyReport:
    """What a verified export holds."""

    device: str
    chain: str
    first_idx: int
    last_idx: int
    records: int
    no_fix: int
    signatures: int
    first_ms: int
    last_ms: int
    ca_checked: bool
    crl_checked: bool = False
    gaps: int = 0
    gap_s: float = GAP_S
    listed_gaps: tuple[Gap, ...] = ()
    """The first :data:`GAPS_LISTED` of the ``gaps``."""
    notes: tuple[Note, ...] = ()
    """Every note of the export, in idx order, its text checked against the chain."""

    def summary(self) -> str:
        """The report as ``track verify`` prints it: the OK line, a line per gap, then a line per note."""
        ca = "against its own certificates only (no CA given)"
        if self.ca_checked:
            ca = "against the CA " + ("and its CRLs" if self.crl_checked else "(revocation not checked)")
        lines = [
            f"OK: {self.device} chain {self.chain}: records {self.first_idx}..{self.last_idx} "
            f"({self.records} records, {self.no_fix} without a fix), {_when(self.first_ms)} .. "
            f"{_when(self.last_ms)}, {self.signatures} signatures, verified {ca}"
        ]
        if self.gaps:
            lines.append(
                f"{self.gaps} gap(s): more than {self.gap_s:g} s without a record, or the time going back "
                "(the node was off, or its clock jumped):"
            )
            lines += [f"  record {g.idx}: {g.detail}" for g in self.listed_gaps]
            if self.gaps > len(self.listed_gaps):
                lines.append(f"  ... and {self.gaps - len(self.listed_gaps)} more")
        if self.notes:
            lines.append(f"{len(self.notes)} note(s) chained (time, record, position, text):")
            lines += [n.line for n in self.notes]
        return "\n".join(lines)


class _Signatures:
    """The header's signatures by idx, checked as the walk reaches each one."""

    def __init__(self, header: dict[str, Any], checker: SignatureChecker, name: str) -> None:
        self.device, self.chain, self.checker = header["device"], header["chain"], checker
        self.certs = [c.encode() if isinstance(c, str) else b"" for c in header["certificates"]]
        self.by_idx: dict[int, dict] = {}
        for n, sig in enumerate(header["signatures"]):
            try:
                idx, digest = sig["idx"], bytes.fromhex(sig["hash"])
                signature, cert = bytes.fromhex(sig["signature"]), sig["cert"]
                if not all(type(v) is int for v in (idx, cert, sig["signed_ms"])):
                    raise ValueError
                if not 0 <= cert < len(self.certs):
                    raise ValueError
            except (KeyError, TypeError, ValueError):
                raise TrackFileError(f"{name}: signature {n} of the header is malformed") from None
            self.by_idx[idx] = {**sig, "hash": digest, "signature": signature}

    def check(self, idx: int, digest: bytes) -> str | None:
        """Why the signature at ``idx`` does not prove ``digest``, or None when it does."""
        sig = self.by_idx[idx]
        try:
            self.checker.check(
                self.certs[sig["cert"]],
                self.device,
                sig_message(self.device, self.chain, idx, sig["hash"], sig["signed_ms"]),
                sig["signature"],
                signed_at(sig["signed_ms"]),
            )
        except SignatureError as exc:
            return f"the signature there does not verify: {exc}"
        if sig["hash"] != digest:
            return "the records do not match the hash signed there: changed after signing"
        return None


def verify(
    path: Path, ca: x509.Certificate | None, crls: CrlFile | None = None, gap_s: float = GAP_S
) -> VerifyReport:
    """Check an export: every record's hash, the chain, the signatures (against ``ca`` if given, and
    the revocations of ``crls``: a certificate revoked at or before a signature's claimed time voids
    it), and list its gaps (more than ``gap_s`` between records, or the time going back).

    Raises :class:`TrackFileError` naming the first record that does not verify:
    ``record N (time): what is wrong``.
    """
    name = str(path)
    try:
        f = path.open("rb")
    except OSError as exc:
        raise TrackFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    with f:
        header = read_header(f, name)
        sigs = _Signatures(header, SignatureChecker(ca, crls=crls), name)
        report = _walk(f, header, sigs, name, int(gap_s * 1000))
    checked = ca is not None
    return replace(report, ca_checked=checked, crl_checked=checked and crls is not None, gap_s=gap_s)


def read(path: Path) -> tuple[dict[str, Any], np.ndarray, bytes]:
    """A whole export in memory: header, canonical rows, hashes (for tools and tests; small files)."""
    with path.open("rb") as f:
        header = read_header(f, str(path))
        blocks = list(read_blocks(f, str(path)))
    rows = np.concatenate([b[0] for b in blocks]) if blocks else np.empty((0, WIDTH // 8), np.int64)
    return header, rows, b"".join(b[1] for b in blocks)


def _texts(header: dict, name: str) -> dict[int, str]:
    """The header's note texts by idx; TrackFileError when malformed."""
    texts: dict[int, str] = {}
    for n, note in enumerate(header["notes"]):
        if (
            not isinstance(note, dict)
            or type(note.get("idx")) is not int
            or not isinstance(note.get("text"), str)
        ):
            raise TrackFileError(f"{name}: note {n} of the header is malformed")
        if note["idx"] in texts:
            raise TrackFileError(f"{name}: record {note['idx']}: the header has two note texts for it")
        texts[note["idx"]] = note["text"]
    return texts


def _notes(rows: np.ndarray, texts: dict[int, str], name: str) -> list[Note]:
    """The notes among ``rows`` (verified records), each text taken out of ``texts`` and checked
    against the digest chained in its record; TrackFileError naming the first that does not match."""
    found = []
    for p in np.flatnonzero(rows[:, _NOTE_HI] != NULL).tolist():
        i, ts = int(rows[p, IDX]), int(rows[p, _TS])
        text = texts.pop(i, None)
        if text is None:
            raise TrackFileError(
                f"{name}: record {i} ({_when(ts)}): a note is chained there; its text is missing"
            )
        if note_digest(text) != (int(rows[p, _NOTE_HI]), int(rows[p, _NOTE_LO])):
            why = "the note's text does not match the digest chained there: changed"
            raise TrackFileError(f"{name}: record {i} ({_when(ts)}): {why}")
        lat, lon = int(rows[p, _LAT]), int(rows[p, _LON])
        fixed = lat != NULL and lon != NULL
        found.append(
            Note(i, ts, lat / _LATLON_SCALE if fixed else None, lon / _LATLON_SCALE if fixed else None, text)
        )
    return found


def _walk(f: BinaryIO, header: dict, sigs: _Signatures, name: str, gap_ms: int) -> VerifyReport:
    first = header["first_idx"]
    texts = _texts(header, name)
    notes: list[Note] = []
    try:
        prev = bytes.fromhex(header["prev_hash"])
    except ValueError:
        raise TrackFileError(f"{name}: header prev_hash is not hex") from None
    if first == 0 and prev != genesis(header["device"], header["chain"]):
        raise TrackFileError(f"{name}: record 0: prev_hash is not the start of chain {header['chain']}")
    expected, last_signed, covered_from = first, first - 1, first
    no_fix = 0
    first_ms = last_ms = None
    found: list[Gap] = []
    gap_count = 0
    for rows, stored in read_blocks(f, name):
        if first and expected == first:
            # Mid-chain: the hash before the first record must be one the node signed.
            if first - 1 not in sigs.by_idx:
                raise TrackFileError(f"{name}: record {first}: no signature proves the hash before it")
            why = sigs.check(first - 1, prev)
            if why:
                raise TrackFileError(f"{name}: record {first - 1} (before the export): {why}")
        n = len(rows)
        idx = rows[:, IDX]
        want = np.arange(expected, expected + n)
        computed = link(prev, rows.tobytes())
        bad_idx = np.flatnonzero(idx != want)
        bad_hash = np.flatnonzero(
            (
                np.frombuffer(computed, np.uint8).reshape(n, HASH)
                != np.frombuffer(stored, np.uint8).reshape(n, HASH)
            ).any(axis=1)
        )
        stop = min([int(a[0]) for a in (bad_idx, bad_hash) if len(a)], default=n)
        for k in sorted(i for i in sigs.by_idx if expected <= i < expected + stop):
            p = k - expected
            why = sigs.check(k, computed[p * HASH : (p + 1) * HASH])
            if why:
                what = f"records {covered_from}..{k}" if why.startswith("the records") else f"record {k}"
                raise TrackFileError(f"{name}: {what} ({_when(int(rows[p, _TS]))}): {why}")
            last_signed, covered_from = k, k + 1
        if stop < n:
            idx_wrong = len(bad_idx) > 0 and bad_idx[0] == stop
            raise TrackFileError(f"{name}: {_what_is_wrong(rows, stop, int(want[stop]), idx_wrong)}")
        notes += _notes(rows, texts, name)
        no_fix += int((rows[:, _LAT] == NULL).sum())
        more = gaps(idx, rows[:, _TS], last_ms, gap_ms)
        gap_count += len(more)
        found += more[: GAPS_LISTED - len(found)]
        first_ms = int(rows[0, _TS]) if first_ms is None else first_ms
        last_ms = int(rows[-1, _TS])
        prev, expected = computed[-HASH:], expected + n
    if expected - first != header["records"]:
        raise TrackFileError(f"{name}: holds {expected - first} records; the header says {header['records']}")
    if first_ms is None or last_ms is None:  # no block read: read_blocks yields none empty
        raise TrackFileError(f"{name}: holds no records")
    if last_signed < expected - 1:
        raise TrackFileError(
            f"{name}: records {last_signed + 1}..{expected - 1}: not covered by any signature"
        )
    if texts:
        raise TrackFileError(
            f"{name}: record {min(texts)}: the header has a note text for it; no note is chained there"
        )
    return VerifyReport(
        header["device"], header["chain"], first, expected - 1, expected - first, no_fix,
        len(sigs.by_idx), first_ms, last_ms, False, gaps=gap_count, listed_gaps=tuple(found),
        notes=tuple(notes),
    )  # fmt: skip


def _what_is_wrong(rows: np.ndarray, p: int, want: int, idx_wrong: bool) -> str:
    when = _when(int(rows[p, _TS]))
    if not idx_wrong:
        return f"record {want} ({when}): its hash does not match its contents: changed"
    got = int(rows[p, IDX])
    if got > want and want not in rows[p:, IDX]:
        return f"record {want} ({when}): missing (record {got} follows record {want - 1})"
    return f"record {want} ({when}): out of order (record {got} is in its place)"
