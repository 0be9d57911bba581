"""Revoking a lost or stolen signer credential, against a real mosquitto running the generated config.

mosquitto checks a client certificate against the CRL of its own issuer only; these tests show
that, and that ``ioc-center ca revoke-signer`` still cuts off every device the credential
certified (the ones a thief mints with it included), and nothing else.
"""

from __future__ import annotations

import shutil

import pytest
from helpers import cli, wait_for
from support_mtls import Centre, files, handshake

from edge.cli import main as edge_cli
from ioc.ca import CertificateAuthority
from ioc.cli import main as center_cli
from provisioning import pki
from provisioning.credential import SigningCredential
from provisioning.identity import NodeIdentity
from provisioning.pki import Revoked
from provisioning.tls import TlsFiles

NO_CRL = "TLSV1_ALERT_UNKNOWN_CA"
"""What the client hears when the broker finds no CRL for its certificate's issuer (mosquitto 2.0.11:
OpenSSL's "unable to get certificate CRL", sent as an unknown CA alert)."""


def minted_by_thief(centre: Centre, device: str) -> TlsFiles:
    """A certificate made with a copy of alice's credential that the IOC never hears of."""
    stolen = centre.tmp / "stolen"
    if not stolen.exists():
        shutil.copytree(centre.signer, stolen)
    node = centre.tmp / "thief" / device
    tls = TlsFiles(node / "ca.crt", node / "node.crt", node / "node.key")
    NodeIdentity(tls).renew(device, "nowhere", SigningCredential.load(stolen))
    return tls


def accepted(centre: Centre, tls: TlsFiles) -> str:
    return handshake(centre.broker.port, tls, centre.ca / "ca.crt")


def test_the_broker_does_not_check_the_signers_own_revocation(centre: Centre) -> None:
    # Why revoke-signer withdraws the signer's CRL: its certificate in the device CA's CRL is not enough.
    config = centre.provision("vessel-1")
    ca = CertificateAuthority(centre.ca)
    ca.device_ca().write_crl([Revoked(ca.signers()["alice"].cert.serial_number, pki.now())])
    ca.refresh_crls()  # writes the broker's file with the device CA's new CRL
    centre.broker.reload()
    assert accepted(centre, files(config)) == "accepted"


def test_revoked_signer_cuts_off_every_device_it_certified_and_only_those(centre: Centre) -> None:
    alices = [centre.provision("vessel-1"), centre.provision("vessel-2")]
    issued = cli(
        center_cli, ["ca", "issue-signer", "bob", "--ca", str(centre.ca), "--out", str(centre.tmp / "bob")]
    )
    # Not enrolled: enrolling restarts the broker (its devices' rules), which would read bob's CRL.
    bobs = centre.provision("vessel-3", signer=centre.tmp / "bob", enrol=False)
    # A new signer's CRL is new in the broker's file: until it is read, the signer's devices are refused.
    assert accepted(centre, files(bobs)) == NO_CRL
    assert (
        issued.splitlines()[-1] == "reload the broker before its devices connect: systemctl reload mosquitto"
    )
    centre.broker.reload()
    wait_for(lambda: accepted(centre, files(bobs)) == "accepted", 10, "the broker to read bob's CRL")
    thiefs = minted_by_thief(centre, "vessel-9")
    assert [accepted(centre, t) for t in [*map(files, alices), thiefs]] == ["accepted"] * 3
    cli(center_cli, ["ca", "import", str(centre.signer / "issued"), "--ca", str(centre.ca)])

    output = cli(center_cli, ["ca", "revoke-signer", "alice", "--ca", str(centre.ca)])
    assert output == (
        "revoked signer alice; reload the broker: systemctl reload mosquitto\n"
        "provision again with another signer (ioc-edge provision --rotate): vessel-1, vessel-2\n"
    )
    centre.broker.reload()
    wait_for(lambda: accepted(centre, thiefs) == NO_CRL, 10, "the broker to read the new lists")
    assert [accepted(centre, files(c)) for c in alices] == [NO_CRL, NO_CRL]
    assert accepted(centre, files(bobs)) == "accepted"
    ca = CertificateAuthority(centre.ca)
    assert list(ca.signers()) == ["bob"]
    alice = pki.load_certificates(centre.ca / "revoked-signers" / "alice" / "signer.crt")[0]
    assert alice.serial_number in {r.serial for r in ca.device_ca().revoked()}

    # The monthly re-signing (ioc-center-crl.service) keeps it so, and keeps the others working.
    assert cli(center_cli, ["ca", "crl", "--ca", str(centre.ca)]).startswith("CRLs signed again")
    centre.broker.reload()
    wait_for(lambda: accepted(centre, files(bobs)) == "accepted", 10, "the broker after ca crl")
    assert [accepted(centre, t) for t in [*map(files, alices), thiefs]] == [NO_CRL] * 3

    # The technician re-provisions with another signer: the device is back.
    config = centre.tmp / "vessel-1" / "edge.toml"
    cli(edge_cli, ["provision", "--config", str(config), "--rotate", "--signer", str(centre.tmp / "bob")])
    assert accepted(centre, files(alices[0])) == "accepted"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["carol"], "no signer 'carol' in the CA in {ca}; its signers: alice"),
        (["alice", "alice"], "signer 'alice' is revoked already"),
    ],
)
def test_revoke_signer_errors_name_the_signer(centre: Centre, args: list[str], message: str) -> None:
    from click.testing import CliRunner

    for name in args[:-1]:
        cli(center_cli, ["ca", "revoke-signer", name, "--ca", str(centre.ca)])
    result = CliRunner().invoke(center_cli, ["ca", "revoke-signer", args[-1], "--ca", str(centre.ca)])
    assert (result.exit_code, result.output) == (1, f"{message.format(ca=centre.ca)}\n")


def test_a_revoked_signers_name_is_never_issued_again(centre: Centre) -> None:
    cli(center_cli, ["ca", "revoke-signer", "alice", "--ca", str(centre.ca)])
    ca = CertificateAuthority(centre.ca)
    with pytest.raises(pki.PkiError) as error:
        ca.issue_signer("alice")
    assert (
        str(error.value)
        == "signer 'alice' was revoked; its name is not used again: choose another (e.g. alice-2)"
    )
