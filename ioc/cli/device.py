"""``ioc-center device``: the enrolment register (the device ids this centre holds)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from common.clikit import Failed
from common.errors import IocEdgeError
from ioc.cli.shared import ca_option, db_option, operator_name
from ioc.db import Database


@click.group()
def device() -> None:
    """The enrolment register: the device ids this centre holds and the one certificate each may use.
    `ioc-center run --tls` refuses the batches of any other device id (reject reasons not_enrolled
    and revoked), so a signer's credential alone no longer puts a device in service.

    Example: ioc-center device enrol /media/usb/signer-alice/issued --ca /var/lib/ioc/ca
    """


def _certificate_files(paths: tuple[Path, ...]) -> list[Path]:
    """The files of ``paths``: each file, and the ``*.crt`` of each directory."""
    return [f for p in paths for f in (sorted(p.glob("*.crt")) if p.is_dir() else [p])]


@device.command("enrol")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@ca_option
@db_option
@click.option(
    "--replace",
    is_flag=True,
    help="A device id in service gets this certificate instead of its current one (after ioc-edge "
    "provision --rotate); without it, a second certificate for an enrolled device id is refused.",
)
@click.option("--by", default=None, help="Who enrols, recorded with each certificate [default: this user].")
def device_enrol(paths: tuple[Path, ...], ca_dir: Path, url: str, replace: bool, by: str | None) -> None:
    """Enrol device certificates: files (a node's tls/node.crt) or directories of *.crt (a signer
    credential's issued/ the technician brings back). Each is checked against the CA (a device's, from a
    signer of this CA, its path valid, not revoked) and imported into it, for `ca revoke`. A directory
    holding two certificates of one device enrols the older and refuses the newer; with --replace the
    newer ends active.
    Prints one line per certificate; exits 1 when any was refused, naming its file and why.

    Example: ioc-center device enrol /media/usb/signer-alice/issued --ca /var/lib/ioc/ca --db sqlite:///ioc.db
    """
    from ioc.ca import CertificateAuthority
    from ioc.enrolment import Register
    from provisioning import pki

    try:
        authority, register = CertificateAuthority(ca_dir), Register(Database(url))
        certs = [(f, pki.load_certificates(f)[0]) for f in _certificate_files(paths)]
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    if not certs:
        raise Failed(
            f"no certificate (*.crt) in {', '.join(map(str, paths))}: give a signer's issued/ or a node.crt"
        )
    refused = []
    # Per device, oldest first: with --replace, the newest certificate of a device is the one left active.
    for file, cert in sorted(
        certs, key=lambda fc: (pki.common_name(fc[1].subject), fc[1].not_valid_before_utc)
    ):
        device_id, serial = pki.common_name(cert.subject), f"{cert.serial_number:x}"
        try:
            before = register.serial_of(device_id)
            new = register.enrol(cert, authority, replace=replace, by=operator_name() if by is None else by)
            authority.import_certificates([file])
        except IocEdgeError as exc:
            refused.append(f"{file}: {exc}")
            continue
        if not new:
            click.echo(f"{device_id}: serial {serial} enrolled already")
            continue
        instead = f", replacing serial {before:x}" if before is not None else ""
        click.echo(
            f"enrolled {device_id}: serial {serial}, valid until {cert.not_valid_after_utc:%Y-%m-%d}{instead}"
        )
    if refused:
        raise Failed(f"refused {len(refused)} certificate(s):\n" + "\n".join(refused))


@device.command("list")
@db_option
@click.option("--all", "history", is_flag=True, help="Every certificate ever enrolled, not only the latest.")
def device_list(url: str, history: bool) -> None:
    """Print each enrolled device: id, status (active, revoked), serial, signer, valid until, enrolled
    (when, by whom); with --all, its replaced and revoked certificates too, the latest first.

    Example: ioc-center device list --db sqlite:///ioc.db
    """
    from ioc.enrolment import Register

    try:
        entries = Register(Database(url)).entries()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    shown = set()
    for e in entries:
        if e.device in shown and not history:
            continue
        shown.add(e.device)
        until = f"{dt.datetime.fromtimestamp(e.not_after_ms / 1000, dt.UTC):%Y-%m-%d}"
        when = f"{dt.datetime.fromtimestamp(e.enrolled_ms / 1000, dt.UTC):%Y-%m-%d %H:%M}Z"
        click.echo(
            f"{e.device}\t{e.status}\t{e.serial:x}\t{e.signer}\tuntil {until}\t"
            f"enrolled {when} by {e.enrolled_by or '?'}"
        )


@device.command("revoke")
@click.argument("device_id", metavar="DEVICE")
@ca_option
@db_option
def device_revoke(device_id: str, ca_dir: Path, url: str) -> None:
    """Revoke DEVICE (stolen, resold, misbehaving): in the enrolment register, so every receiver refuses
    its batches within 5 s (reject reason revoked) even over a connection already open, and in its
    signer's CRL, so the broker refuses its next handshake once reloaded. Then end the connection it
    may have open: reload the broker, then `ioc-center broker disconnect DEVICE` (in that order, or it
    connects again at once).

    Example: ioc-center device revoke vessel-042 --ca /var/lib/ioc/ca --db sqlite:///ioc.db
    """
    from ioc.ca import CertificateAuthority
    from ioc.enrolment import Register

    try:
        authority = CertificateAuthority(ca_dir)
        revoked = Register(Database(url)).revoke(device_id)
        click.echo(f"revoked {device_id} in the register: serial {revoked.serial:x}")
        in_crl = authority.revoke(device_id)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    serials = ", ".join(f"{c.serial_number:x}" for c in in_crl) or "listed already"
    click.echo(f"revoked {device_id} in its signer's CRL: {serials}")
    click.echo(
        "then: systemctl reload mosquitto && "
        f"ioc-center broker disconnect {device_id} --tls /etc/mosquitto/conf.d --mqtt-port 8884"
    )
