"""The nodes' commissioning records at the centre: each one's signature judged as it arrives.

A node's self-test leaves a record signed with the device's key (``edge.commissioning``). The
receiver hands every stored batch of the ``commissioning`` stream to :class:`CommissioningCheck`,
which judges each record once and keeps the verdict in ``commissioning_checks``:

- ``valid``: the certificate chain that came with the record leads to the device CA (or, with no
  CA configured, the chain alone: the detail then says "CA not checked"), names the sending device,
  and its key signed the record's JSON exactly as stored;
- ``invalid``: anything else (changed, forged, another CA's device, another device's record), with why;
- ``unsigned``: the node had no identity when it ran the self-test.

Example::

    check = CommissioningCheck(db, ca_cert)      # ca_cert None: the chain alone
    check(batch)                                  # a stored batch of the commissioning stream
    latest(db, "vessel-042")["verdict"]           # 'valid'
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from ioc.db import Database, now_ms
from provisioning import pki
from provisioning.signing import SignatureChecker, SignatureError, signed_at
from sync.records import Commissioning
from sync.wire import Batch

__all__ = ["INVALID", "UNCHECKED", "UNSIGNED", "VALID", "CommissioningCheck", "Verdict", "judge", "latest"]

log = logging.getLogger(__name__)

VALID, INVALID, UNSIGNED = "valid", "invalid", "unsigned"
UNCHECKED = "unchecked"
"""What the API says of a record stored without a verdict (by a receiver without this check)."""


@dataclass(frozen=True)
class Verdict:
    """The centre's judgement of one record: ``verdict`` (valid, invalid, unsigned) and why."""

    verdict: str
    detail: str
    ca_checked: bool


def judge(checker: SignatureChecker, device: str, record: Commissioning) -> Verdict:
    """The verdict on ``device``'s ``record`` (never raises for a bad record: that is a verdict)."""
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
        chain = checker.chain(record.chain.encode(), device)
        checker.check(record.chain.encode(), device, record.body.encode(), record.signature, at_ms)
    except SignatureError as exc:
        return Verdict(INVALID, str(exc), ca_checked)
    except (TypeError, ValueError) as exc:  # e.g. an RSA key: a device key is ECDSA P-256
        return Verdict(INVALID, f"the certificate's key cannot check this signature: {exc}", ca_checked)
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

    def __init__(self, db: Database, ca: x509.Certificate | None) -> None:
        self.db = db
        self.checker = SignatureChecker(ca)

    def __call__(self, batch: Batch) -> None:
        verdicts = [judge(self.checker, batch.device, record) for record in batch.records]
        now = now_ms()
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
    record stored without a verdict.
    """
    rows = db.fetch(
        "SELECT r.device, r.epoch, r.seq, r.ts_ms, r.tsrc, r.received_ms, r.body, c.verdict, c.detail, "
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
    return row
