"""``ioc-center ca``: the IOC's certificate authority (signers, command signers, revocation)."""

from __future__ import annotations

from pathlib import Path

import click

from common.clikit import Failed
from common.errors import IocEdgeError
from ioc.cli.shared import ca_option


@click.group()
def ca() -> None:
    """The IOC's certificate authority: signers for technicians, revocation of devices.

    Example: ioc-center ca init /var/lib/ioc/ca --org "Hue IOC"
    """


@ca.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--org", default="IOC", show_default=True, help="Organisation named in every certificate.")
@click.option(
    "--days", type=click.IntRange(365, 36500), default=20 * 365, show_default=True, help="CA validity."
)
def ca_init(directory: Path, org: str, days: int) -> None:
    """Create the CA in DIRECTORY (keys 0600): the device CA, the centre CA, empty CRLs. Never overwrites.

    Example: ioc-center ca init /var/lib/ioc/ca --org "Hue IOC"
    """
    from ioc.ca import CertificateAuthority

    try:
        authority = CertificateAuthority.create(directory, org, days)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"CA created in {authority.path}; next: ioc-center ca issue-signer NAME --ca {authority.path}")


@ca.command("issue-signer")
@click.argument("name")
@ca_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Credential directory [default: CA/signers/NAME].",
)
@click.option(
    "--days", type=click.IntRange(1, 365), default=30, show_default=True, help="Days it may sign devices."
)
@click.option(
    "--device-days",
    type=click.IntRange(1, 3650),
    default=3 * 365,
    show_default=True,
    help="Longest device validity.",
)
def ca_issue_signer(name: str, ca_dir: Path, out: Path | None, days: int, device_days: int) -> None:
    """Issue technician NAME a signing credential (a directory to carry to the field; its key 0600).

    It certifies devices for --days; the IOC keeps a copy to sign its revocation list.

    Example: ioc-center ca issue-signer alice --out /media/usb/signer-alice
    """
    from ioc.ca import CertificateAuthority

    try:
        where = CertificateAuthority(ca_dir).issue_signer(name, out, days, device_days)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(
        f"signer {name}: {where} (signs for {days} days); on the device: ioc-edge provision --signer {where}"
    )
    # Its (empty) CRL is new in the broker's file: without it the broker refuses the signer's devices.
    click.echo("reload the broker before its devices connect: systemctl reload mosquitto")


@ca.command("command-signer")
@click.argument("name")
@ca_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for NAME.key (0600) and NAME.crt.",
)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True, help="Validity.")
@click.option(
    "--warnings",
    is_flag=True,
    help="A warning signer instead: the credential that alone signs warnings (sirens, displays); "
    "a command signer cannot, and it signs nothing else.",
)
def ca_command_signer(name: str, ca_dir: Path, out: Path, days: int, warnings: bool) -> None:
    """Issue the centre's command-signing key and certificate: nodes run only commands it signs.

    Example: ioc-center ca command-signer centre --out /etc/ioc --ca /var/lib/ioc/ca
    (and with --warnings, the warning signer: ioc-center ca command-signer centre-warnings --warnings ...)
    """
    from ioc.ca import CertificateAuthority
    from provisioning.commands import COMMAND_SIGNER, WARNING_SIGNER

    purpose = WARNING_SIGNER if warnings else COMMAND_SIGNER
    try:
        key, cert = CertificateAuthority(ca_dir).issue_command_signer(name, out, days, purpose)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    option = "--warning" if warnings else "--command"
    click.echo(f"{purpose.what.removeprefix('a ')} {name}: {key} (0600), {cert} (valid {days} days)")
    click.echo(f"the dispatcher signs with it: ioc-center run {option}-key {key} {option}-cert {cert} ...")


@ca.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@ca_option
def ca_import(paths: tuple[Path, ...], ca_dir: Path) -> None:
    """Register device certificates signed in the field (files, or a credential's issued/ directory).

    Example: ioc-center ca import /media/usb/signer-alice/issued
    """
    from ioc.ca import CertificateAuthority

    try:
        added = CertificateAuthority(ca_dir).import_certificates(list(paths))
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"imported {len(added)} certificate(s)")


@ca.command("revoke")
@click.argument("device")
@ca_option
def ca_revoke(device: str, ca_dir: Path) -> None:
    """Revoke every certificate of DEVICE: the broker refuses it once reloaded (SIGHUP).

    Example: ioc-center ca revoke vessel-042 && systemctl reload mosquitto
    """
    from ioc.ca import CertificateAuthority

    try:
        authority = CertificateAuthority(ca_dir)
        revoked = authority.revoke(device)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    for cert in revoked:
        click.echo(f"revoked {device}: serial {cert.serial_number:x}")
    if not revoked:
        click.echo(f"{device}: already revoked")
    click.echo(f"CRL: {authority.devices_crl_path}; reload the broker: systemctl reload mosquitto")


@ca.command("revoke-signer")
@click.argument("name")
@ca_option
def ca_revoke_signer(name: str, ca_dir: Path) -> None:
    """Revoke signer NAME (a lost or stolen credential): once the broker is reloaded (SIGHUP) it
    refuses every device the credential certified, including any a thief made with it. Prints the
    devices known to need provisioning again with another signer.

    Example: ioc-center ca revoke-signer alice && systemctl reload mosquitto
    """
    from ioc.ca import CertificateAuthority

    try:
        devices = CertificateAuthority(ca_dir).revoke_signer(name)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"revoked signer {name}; reload the broker: systemctl reload mosquitto")
    if devices:
        click.echo(f"provision again with another signer (ioc-edge provision --rotate): {', '.join(devices)}")
    else:
        click.echo(f"no device known to be certified by {name} (ioc-center ca import its issued/ to know)")


@ca.command("crl")
@ca_option
def ca_crl(ca_dir: Path) -> None:
    """Sign every revocation list again (each is valid a year; the broker refuses all once it expires).

    Example: ioc-center ca crl --ca /var/lib/ioc/ca
    """
    from ioc.ca import CRL_DAYS, CertificateAuthority

    try:
        CertificateAuthority(ca_dir).refresh_crls()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"CRLs signed again, valid {CRL_DAYS} days; reload the broker: systemctl reload mosquitto")
