"""``ioc-center track``: the vessels' signed track logs (export at the centre, verify offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from common.clikit import Failed, iso_time_ms
from common.errors import IocEdgeError
from ioc.cli.shared import db_option
from ioc.db import Database
from ioc.track import GAP_S


@click.group()
def track() -> None:
    """The vessels' signed track logs.

    Example: ioc-center track verify vessel-042.track --ca /etc/ioc/ca/ca.pem
    """


@track.command("export")
@click.argument("device")
@click.option(
    "--from", "from_ms", required=True, callback=iso_time_ms, help="Start, ISO 8601 (no zone: UTC)."
)
@click.option("--to", "to_ms", required=True, callback=iso_time_ms, help="End (exclusive), ISO 8601.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option("--chain", default=None, help="The chain (the node's store epoch); default: the newest.")
@db_option
def track_export(device: str, from_ms: int, to_ms: int, out: Path, chain: str | None, url: str) -> None:
    """Write DEVICE's track as the centre stored it, between --from and --to, into one file
    that `ioc-center track verify` checks offline (as `ioc-edge track export` on the node does):
    records, hashes, signatures, the device's certificates and the notes' texts (warnings received
    and acknowledged on board). The range widens to the signatures around it.

    Example: ioc-center track export vessel-042 --from 2026-11-01 --to 2026-11-08 --out week.track
    """
    from ioc.track import export_chain

    if from_ms >= to_ms:
        raise Failed("--from must be before --to")
    try:
        header = export_chain(Database(url), device, from_ms, to_ms, out, chain)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(_exported(out, header))


def _exported(out: Path, header: dict[str, Any]) -> str:
    last = header["first_idx"] + header["records"] - 1
    lines = [
        f"{out}: {header['records']} records ({header['first_idx']}..{last}) of chain {header['chain']}, "
        f"{len(header['signatures'])} signatures"
        + (f", {len(header['notes'])} notes" if header["notes"] else "")
    ]
    if header["unsigned"]:
        lines.append(f"note: the newest {header['unsigned']} records of the range are not signed yet")
    return "\n".join(lines)


@track.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--ca",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The IOC's CA certificate (PEM) the device's certificate must chain to.",
)
@click.option(
    "--crl",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The CRLs (the CA directory's devices-crl.pem): a signature made at or after its "
    "certificate's revocation, by the time it claims, does not verify.",
)
@click.option(
    "--gap-s",
    type=click.FloatRange(2, 86_400),
    default=GAP_S,
    show_default=True,
    help="Longer between two records is a gap, as `ioc-center run --track-gap-s` flags it.",
)
@click.option("--strict", is_flag=True, help="Exit 3 when the track has gaps (it verifies otherwise).")
def track_verify(file: Path, ca: Path, crl: Path | None, gap_s: float, strict: bool) -> None:
    """Check an export of `ioc-edge track export` offline: every record, the chain, the signatures
    (the certificates as a path to the CA, at each signature's time; their revocation with --crl),
    and list the gaps: the node off for longer than --gap-s, or its time going back.

    Prints a summary and exits 0 (gaps are listed: they are not a forgery; with --strict they exit
    3), or names the first record that does not verify and exits 1.

    Example: ioc-center track verify vessel-042.track --ca ca/ca.crt --crl ca/devices-crl.pem
    """
    from provisioning import pki
    from provisioning.revocation import CrlFile
    from sync.trackfile import verify

    try:
        crls = CrlFile(crl) if crl is not None else None
        report = verify(file, pki.load_certificates(ca)[0], crls, gap_s)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(report.summary())
    if strict and report.gaps:
        raise SystemExit(3)  # 2 is click's usage error
