"""The IOC database's schema as numbered migrations, applied in order at start.

Each migration is a function of the :class:`Dialect` that returns its SQL
statements, so one list serves SQLite and PostgreSQL: the statements differ
only in type names. ``schema_version`` records what was applied; a migration
once released is never edited (a change is a new migration), because a
centre's database already ran the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sync.wire import STREAMS


@dataclass(frozen=True)
class Dialect:
    """Column types of one database engine, for column definitions (``f"device {d.text} NOT NULL"``)."""

    name: str
    int: str
    real: str
    text: str
    blob: str


SQLITE = Dialect("sqlite", "INTEGER", "REAL", "TEXT", "BLOB")
# Text compared byte by byte, as SQLite does: the same order on both engines whatever the server's
# locale (and btree indexes serve LIKE 'prefix%'). Not a type name: fit for column definitions only.
POSTGRESQL = Dialect("postgresql", "BIGINT", "DOUBLE PRECISION", 'TEXT COLLATE "C"', "BYTEA")


def stream_tables(d: Dialect, names: tuple[str, ...], omit: tuple[str, ...] = ()) -> list[str]:
    """One table per synced stream keyed on (device, epoch, seq), so the database refuses duplicates.

    A migration names its streams rather than taking every stream of ``sync.wire``: a released
    migration must give the same statements for ever, and a later stream gets its own migration.
    For the same reason it names in ``omit`` the columns a later migration added to a stream.
    """
    kinds = {"int": d.int, "fixed": d.real, "text": d.text, "blob": d.blob}
    statements = []
    for stream in (STREAMS[name] for name in names):
        # Column names quoted: one is an SQL keyword ("group").
        columns = ", ".join(f'"{c.name}" {kinds[c.kind]}' for c in stream.columns if c.name not in omit)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS rec_{stream.name} (device {d.text} NOT NULL, "
            f"epoch {d.text} NOT NULL, seq {d.int} NOT NULL, {columns}, received_ms {d.int} NOT NULL, "
            "PRIMARY KEY (device, epoch, seq))"
        )
    return statements


def stream_indexes(names: tuple[str, ...]) -> list[str]:
    """Indexes for the dashboard: time ranges per device, and what arrived since (the live stream)."""
    statements = []
    for name in names:
        statements += [
            f"CREATE INDEX IF NOT EXISTS rec_{name}_device_ts ON rec_{name} (device, ts_ms)",
            f"CREATE INDEX IF NOT EXISTS rec_{name}_ts ON rec_{name} (ts_ms)",
            f"CREATE INDEX IF NOT EXISTS rec_{name}_received ON rec_{name} (received_ms)",
        ]
    return statements


_FIRST_STREAMS = ("alarm", "position", "status", "summary", "count", "event", "reading")
"""The streams of migrations 1 and 3."""


def _records(d: Dialect) -> list[str]:
    return stream_tables(d, _FIRST_STREAMS) + [
        f"CREATE TABLE IF NOT EXISTS epochs (device {d.text} NOT NULL, epoch {d.text} NOT NULL, "
        f"first_seen_ms {d.int} NOT NULL, PRIMARY KEY (device, epoch))",
        f"CREATE TABLE IF NOT EXISTS devices (device {d.text} PRIMARY KEY, last_seen_ms {d.int} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS rejects (reason {d.text} PRIMARY KEY, count {d.int} NOT NULL)",
    ]


def _web_access(d: Dialect) -> list[str]:
    """The dashboard's users, sign-in sessions, API tokens and alarm acknowledgements.

    Sessions live here rather than in one process's memory, so that several
    ``ioc-center`` processes can serve the same centre. Session ids and tokens
    are stored as SHA-256 hashes: a copy of the database signs nobody in.
    An acknowledgement is keyed on the alarm's raise record.
    """
    return [
        f"CREATE TABLE IF NOT EXISTS users (username {d.text} PRIMARY KEY, role {d.text} NOT NULL, "
        f"password_hash {d.text} NOT NULL, created_ms {d.int} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS sessions (id_hash {d.text} PRIMARY KEY, username {d.text} NOT NULL, "
        f"created_ms {d.int} NOT NULL, expires_ms {d.int} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username)",
        f"CREATE TABLE IF NOT EXISTS api_tokens (token_hash {d.text} PRIMARY KEY, token_id {d.text} NOT NULL "
        f"UNIQUE, username {d.text} NOT NULL, label {d.text} NOT NULL, created_ms {d.int} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS alarm_acks (device {d.text} NOT NULL, epoch {d.text} NOT NULL, "
        f"seq {d.int} NOT NULL, acked_by {d.text} NOT NULL, acked_ms {d.int} NOT NULL, "
        f"note {d.text} NOT NULL, PRIMARY KEY (device, epoch, seq))",
        "CREATE INDEX IF NOT EXISTS alarm_acks_acked_ms ON alarm_acks (acked_ms)",
    ]


def _web_indexes(d: Dialect) -> list[str]:
    """Indexes for the dashboard over the first streams (``reading`` is not synced by default)."""
    statements = stream_indexes(tuple(n for n in _FIRST_STREAMS if STREAMS[n].synced))
    return statements + [
        # Whether a raise is still open looks for a later clear of the same alarm.
        "CREATE INDEX IF NOT EXISTS rec_alarm_identity ON rec_alarm (device, source, kind, state, ts_ms)",
        # A node's latest status is the one that arrived last (its clock may have been wrong).
        "CREATE INDEX IF NOT EXISTS rec_status_device_received ON rec_status (device, received_ms)",
    ]


def _commissioning(d: Dialect) -> list[str]:
    """The nodes' commissioning records, and the centre's verdict on each record's signature.

    The verdict is reached once, as the record arrives (``ioc.commissioning``): ``valid``,
    ``invalid`` or ``unsigned``, with why, and whether the chain was checked against the CA.
    """
    return (
        stream_tables(d, ("commissioning",))
        + stream_indexes(("commissioning",))
        + [
            "CREATE INDEX IF NOT EXISTS rec_commissioning_device_received "
            "ON rec_commissioning (device, received_ms)",
            f"CREATE TABLE IF NOT EXISTS commissioning_checks (device {d.text} NOT NULL, "
            f"epoch {d.text} NOT NULL, seq {d.int} NOT NULL, verdict {d.text} NOT NULL, "
            f"detail {d.text} NOT NULL, ca_checked {d.int} NOT NULL, checked_ms {d.int} NOT NULL, "
            "PRIMARY KEY (device, epoch, seq))",
        ]
    )


def _track(d: Dialect) -> list[str]:
    """The vessels' hash-chained track logs, and the centre's view of each chain (``ioc.track``).

    ``track_chains``: per device and chain (the node's store epoch), how far the chain has been
    followed (``last_idx``, ``last_hash``, the time of that record) and proven by a signature
    (``signed_idx``), and the certificate chain of its signatures. ``track_flags``: what an
    operator must see: ``break``, ``gap``, ``bad_signature``, ``new_chain``, one per record and kind.
    """
    return (
        stream_tables(d, ("track", "track_sig"), omit=("note_hi", "note_lo"))  # added by migration 13
        + stream_indexes(("track", "track_sig"))
        + [
            "CREATE INDEX IF NOT EXISTS rec_track_chain_idx ON rec_track (device, epoch, idx)",
            "CREATE INDEX IF NOT EXISTS rec_track_sig_chain_idx ON rec_track_sig (device, epoch, idx)",
            f"CREATE TABLE IF NOT EXISTS track_chains (device {d.text} NOT NULL, epoch {d.text} NOT NULL, "
            f"last_idx {d.int} NOT NULL, last_hash {d.blob} NOT NULL, last_ts_ms {d.int}, "
            f"signed_idx {d.int} NOT NULL, chain_pem {d.blob} NOT NULL, ca_checked {d.int} NOT NULL, "
            f"first_seen_ms {d.int} NOT NULL, updated_ms {d.int} NOT NULL, PRIMARY KEY (device, epoch))",
            f"CREATE TABLE IF NOT EXISTS track_flags (device {d.text} NOT NULL, epoch {d.text} NOT NULL, "
            f"idx {d.int} NOT NULL, kind {d.text} NOT NULL, ts_ms {d.int}, detail {d.text} NOT NULL, "
            f"flagged_ms {d.int} NOT NULL, PRIMARY KEY (device, epoch, idx, kind))",
            "CREATE INDEX IF NOT EXISTS track_flags_device ON track_flags (device, flagged_ms)",
        ]
    )


def _ais(d: Dialect) -> list[str]:
    """AIS sentences the vessels' receivers heard, stored as they came (the IOC does not decode them)."""
    return stream_tables(d, ("ais",)) + stream_indexes(("ais",))


def _signin_failures(d: Dialect) -> list[str]:
    """Failed sign-ins counted per user name and per client address (``ioc.web.lockout``).

    ``scope`` is ``user`` or ``address``; ``locked_until_ms`` 0 while below the threshold. In the
    database, so that every ``ioc-center`` process of the centre counts the same failures.
    """
    return [
        f"CREATE TABLE IF NOT EXISTS signin_failures (scope {d.text} NOT NULL, subject {d.text} NOT NULL, "
        f"failures {d.int} NOT NULL, last_failed_ms {d.int} NOT NULL, locked_until_ms {d.int} NOT NULL, "
        "PRIMARY KEY (scope, subject))"
    ]


def _enrolment(d: Dialect) -> list[str]:
    """The enrolment register (``ioc.enrolment``): which device ids exist and which certificate each holds.

    One row per certificate ever enrolled, keyed on its issuer and serial (hex). ``status`` is
    ``active``, ``revoked`` or ``replaced``; the unique index lets a device id hold one active
    certificate at a time, whatever two operators do at once.
    """
    return [
        f"CREATE TABLE IF NOT EXISTS enrolments (device {d.text} NOT NULL, serial {d.text} NOT NULL, "
        f"issuer {d.text} NOT NULL, signer {d.text} NOT NULL, not_before_ms {d.int} NOT NULL, "
        f"not_after_ms {d.int} NOT NULL, status {d.text} NOT NULL, enrolled_ms {d.int} NOT NULL, "
        f"revoked_ms {d.int}, enrolled_by {d.text} NOT NULL, PRIMARY KEY (issuer, serial))",
        "CREATE UNIQUE INDEX IF NOT EXISTS enrolments_active ON enrolments (device) WHERE status = 'active'",
        "CREATE INDEX IF NOT EXISTS enrolments_device ON enrolments (device, enrolled_ms)",
    ]


def _commands(d: Dialect) -> list[str]:
    """Commands to the nodes (``ioc.commands``), the dispatcher's lease, and the nodes' results.

    ``commands``: one row per command, keyed on (device, seq): what was issued, by whom, until when,
    and where it stands (``state``: queued, sent, delivered, applied, refused, expired; ``reason``
    and ``details`` from the node's result). ``epoch`` is the store epoch the command was last
    signed for (none until first sent): a result of another epoch is not its answer.
    ``sent_count``, ``next_try_ms`` and ``last_sent_ms`` pace the dispatcher's retries.
    ``leases``: who may act alone (the one dispatcher among several receivers) and until when.
    """
    return (
        stream_tables(d, ("command_result",))
        + stream_indexes(("command_result",))
        + [
            f"CREATE TABLE IF NOT EXISTS commands (device {d.text} NOT NULL, seq {d.int} NOT NULL, "
            f"kind {d.text} NOT NULL, body {d.text} NOT NULL, issuer {d.text} NOT NULL, "
            f"issued_ms {d.int} NOT NULL, expires_ms {d.int} NOT NULL, state {d.text} NOT NULL, "
            f"reason {d.text} NOT NULL, details {d.text} NOT NULL, epoch {d.text}, "
            f"sent_count {d.int} NOT NULL, next_try_ms {d.int} NOT NULL, last_sent_ms {d.int}, "
            f"result_ms {d.int}, PRIMARY KEY (device, seq))",
            # The dispatcher's every tick: what is waiting and due.
            "CREATE INDEX IF NOT EXISTS commands_due ON commands (state, next_try_ms)",
            f"CREATE TABLE IF NOT EXISTS leases (name {d.text} PRIMARY KEY, holder {d.text} NOT NULL, "
            f"until_ms {d.int} NOT NULL)",
        ]
    )


def _labels_audit(d: Dialect) -> list[str]:
    """The nodes' labels (``ioc.labels``) and the audit log (``ioc.audit``).

    ``node_labels``: a label per (device, key, source), ``source`` ``node`` (what its status last
    reported) or ``centre`` (an operator's, which wins over the node's for the same key).
    ``label_reports``: the status (epoch, seq) whose labels are held, so that an older status
    arriving late never undoes a newer one. ``audit_log``: who did what to whom and with what
    result; ``command_seq`` ties a command's entry to its command (``target`` is its device).
    """
    # The engines number rows each their own way; RETURNING id gives the number on both.
    identity = "GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    audit_id = "INTEGER PRIMARY KEY" if d.name == "sqlite" else f"BIGINT {identity}"
    return [
        f"CREATE TABLE IF NOT EXISTS node_labels (device {d.text} NOT NULL, key {d.text} NOT NULL, "
        f"value {d.text} NOT NULL, source {d.text} NOT NULL, set_ms {d.int} NOT NULL, "
        "PRIMARY KEY (device, key, source))",
        # Selectors look a label up by its key and value.
        "CREATE INDEX IF NOT EXISTS node_labels_key ON node_labels (key, value)",
        f"CREATE TABLE IF NOT EXISTS label_reports (device {d.text} PRIMARY KEY, epoch {d.text} NOT NULL, "
        f"seq {d.int} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS audit_log (id {audit_id}, at_ms {d.int} NOT NULL, "
        f"username {d.text} NOT NULL, action {d.text} NOT NULL, target {d.text} NOT NULL, "
        f"details {d.text} NOT NULL, result {d.text} NOT NULL, command_seq {d.int})",
        "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at_ms)",
        "CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target, command_seq)",
    ]


def _desired_configs(d: Dialect) -> list[str]:
    """Desired configuration (``ioc.desired``): what each node should run and what it reports.

    ``desired_configs``: one row per device, the config it should run (``version`` the sha256 of
    ``text``), who made it desired and when, and the ``config`` command that pushed it (none when
    adopted from the node). ``reported_configs``: one row per device, the version its newest status
    reports (``reported_ms`` by the node's clock) and when the centre saw it. ``config_texts``: the
    texts the nodes sent back with their config results, by device and version.
    """
    return [
        f"CREATE TABLE IF NOT EXISTS desired_configs (device {d.text} PRIMARY KEY, "
        f"version {d.text} NOT NULL, text {d.text} NOT NULL, issuer {d.text} NOT NULL, "
        f"issued_ms {d.int} NOT NULL, command_seq {d.int})",
        f"CREATE TABLE IF NOT EXISTS reported_configs (device {d.text} PRIMARY KEY, "
        f"version {d.text} NOT NULL, reported_ms {d.int} NOT NULL, seen_ms {d.int} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS config_texts (device {d.text} NOT NULL, version {d.text} NOT NULL, "
        f"text {d.text} NOT NULL, seen_ms {d.int} NOT NULL, PRIMARY KEY (device, version))",
    ]


def _warnings(d: Dialect) -> list[str]:
    """Warnings to the field (``ioc.warnings``): what was issued, to whom, and what became of it there.

    ``warnings``: one row per CAP message (an Alert, or an Update or Cancel of one, ``refers_to`` the
    original's identifier), with the CAP fields a list shows (the first info's), the alert's JSON,
    the selector, issuer, time, ``ack_within_s`` and ``state`` (``active``, ``updated``, ``cancelled``;
    a Cancel's own: ``sent``; ``local`` for a node's own sounding, created from its first receipt,
    ``origin`` ``local`` and ``device`` its node). ``warning_targets``: per warning and device, why
    it was targeted, its ``warning`` command's seq, and its receipts: the times of delivered, first
    sounded, last silenced (and why), displayed, acknowledged (and by whom), cancelled, expired,
    refused (and why), inside/outside with the position, and per output (JSON). ``node_places``:
    where each node reports it is (a station's fixed ``lat``/``lon``; ``mobile`` a vessel), as of
    its newest status by the node's clock. ``rec_warning_receipt``: the receipts as the nodes sent them.
    """
    return (
        stream_tables(d, ("warning_receipt",))
        + stream_indexes(("warning_receipt",))
        + [
            "CREATE INDEX IF NOT EXISTS rec_warning_receipt_identifier "
            "ON rec_warning_receipt (identifier, device)",
            f"CREATE TABLE IF NOT EXISTS warnings (identifier {d.text} PRIMARY KEY, "
            f"sender {d.text} NOT NULL, sent_ms {d.int} NOT NULL, status {d.text} NOT NULL, "
            f"msg_type {d.text} NOT NULL, refers_to {d.text} NOT NULL, event {d.text} NOT NULL, "
            f"urgency {d.text} NOT NULL, severity {d.text} NOT NULL, certainty {d.text} NOT NULL, "
            f"headline {d.text} NOT NULL, area_desc {d.text} NOT NULL, pattern {d.text} NOT NULL, "
            f"expires_ms {d.int}, alert {d.text} NOT NULL, selector {d.text} NOT NULL, "
            f"issuer {d.text} NOT NULL, issued_ms {d.int} NOT NULL, ack_within_s {d.int} NOT NULL, "
            f"state {d.text} NOT NULL, changed_ms {d.int}, changed_by {d.text} NOT NULL, "
            f"superseded_by {d.text} NOT NULL, origin {d.text} NOT NULL, device {d.text} NOT NULL, "
            f"targets {d.int} NOT NULL)",
            "CREATE INDEX IF NOT EXISTS warnings_issued ON warnings (issued_ms)",
            f"CREATE TABLE IF NOT EXISTS warning_targets (identifier {d.text} NOT NULL, "
            f"device {d.text} NOT NULL, why {d.text} NOT NULL, command_seq {d.int}, "
            f"delivered_ms {d.int}, sounded_ms {d.int}, silenced_ms {d.int}, silenced_why {d.text} NOT NULL, "
            f"displayed_ms {d.int}, acknowledged_ms {d.int}, acknowledged_by {d.text} NOT NULL, "
            f"cancelled_ms {d.int}, expired_ms {d.int}, refused_ms {d.int}, refused_why {d.text} NOT NULL, "
            f"inside {d.int}, lat {d.real}, lon {d.real}, position_ms {d.int}, outputs {d.text} NOT NULL, "
            f"receipt_ms {d.int}, PRIMARY KEY (identifier, device))",
            "CREATE INDEX IF NOT EXISTS warning_targets_device ON warning_targets (device)",
            f"CREATE TABLE IF NOT EXISTS node_places (device {d.text} PRIMARY KEY, lat {d.real}, "
            f"lon {d.real}, mobile {d.int} NOT NULL, reported_ms {d.int} NOT NULL, seen_ms {d.int} NOT NULL)",
        ]
    )


def _track_notes(d: Dialect) -> list[str]:
    """A vessel's track notes (issue 16: a warning delivered or acknowledged on board): the digest
    columns of ``rec_track`` (``note_hi``, ``note_lo``: NULL in a fix) and ``rec_track_note``, the
    notes' texts, looked up by chain and idx for the centre's track export."""
    return (
        [f'ALTER TABLE rec_track ADD COLUMN "{c}" {d.int}' for c in ("note_hi", "note_lo")]
        + stream_tables(d, ("track_note",))
        + stream_indexes(("track_note",))
        + ["CREATE INDEX IF NOT EXISTS rec_track_note_chain_idx ON rec_track_note (device, epoch, idx)"]
    )


Migration = Callable[[Dialect], list[str]]

MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "records", _records),
    (2, "web_access", _web_access),
    (3, "web_indexes", _web_indexes),
    (4, "track", _track),
    (5, "commissioning", _commissioning),
    (6, "ais", _ais),
    (7, "signin_failures", _signin_failures),
    (8, "enrolment", _enrolment),
    (9, "commands", _commands),
    (10, "desired_configs", _desired_configs),
    (11, "labels_audit", _labels_audit),
    (12, "warnings", _warnings),
    (13, "track_notes", _track_notes),
]
"""(version, name, statements): append only, versions increasing."""
