"""The wire format between edge nodes and the IOC: topics, streams, batches and acks.

The centre (``ioc/``) shares it with the node, as it shares the records, the track's chain and
file, provisioning and the foundation: the layers are in docs/architecture.md.

Topics (``prefix`` is ``ioc/v1`` by default)::

    {prefix}/{device}/up/{stream}   edge -> IOC   a batch of records (QoS 1)
    {prefix}/{device}/ack           IOC -> edge   an end-to-end ack, sent after the IOC's commit
    {prefix}/{device}/cmd           IOC -> edge   a signed command (its format: ``sync.commands``)

A batch is one stream's records in column order, columnar: each column is
turned into integers (fixed point for decimals), delta-encoded (twice for
smooth series such as coordinates and timestamps), zig-zagged, stored in the
narrowest byte width that fits and byte-shuffled (all low bytes, then all
next bytes ...), so that slowly changing series become long runs of zeros.
The columns are packed with msgpack and the whole is compressed; the first
byte of the payload names the compression (see ``bench/drain.py`` for the
bytes per record this gives).

Example::

    >>> from sync.records import Position
    >>> batch = Batch("vessel-042", "a1b2c3d4e5f60718", "position", [7],
    ...               [Position(1700000000000, 1, 1700000000000, 16.5, 107.6)])
    >>> decode_batch(encode_batch(batch)) == batch
    True
"""

from __future__ import annotations

import io
import math
import re
import sys
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import msgpack
import zstandard

from common.errors import IocEdgeError
from sync.records import (
    Ais,
    Alarm,
    CommandResult,
    Commissioning,
    Count,
    Event,
    NodeStatus,
    Position,
    Reading,
    Summary,
    TimeSource,
    TrackNote,
    TrackPoint,
    TrackSig,
    WarningReceipt,
)

if TYPE_CHECKING:
    import numpy as np

WIRE_VERSION = 1
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
"""A compressed payload above this is refused unread."""
MAX_DECODED_BYTES = 32 * 1024 * 1024
"""Decompression stops here, so a small payload cannot expand into a memory bomb."""
MAX_BATCH_RECORDS = 100_000

DEVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
EPOCH_RE = re.compile(r"^[0-9a-f]{16}$")

CODEC_ZLIB = 1
CODEC_ZSTD = 2
CODECS = {"zlib": CODEC_ZLIB, "zstd": CODEC_ZSTD}


class WireError(IocEdgeError, ValueError):
    """A payload that does not follow the wire format; ``reason`` is the counter it goes under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class InvalidRecords(IocEdgeError, ValueError):
    """Records that the IOC would refuse (a value out of range or missing): ``rows`` are their indexes."""

    def __init__(self, column: str, rows: list[int]) -> None:
        super().__init__(f"{len(rows)} record(s) with an invalid {column}")
        self.column, self.rows = column, rows


@dataclass(frozen=True)
class Column:
    """One field of a stream's records and how it travels.

    ``kind`` is ``int``, ``fixed`` (a decimal sent as ``round(value * scale)``),
    ``blob`` (bytes, e.g. a JPEG snapshot),
    or ``text``. ``order`` is how many times the integers are delta-encoded
    (2 suits series that change at a steady rate). ``nullable`` columns
    carry a bitmap of which values are present. ``lo``/``hi`` bound the
    values the IOC accepts.
    """

    name: str
    kind: str = "int"
    scale: int = 1
    order: int = 1
    nullable: bool = False
    lo: float | None = None
    hi: float | None = None


class RecordClass(Protocol):
    """What a stream needs of its record class, a NamedTuple of :mod:`sync.records`.

    ``_make`` builds a record from its column values, in column order.
    """

    def _make(self, iterable: Iterable[Any], /) -> tuple[Any, ...]: ...


@dataclass(frozen=True)
class Stream:
    """A kind of record: its table, its columns and its priority.

    ``priority`` 0 is the highest. The uplink sends higher priority first and
    the store's retention drops lower priority first. A stream that is not
    ``synced`` by default stays in the node's store (raw readings: the IOC
    gets their summaries) unless the node's config says otherwise.
    """

    name: str
    record: RecordClass
    priority: int
    columns: tuple[Column, ...]
    synced: bool = True
    max_batch: int | None = None
    """Most records in one message, for streams whose records are big (JPEG snapshots)."""
    archive: bool = False
    """Also kept in the store's archive, which acks and a full store never empty: only age does
    (the track log, which the owner must be able to show for years)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


