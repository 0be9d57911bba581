"""The nodes' commissioning records at the centre: each one's signature judged as it arrives.

A node's self-test leaves a record signed with the device's key (``edge.commissioning``). The
receiver hands every stored batch of the ``commissioning`` stream to :class:`CommissioningCheck`,
which judges each record once and keeps the verdict in ``commissioning_checks``:

- ``valid``: the certificate chain that came with the record leads to the device CA (or, with no
  CA configured, the chain alone: the detail then says "CA not checked"), names the sending device,
  and its key signed the record's JSON exactly as stored;
- ``invalid``: anything else (changed, forged, another CA's device, another device's record), with why;
- ``unsigned``: the node had no identity when it ran the self-test.

The time shown for a record is the one signed in it (``signed_ms``): the record's wire times
(``ts_ms``, ``clock_ms``) are not signed, so a replayed old self-test would show as run now.
A record whose wire times differ from the signed ones by more than :data:`TIME_TOLERANCE_MS`
gets a ``time_mismatch`` saying so.

Example::

    check = CommissioningCheck(db, ca_cert)      # ca_cert None: the chain alone
    check(batch)                                  # a stored batch of the commissioning stream
    latest(db, "vessel-042")["verdict"]           # 'valid'
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from cryptography import x509

from ioc.db import Database, now_ms
from provisioning import pki
from provisioning.revocation import CrlFile
from provisioning.signing import Enrolled, SignatureChecker, SignatureError, signed_at
from sync.records import Commissioning
from sync.wire import Batch

__all__ = [
    "INVALID", "TIME_TOLERANCE_MS", "UNCHECKED", "UNSIGNED", "VALID", "CommissioningCheck", "Verdict",
    "judge", "latest",
]  # fmt: skip

log = logging.getLogger(__name__)

VALID, INVALID, UNSIGNED = "valid", "invalid", "unsigned"
UNCHECKED = "unchecked"
"""What the API says of a record stored without a verdict (by a receiver without this check)."""
TIME_TOLERANCE_MS = 1000
"""The node writes the same times on the wire and in the signed record: any difference is a replay
or a changed record (a second's slack for a future node that rounds one of them)."""


@dataclass(frozen=True)
class Verdict:
    """The centre's judgement of one record: ``verdict`` (valid, invalid, unsigned) and why."""

    verdict: str
    detail: str
    ca_checked: bool


def judge(
    checker: SignatureChecker,
    device: str,
    record: Commissioning,
    received_ms: int | None = None,
    enrolled: list[Enrolled] | None = None,
) -> Verdict:
    """The verdict on ``device``'s ``record`` (never raises for a bad record: that is a verdict);
    ``received_ms``: when the centre received it (refused if after a revocation of its certificate);
    ``enrolled``: the device's certificates in the enrolment register (None: no register)."""
    if not record.signature and not record.chain:
        return Verdict(UNSIGNED, "not signed: the node had no identity (ioc-edge provision)", False)
    ca_checked = checker.ca is not None
    try:
        report = json.loads(record.body)
    except ValueError:
        report = None
    # The certificate's validity is judged at the node's wall clock when it signed, as signed (not the
    # GPS time: a replayed capture's can be years old); a clock never set proves nothing.
    signed_clock = report.get("clock_ms") if isinstance(report, dict) else None
    at_ms = signed_at(signed_clock) if isinstance(signed_clock, int) else None
    try:
        chain = checker.check(
            record.chain.encode(),
            device,
            record.body.encode(),
            record.signature,
            at_ms,
            received_ms,
            enrolled,
        )
    except SignatureError as exc:
        return Verdict(INVALID, str(exc), ca_checked)
    if report is None:
        return Verdict(INVALID, "signed, but the record is not JSON", ca_checked)
    named = report.get("device") if isinstance(report, dict) else None
    if named != device:
        return Verdict(INVALID, f"the signed record names device {named!r}, not {device!r}", ca_checked)
    signer = pki.common_name(chain[1].subject) if len(chain) > 1 else "none"
    detail = f"signed by {device}'s key (certificate from signer {signer})"
    if not ca_checked:
        detail += "; CA not checked (no CA configured: ioc-center run --tls DIR)"
    if at_ms is None:
        detail += "; the node's clock was not set: certificate validity not checked"
    return Verdict(VALID, detail, ca_checked)


class CommissioningCheck:
    """Judges each commissioning record of a stored batch and keeps the verdict (the first one stands).

    Called by the receiver after the batch is stored and before its ack, so a verdict that cannot
    be written leaves the batch unacked: the node sends it again and it is judged again.

    Example::

        receiver_checks = {"commissioning": CommissioningCheck(db, ca_cert)}
    """

    stream = "commissioning"

    def __init__(
        self,
        db: Database,
        ca: x509.Certificate | None,
        *,
        crls: CrlFile | None = None,
        enrolled: Callable[[str], list[Enrolled]] | None = None,
    ) -> None:
        self.db = db
        self.checker = SignatureChecker(ca, crls=crls)
        self.enrolled = enrolled

    def __call__(self, batch: Batch) -> None:
        now = now_ms()  # the batch was stored just now: when it was received
        enrolled = self.enrolled(batch.device) if self.enrolled is not None else None
        # The receiver calls this with the commissioning stream's batches only: Commissioning records.
        records = cast(list[Commissioning], batch.records)
        verdicts = [judge(self.checker, batch.device, r, now, enrolled) for r in records]
        rows = [
            (batch.device, batch.epoch, seq, v.verdict, v.detail, int(v.ca_checked), now)
            for seq, v in zip(batch.seqs, verdicts, strict=True)
        ]
        with self.db.transaction() as cur:
            cur.executemany(
                "INSERT INTO commissioning_checks (device, epoch, seq, verdict, detail, ca_checked, "
                "checked_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
        for seq, v in zip(batch.seqs, verdicts, strict=True):
            level = logging.INFO if v.verdict == VALID else logging.WARNING
            log.log(
                level, "event=commissioning device=%s seq=%d verdict=%s detail=%s", batch.device, seq,
                v.verdict, v.detail,
            )  # fmt: skip


def latest(db: Database, device: str) -> dict[str, Any] | None:
    """``device``'s latest commissioning record (the last to arrive) with its verdict; None if none.

    ``report`` is the record's JSON (None when it is not JSON); ``verdict`` is ``unchecked`` for a
    record stored without a verdict; ``signed_ms`` the self-test's time as signed (None when the
    record is not a signed report) and ``time_mismatch`` why its wire times are not the signed ones.
    """
    rows = db.fetch(
        "SELECT r.device, r.epoch, r.seq, r.ts_ms, r.tsrc, r.clock_ms, r.received_ms, r.body, c.verdict, "
        "c.detail, "
        "c.ca_checked, c.checked_ms FROM rec_commissioning r LEFT JOIN commissioning_checks c "
        "ON c.device = r.device AND c.epoch = r.epoch AND c.seq = r.seq "
        "WHERE r.device = ? ORDER BY r.received_ms DESC, r.seq DESC LIMIT 1",
        [device],
    )
    if not rows:
        return None
    row = rows[0]
    try:
        report = json.loads(row.pop("body"))
    except ValueError:
        report = None
    row["verdict"] = row["verdict"] or UNCHECKED
    row["detail"] = row["detail"] or "stored without a verdict (a receiver that does not check signatures)"
    row["ca_checked"] = bool(row["ca_checked"])
    row["report"] = report if isinstance(report, dict) else None
    wire = {"time_ms": row["ts_ms"], "clock_ms": row.pop("clock_ms")}
    row.update(_signed_times(row["report"], row["verdict"], wire))
    return row


def _signed_times(report: dict[str, Any] | None, verdict: str, wire: dict[str, int]) -> dict[str, Any]:
    """``signed_ms`` and ``time_mismatch`` of a record (see :func:`latest`); ``wire``: its unsigned
    ``time_ms`` and ``clock_ms``."""
    given = {k: (report or {}).get(k) for k in wire}
    signed = {k: v for k, v in given.items() if type(v) is int}
    if verdict in (UNSIGNED, UNCHECKED) or len(signed) < len(wire):
        return {"signed_ms": None, "time_mismatch": None}
    off = [k for k in wire if abs(wire[k] - signed[k]) > TIME_TOLERANCE_MS]
    mismatch = None
    if off:
        mismatch = "; ".join(f"{k} {_when(wire[k])} on the wire, {_when(signed[k])} signed" for k in off) + (
            ": the record was re-sent with new times (a replay of an old self-test?)"
        )
    return {"signed_ms": signed["time_ms"], "time_mismatch": mismatch}


def _when(ms: int) -> str:
    try:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # a time no calendar holds: say it as it came
        return f"{ms} ms"
