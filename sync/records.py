"""Records the node stores and syncs: one NamedTuple per stream.

Records are NamedTuples rather than dataclasses because the store hands them
to ``sqlite3.executemany`` as they are: a conversion per record would cost
more than the insert itself (see ``bench/store.py``). Field order is the
column order of the stream's table and of the wire format (``sync.wire``).

Every record starts with the same three fields:

- ``ts_ms``: the record's time, UTC milliseconds since 1970;
- ``tsrc``: where ``ts_ms`` came from (:class:`TimeSource`), so the IOC can
  tell a trustworthy time from a guess;
- ``clock_ms``: the node's own wall clock when the record was made, kept
  beside ``ts_ms`` even when it is wrong (a node booted without RTC sits at
  1970), so clock drift can be proven afterwards.
"""

from __future__ import annotations

from typing import NamedTuple

from common.clock import TimeSource as TimeSource  # in every record: its importers find it here too


class Position(NamedTuple):
    """One GPS fix: a position with the receiver's quality figures.

    ``fix``, ``sats``, ``hdop`` and ``alt_m`` come from GGA, ``speed_kn`` and
    ``course_deg`` from RMC or VTG; each is ``None`` when the receiver did
    not send it.
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    lat: float
    lon: float
    speed_kn: float | None = None
    course_deg: float | None = None
    fix: int | None = None
    sats: int | None = None
    hdop: float | None = None
    alt_m: float | None = None


class Alarm(NamedTuple):
    """An alarm raised or cleared on the node (``state`` 1 = raised, 0 = cleared)."""

    ts_ms: int
    tsrc: int
    clock_ms: int
    source: str
    kind: str
    state: int
    value: float | None = None
    message: str = ""


class Reading(NamedTuple):
    """One raw sensor reading (a value of a named quantity from a named sensor)."""

    ts_ms: int
    tsrc: int
    clock_ms: int
    sensor: str
    quantity: str
    value: float


class Summary(NamedTuple):
    """One interval of one sensor's quantity: what the IOC gets instead of every raw reading.

    ``ts_ms`` is the interval's start; ``rejected`` counts the frames the
    sensor's driver refused during it. The statistics are ``None`` when no
    reading came (``count`` 0).
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    sensor: str
    quantity: str
    interval_s: int
    # Hides tuple.count, which nothing calls on a record; the name is the column's on the wire and in SQL.
    count: int  # type: ignore[assignment]
    mean: float | None
    min: float | None
    max: float | None
    trimmed_mean: float | None
    total: float
    rejected: int


class Count(NamedTuple):
    """Objects of a class group that crossed a camera's counting line in one direction, in one interval.

    ``ts_ms`` is the interval's start.
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    camera: str
    line: str
    group: str
    direction: str
    interval_s: int
    # Hides tuple.count, which nothing calls on a record; the name is the column's on the wire and in SQL.
    count: int  # type: ignore[assignment]


class Event(NamedTuple):
    """Something a camera rule saw, with one small JPEG of the best frame (people blurred by default).

    ``x1..y2`` is the object's box in the frame's pixels.
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    camera: str
    rule: str
    label: str
    track_id: int
    score: float
    x1: int
    y1: int
    x2: int
    y2: int
    message: str
    jpeg: bytes


class NodeStatus(NamedTuple):
    """The node's own report: backlog, drops and rejects, as a JSON object in ``body``."""

    ts_ms: int
    tsrc: int
    clock_ms: int
    body: str


class Commissioning(NamedTuple):
    """The node's commissioning record: its self-test's result as a JSON document, signed by the node.

    ``body`` is the JSON text (see ``edge.commissioning``); ``signature`` is the device key's
    signature over ``body`` as UTF-8 and ``chain`` the certificate chain (PEM) that proves whose key
    it is (``provisioning.signing``). Both are empty for a node without an identity: unsigned.
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    body: str
    chain: str
    signature: bytes


class TrackPoint(NamedTuple):
    """One link of a vessel's track log: a fix, a "no fix" heartbeat (``lat``/``lon`` None), or a note.

    ``idx`` numbers the records of one chain from 0 without a hole; each record's hash commits to
    the previous one (``sync.chain``), so a changed, dropped or reordered record is provable.
    A note (a warning delivered or acknowledged on board) carries the vessel's last position, no
    quality figures, and ``note_hi``/``note_lo``: the digest of its text (``sync.chain.note_digest``),
    whose words travel as a :class:`TrackNote`; both are None in a fix or a heartbeat.
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    idx: int
    lat: float | None
    lon: float | None
    speed_kn: float | None = None
    course_deg: float | None = None
    fix: int | None = None
    sats: int | None = None
    hdop: float | None = None
    note_hi: int | None = None
    note_lo: int | None = None


class TrackNote(NamedTuple):
    """The text of the note chained as track record ``idx`` (short canonical JSON, <= 2 KB), archived
    as long as the track: the chain holds only its digest."""

    ts_ms: int
    tsrc: int
    clock_ms: int
    idx: int
    text: str


class TrackSig(NamedTuple):
    """The node's signature over its track chain's hash at record ``idx`` (see ``sync.chain``).

    ``chain_pem`` is the certificate chain that checks it, or empty when unchanged since the
    chain's previous signature (a PEM chain is ~1.5 kB; it travels once per run, not every time).
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    idx: int
    hash: bytes
    signature: bytes
    chain_pem: bytes


class Ais(NamedTuple):
    """One AIS sentence (``!AIVDM``/``!AIVDO``) seen on a GPS's NMEA stream, passed on as it came.

    ``sentence`` is the line without its line ending, checksum included; a message in several
    fragments is several records, in order. ``ts_ms`` is when the node read it.
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    sentence: str


class CommandResult(NamedTuple):
    """A node's answer to a command from the centre (``sync.commands``), on the alarm lane.

    ``command_seq`` is the command's seq; its epoch is the batch's (the node store's epoch, the one
    it was signed for). Not named ``seq``: every stream's table at the centre has a ``seq`` of its
    own, the record's. ``state`` is one of ``sync.commands.RESULT_STATES``: ``delivered`` (verified and
    accepted, about to run), ``applied`` or ``refused``. ``reason`` is a short snake_case reason
    when refused (``expired``, ``unknown_kind``, ``failed``, ``interrupted``, ...), else empty;
    ``details`` JSON text: the kind's result (e.g. ``{"version": ...}``) or the refusal's message.
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    command_seq: int
    state: str
    reason: str
    details: str


class WarningReceipt(NamedTuple):
    """What became of a warning (``sync.warnings.Alert``) on a node, one record per step, on the alarm lane.

    ``identifier`` is the alert's (a local alarm's own sounding: ``local:<device>:<alarm>:<ms>``);
    ``event`` one of ``delivered`` (the node has it), ``sounded`` / ``silenced`` (an output started /
    stopped: ``output`` names it, ``details`` says why it stopped), ``displayed``, ``located`` (a
    vessel that had no fix at delivery has decided with its first one), ``acknowledged``
    (by a person on site), ``cancelled``, ``expired`` (ended unsounded) and ``refused``; ``by`` who
    or what caused it (``centre``, ``alarm:<name>``, ``hand``, ``button:<name>``, ``cli``, ``expiry``).
    ``inside`` is 1 when the node's position was in the alert's area, 0 outside, None unknown (a
    vessel without a fix); ``lat``/``lon`` that position. ``details`` is JSON text.
    """

    ts_ms: int
    tsrc: int
    clock_ms: int
    identifier: str
    event: str
    output: str
    by: str
    inside: int | None
    lat: float | None
    lon: float | None
    details: str