MAX_TIME_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last instant that every formatter the centre uses can show (a
four-digit ISO year, Python's ``datetime``, JavaScript's ``Date``). A record time beyond it or
before 1970 is refused (``bad_value``): a node sets such records aside rather than sending them.
A node without a real-time clock stamps 1970-based times, which stay within these bounds."""

_STAMP = (
    Column("ts_ms", order=2, lo=0, hi=MAX_TIME_MS),
    Column("tsrc", lo=min(TimeSource), hi=max(TimeSource)),
    Column("clock_ms", order=2, lo=0, hi=MAX_TIME_MS),
)

ALARM = Stream(
    "alarm",
    Alarm,
    0,
    _STAMP
    + (
        Column("source", "text"),
        Column("kind", "text"),
        Column("state", lo=0, hi=1),
        Column("value", "fixed", scale=1000, nullable=True),
        Column("message", "text"),
    ),
)
POSITION = Stream(
    "position",
    Position,
    1,
    _STAMP
    + (
        Column("lat", "fixed", scale=10_000_000, order=2, lo=-90, hi=90),
        Column("lon", "fixed", scale=10_000_000, order=2, lo=-180, hi=180),
        Column("speed_kn", "fixed", scale=100, nullable=True, lo=0, hi=1000),
        Column("course_deg", "fixed", scale=10, nullable=True, lo=0, hi=360),
        Column("fix", nullable=True, lo=0, hi=9),
        Column("sats", nullable=True, lo=0, hi=255),
        Column("hdop", "fixed", scale=100, nullable=True, lo=0, hi=100),
        Column("alt_m", "fixed", scale=10, nullable=True, lo=-10_000, hi=100_000),
    ),
)
STATUS = Stream("status", NodeStatus, 2, _STAMP + (Column("body", "text"),))
SUMMARY = Stream(
    "summary",
    Summary,
    3,
    _STAMP
    + (
        Column("sensor", "text"),
        Column("quantity", "text"),
        Column("interval_s", lo=1, hi=86_400),
        Column("count", lo=0),
        Column("mean", "fixed", scale=1000, nullable=True),
        Column("min", "fixed", scale=1000, nullable=True),
        Column("max", "fixed", scale=1000, nullable=True),
        Column("trimmed_mean", "fixed", scale=1000, nullable=True),
        Column("total", "fixed", scale=1000),
        Column("rejected", lo=0),
    ),
)
COUNT = Stream(
    "count",
    Count,
    3,
    _STAMP
    + (
        Column("camera", "text"),
        Column("line", "text"),
        Column("group", "text"),
        Column("direction", "text"),
        Column("interval_s", lo=1, hi=86_400),
        Column("count", lo=0),
    ),
)
EVENT = Stream(
    "event",
    Event,
    4,
    _STAMP
    + (
        Column("camera", "text"),
        Column("rule", "text"),
        Column("label", "text"),
        Column("track_id", lo=0),
        Column("score", "fixed", scale=1000, lo=0, hi=1),
        Column("x1"),
        Column("y1"),
        Column("x2"),
        Column("y2"),
        Column("message", "text"),
        Column("jpeg", "blob"),
    ),
    max_batch=50,  # 50 snapshots of <= 30 kB: well under the payload limit
)
READING = Stream(
    "reading",
    Reading,
    5,
    _STAMP
    + (
        Column("sensor", "text"),
        Column("quantity", "text"),
        Column("value", "fixed", scale=1000, nullable=True),
    ),
    synced=False,
)
# High priority: one record per self-test, the node's proof of how it was commissioned.
COMMISSIONING = Stream(
    "commissioning",
    Commissioning,
    0,
    _STAMP + (Column("body", "text"), Column("chain", "text"), Column("signature", "blob")),
)
# The vessel's full track as a hash chain (sync.chain): every fix, never thinned; kept in the archive.
TRACK = Stream(
    "track",
    TrackPoint,
    1,
    _STAMP
    + (
        Column("idx", order=2, lo=0),
        Column("lat", "fixed", scale=10_000_000, order=2, nullable=True, lo=-90, hi=90),
        Column("lon", "fixed", scale=10_000_000, order=2, nullable=True, lo=-180, hi=180),
        Column("speed_kn", "fixed", scale=100, nullable=True, lo=0, hi=1000),
        Column("course_deg", "fixed", scale=10, nullable=True, lo=0, hi=360),
        Column("fix", nullable=True, lo=0, hi=9),
        Column("sats", nullable=True, lo=0, hi=255),
        Column("hdop", "fixed", scale=100, nullable=True, lo=0, hi=100),
        # A note's digest (sync.chain.note_digest): two 52-bit halves, as the wire and the
        # canonical bytes carry an integer exactly only below 2**53.
        Column("note_hi", nullable=True, lo=0, hi=2**52 - 1),
        Column("note_lo", nullable=True, lo=0, hi=2**52 - 1),
    ),
    archive=True,
)
# The texts of the track's notes (warnings received and acknowledged on board), kept as the track is.
TRACK_NOTE = Stream(
    "track_note",
    TrackNote,
    1,
    _STAMP + (Column("idx", lo=0), Column("text", "text")),
    archive=True,
)
TRACK_SIG = Stream(
    "track_sig",
    TrackSig,
    1,
    _STAMP
    + (
        Column("idx", lo=0),
        Column("hash", "blob"),
        Column("signature", "blob"),
        Column("chain_pem", "blob"),
    ),
    archive=True,
)

# AIS traffic heard by a vessel's receiver, passed on raw and rate-capped (drivers.ais): the least urgent.
AIS = Stream("ais", Ais, 5, _STAMP + (Column("sentence", "text"),))

# A node's answers to the centre's commands (sync.commands): the alarm lane, ahead of any backlog.
COMMAND_RESULT = Stream(
    "command_result",
    CommandResult,
    0,
    _STAMP
    + (
        Column("command_seq", lo=1),
        Column("state", "text"),
        Column("reason", "text"),
        Column("details", "text"),
    ),
)

# What became of the centre's warnings on a node (sync.warnings): the alarm lane, ahead of any backlog.
WARNING_RECEIPT = Stream(
    "warning_receipt",
    WarningReceipt,
    0,
    _STAMP
    + (
        Column("identifier", "text"),
        Column("event", "text"),
        Column("output", "text"),
        Column("by", "text"),
        Column("inside", nullable=True, lo=0, hi=1),
        Column("lat", "fixed", scale=10_000_000, nullable=True, lo=-90, hi=90),
        Column("lon", "fixed", scale=10_000_000, nullable=True, lo=-180, hi=180),
        Column("details", "text"),
    ),
)

STREAMS: dict[str, Stream] = {
    s.name: s
    for s in (
        ALARM,
        POSITION,
        STATUS,
        SUMMARY,
        COUNT,
        EVENT,
        READING,
        COMMISSIONING,
        TRACK,
        TRACK_SIG,
        TRACK_NOTE,
        AIS,
        COMMAND_RESULT,
        WARNING_RECEIPT,
    )
}


class Batch(NamedTuple):
    """Records of one stream from one device and store epoch, with their sequence numbers."""

    device: str
    epoch: str
    stream: str
    seqs: list[int]
    records: list[tuple]


class Ack(NamedTuple):
    """The IOC's end-to-end ack: records ``first..last`` of ``stream`` are committed centrally."""

    epoch: str
    stream: str
    first: int
    last: int


def up_topic(prefix: str, device: str, stream: str) -> str:
    return f"{prefix}/{device}/up/{stream}"


def ack_topic(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/ack"


def parse_up_topic(prefix: str, topic: str) -> tuple[str, str]:
    """``(device, stream)`` of an uplink topic; raises :class:`WireError` for any other topic."""
    parts = topic[len(prefix) + 1 :].split("/") if topic.startswith(prefix + "/") else []
    if len(parts) != 3 or parts[1] != "up" or not DEVICE_RE.fullmatch(parts[0]):
        raise WireError("bad_topic", f"{topic!r} is not {prefix}/<device>/up/<stream>")
    if parts[2] not in STREAMS:
        raise WireError("unknown_stream", f"stream {parts[2]!r} in {topic!r} is not one of {sorted(STREAMS)}")
    return parts[0], parts[2]


# -- columns -------------------------------------------------------------------------------------


_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_INT64_LIMIT = float(2**63)


def _wrap64(v: int) -> int:
    """``v`` wrapped into int64 as numpy's arithmetic wraps it (what ``_decode_ints`` undoes)."""
    return ((v - _INT64_MIN) & _UINT64_MAX) + _INT64_MIN


def _encode_ints(values: list[int], order: int) -> list:
    # Plain Python on the sending side: numpy would add ~12 MB to every node's resident memory
    # (a 512 MB river gauge), for a few records a second. Values are int64s; deltas wrap as int64.
    heads: list[int] = []
    d = values
    wraps = bool(values) and max(values) - min(values) >= 1 << 62  # a 2nd-order delta can overflow
    for _ in range(order):
        if not d:
            break
        heads.append(d[0])
        d = [b - a for a, b in zip(d, d[1:], strict=False)]
        if wraps:
            d = [_wrap64(v) for v in d]
    # zig-zag, (v << 1) ^ (v >> 63) in int64: small magnitudes become small numbers
    z = array("Q", [v + v if v >= 0 else ~(v + v) for v in d])
    top = max(z, default=0)
    width = 0 if top == 0 else 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    if sys.byteorder == "big":
        z.byteswap()
    raw = z.tobytes()
    return [heads, width, b"".join(raw[k::8] for k in range(width))]


def _decode_ints(encoded: Any, n: int) -> np.ndarray:
    import numpy as np  # here, not at the top: decoding is the IOC's, and a node should not pay for it

    heads, width, data = encoded
    if (
        not isinstance(heads, list)
        or len(heads) > 2
        or not all(type(h) is int and _INT64_MIN <= h <= _INT64_MAX for h in heads)
        or type(width) is not int
        or width not in (0, 1, 2, 4, 8)
        or not isinstance(data, bytes)
    ):
        raise WireError("bad_schema", "integer column header is malformed")
    count = max(n - len(heads), 0)
    if width:
        if len(data) != count * width:
            raise WireError("bad_schema", f"integer column holds {len(data)} bytes, expected {count * width}")
        z = np.frombuffer(data, np.uint8).reshape(width, count).T.copy().view(f"<u{width}").ravel()
        z = z.astype(np.uint64)
    else:
        z = np.zeros(count, np.uint64)
    d = (z >> np.uint64(1)).astype(np.int64) ^ -(z & np.uint64(1)).astype(np.int64)
    for head in reversed(heads):
        d = np.concatenate(([head], head + np.cumsum(d)))
    if len(d) != n:
        raise WireError("bad_schema", f"integer column holds {len(d)} values, expected {n}")
    return d


_AS_IS = {"text": str, "blob": bytes}
"""Columns sent as a plain list of values, and the type each value must have."""


def _as_floats(values: list) -> list[float]:
    """``values`` as floats, None and anything that is not a number as NaN (a missing value)."""
    try:
        return list(map(float, values))  # the usual batch, at C speed
    except (TypeError, ValueError):
        pass
    try:
        return [math.nan if v is None else float(v) for v in values]
    except (TypeError, ValueError):
        return [float(v) if isinstance(v, int | float) else math.nan for v in values]


def _encode_column(col: Column, values: list) -> list:
    if col.kind in _AS_IS:
        kind = _AS_IS[col.kind]
        if not all(isinstance(v, kind) for v in values):
            raise InvalidRecords(col.name, [i for i, v in enumerate(values) if not isinstance(v, kind)])
        return values
    floats = _as_floats(values)
    lo = -math.inf if col.lo is None else col.lo
    hi = math.inf if col.hi is None else col.hi
    # The usual batch checked in C: no NaN (a missing value), no inf, all well inside the bounds and
    # half of int64 once scaled; any other goes through the exact test, value by value.
    limit = _INT64_LIMIT / 2 / col.scale
    complete = math.isfinite(sum(floats))
    if not complete or (floats and (min(floats) < max(lo, -limit) or max(floats) > min(hi, limit))):
        # NaN compares False, so a missing value is never out of range; one that cannot be an
        # int64 once scaled (inf, 1e300) has no integer to travel as.
        bad = [
            i
            for i, x in enumerate(floats)
            if (x != x and not col.nullable) or x < lo or x > hi or abs(x * col.scale) >= _INT64_LIMIT
        ]
        if bad:
            raise InvalidRecords(col.name, bad)
    scale = col.scale
    if complete:  # round() rounds half to even, as np.rint did
        return [None, *_encode_ints([round(x * scale) for x in floats], col.order)]
    # Values missing (an inf was refused above): a bitmap of those present, the first the highest bit.
    present = bytearray((len(floats) + 7) // 8)
    ints = []
    for i, x in enumerate(floats):
        if x == x:  # not NaN
            present[i >> 3] |= 0x80 >> (i & 7)
            ints.append(round(x * scale))
    return [bytes(present), *_encode_ints(ints, col.order)]


def _decode_column(col: Column, encoded: Any, n: int) -> list:
    import numpy as np  # see _decode_ints

    if col.kind in _AS_IS:
        kind = _AS_IS[col.kind]
        if (
            not isinstance(encoded, list)
            or len(encoded) != n
            or not all(isinstance(v, kind) for v in encoded)
        ):
            raise WireError("bad_schema", f"column {col.name}: expected a list of {n} {col.kind} values")
        return encoded
    if not isinstance(encoded, list) or len(encoded) != 4:
        raise WireError("bad_schema", f"column {col.name}: expected [bitmap, heads, width, data]")
    bitmap, *ints = encoded
    present = None
    if bitmap is not None:
        if not col.nullable or not isinstance(bitmap, bytes) or len(bitmap) != (n + 7) // 8:
            raise WireError("bad_schema", f"column {col.name}: bad presence bitmap")
        present = np.unpackbits(np.frombuffer(bitmap, np.uint8), count=n).astype(bool)
    values = _decode_ints(ints, n if present is None else int(present.sum()))
    scaled = values / col.scale if col.kind == "fixed" else values
    if len(scaled) and (
        (col.lo is not None and scaled.min() < col.lo) or (col.hi is not None and scaled.max() > col.hi)
    ):
        raise WireError("bad_value", f"column {col.name}: values outside [{col.lo}, {col.hi}]")
    out = scaled.tolist()
    if present is None:
        return out
    full: list = [None] * n
    for i, v in zip(np.flatnonzero(present).tolist(), out, strict=True):
        full[i] = v
    return full


# -- batches -------------------------------------------------------------------------------------


def encode_batch(batch: Batch, compression: str = "zstd") -> bytes:
    """The payload for ``batch``: msgpack of its columns, compressed (``zstd`` or ``zlib``).

    Raises :class:`InvalidRecords` naming the records the IOC would refuse, so
    that the sender can set them aside instead of sending them for ever.
    """
    stream = STREAMS[batch.stream]
    columns = list(zip(*batch.records, strict=True)) if batch.records else [()] * len(stream.columns)
    body = {
        "v": WIRE_VERSION,
        "dev": batch.device,
        "ep": batch.epoch,
        "st": batch.stream,
        "n": len(batch.seqs),
        "seq": _encode_ints(list(batch.seqs), 1),
        "c": [_encode_column(c, list(v)) for c, v in zip(stream.columns, columns, strict=True)],
    }
    packed = msgpack.packb(body, use_bin_type=True)
    if compression == "zstd":
        return bytes([CODEC_ZSTD]) + zstandard.ZstdCompressor(level=3).compress(packed)
    return bytes([CODEC_ZLIB]) + zlib.compress(packed, 6)


def _decompress(payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("too_large", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    if not payload:
        raise WireError("bad_compression", "empty payload")
    codec, data = payload[0], payload[1:]
    try:
        if codec == CODEC_ZSTD:
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
            out = reader.read(MAX_DECODED_BYTES + 1)
        elif codec == CODEC_ZLIB:
            out = zlib.decompressobj().decompress(data, MAX_DECODED_BYTES + 1)
        else:
            raise WireError("bad_compression", f"unknown compression byte {codec}")
    except (zstandard.ZstdError, zlib.error) as exc:
        raise WireError("bad_compression", str(exc)) from None
    if len(out) > MAX_DECODED_BYTES:
        raise WireError("too_large", f"payload expands beyond {MAX_DECODED_BYTES} bytes")
    return out


def decode_batch(payload: bytes) -> Batch:
    """The batch in ``payload``, validated; raises :class:`WireError` naming why it is refused."""
    import numpy as np  # see _decode_ints

    try:
        body = msgpack.unpackb(_decompress(payload), raw=False, strict_map_key=True)
    except WireError:
        raise
    except Exception as exc:  # msgpack raises a zoo of exception types for garbage
        raise WireError("bad_encoding", f"not msgpack: {exc}") from None
    expected = {"v", "dev", "ep", "st", "n", "seq", "c"}
    if not isinstance(body, dict) or set(body) != expected:
        raise WireError("bad_schema", f"expected a map with keys {sorted(expected)}")
    if body["v"] != WIRE_VERSION:
        raise WireError("bad_schema", f"wire version {body['v']!r} is not {WIRE_VERSION}")
    stream = STREAMS.get(body["st"]) if isinstance(body["st"], str) else None
    if stream is None:
        raise WireError("unknown_stream", f"stream {body['st']!r} is not one of {sorted(STREAMS)}")
    if not isinstance(body["dev"], str) or not DEVICE_RE.fullmatch(body["dev"]):
        raise WireError("bad_schema", f"device {body['dev']!r} is not a valid device id")
    if not isinstance(body["ep"], str) or not EPOCH_RE.fullmatch(body["ep"]):
        raise WireError("bad_schema", f"epoch {body['ep']!r} is not 16 hex digits")
    n = body["n"]
    if type(n) is not int or not 1 <= n <= MAX_BATCH_RECORDS:
        raise WireError("bad_schema", f"record count {n!r} is not 1..{MAX_BATCH_RECORDS}")
    if not isinstance(body["c"], list) or len(body["c"]) != len(stream.columns):
        raise WireError("bad_schema", f"expected {len(stream.columns)} columns for stream {stream.name}")
    try:
        seqs = _decode_ints(body["seq"], n)
        columns = [_decode_column(c, v, n) for c, v in zip(stream.columns, body["c"], strict=True)]
    except WireError:
        raise
    except (TypeError, ValueError) as exc:
        raise WireError("bad_schema", f"malformed column: {exc}") from None
    if seqs[0] < 1 or (n > 1 and np.diff(seqs).min() < 1):
        raise WireError("bad_value", "sequence numbers must be positive and strictly increasing")
    records = [stream.record._make(r) for r in zip(*columns, strict=True)]
    return Batch(body["dev"], body["ep"], stream.name, seqs.tolist(), records)


def encode_ack(ack: Ack) -> bytes:
    return msgpack.packb(list(ack), use_bin_type=True)


def decode_ack(payload: bytes) -> Ack:
    """The ack in ``payload``; raises :class:`WireError` when it is not one."""
    try:
        epoch, stream, first, last = msgpack.unpackb(payload, raw=False)
    except Exception as exc:
        raise WireError("bad_ack", f"not an ack: {exc}") from None
    if (
        not isinstance(epoch, str)
        or not EPOCH_RE.fullmatch(epoch)
        or stream not in STREAMS
        or not all(type(v) is int for v in (first, last))
        or not 1 <= first <= last
    ):
        raise WireError("bad_ack", f"not an ack: {epoch!r} {stream!r} {first!r} {last!r}")
    return Ack(epoch, stream, first, last)
