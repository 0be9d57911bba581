"""Finding 6: signatures consult the CRLs. A track signed after its device was revoked does not verify
offline (``ioc-center track verify --crl``); one signed before still does. At the centre a signature
received after the revocation is refused whatever time it claims (a stolen key sets its clock back).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import make_identity
from cryptography import x509
from helpers import cli
from support_forgery import Minted, track_batches, verify_cli, write_track

from ioc.cli import main as center_cli
from ioc.commissioning import CommissioningCheck, latest
from ioc.receiver import Receiver
from ioc.track import TrackCheck
from provisioning import pki
from sync.records import Commissioning, TimeSource
from sync.wire import Batch

TIMES = [1_700_000_000_000 + 1000 * i for i in range(5)]
MINUTE = 60_000


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


@pytest.fixture
def revoked(tmp_path) -> dict:
    """vessel-042 provisioned, its certificate imported and revoked with the CLI; when it was revoked,
    as its signer's CRL says."""
    node = make_identity(tmp_path)
    ca = tmp_path / "ca"
    cli(center_cli, ["ca", "import", str(tmp_path / "signers" / "vessel-042" / "issued"), "--ca", str(ca)])
    cli(center_cli, ["ca", "revoke", "vessel-042", "--ca", str(ca)])
    leaf = pki.load_certificates(node.cert)[0]
    crl = x509.load_pem_x509_crl((ca / "signers" / "vessel-042" / "signer.crl").read_bytes())
    at = crl.get_revoked_certificate_by_serial_number(leaf.serial_number).revocation_date_utc
    assert abs(at - pki.now()) < dt.timedelta(seconds=30)
    return {"node": Minted.load(node), "ca": ca, "at": at}


def crl_file(revoked: dict):  # noqa: ANN201 - provisioning.revocation.CrlFile
    """The CA's CRL file as the centre reads it (``ioc-center run --crl``)."""
    from provisioning.revocation import CrlFile

    return CrlFile(revoked["ca"] / "devices-crl.pem", every_s=0)


def test_a_track_signed_after_the_revocation_does_not_verify_and_one_signed_before_does(revoked, tmp_path):
    ca, crl = str(revoked["ca"] / "ca.crt"), str(revoked["ca"] / "devices-crl.pem")
    before = write_track(
        tmp_path / "before.track", "vessel-042", revoked["node"], TIMES, ms(revoked["at"]) - MINUTE
    )
    code, output = verify_cli(str(before), "--ca", ca, "--crl", crl)
    assert code == 0 and output.endswith("1 signatures, verified against the CA and its CRLs\n"), output

    after = write_track(
        tmp_path / "after.track", "vessel-042", revoked["node"], TIMES, ms(revoked["at"]) + MINUTE
    )
    code, output = verify_cli(str(after), "--ca", ca, "--crl", crl)
    leaf = revoked["node"].cert
    assert (code, output) == (
        1,
        f"{after}: record 4 (2023-11-14T22:13:24Z): the signature there does not verify: the certificate "
        f"{leaf.subject.rfc4514_string()} (serial {leaf.serial_number:x}) was revoked at "
        f"{revoked['at']:%Y-%m-%d %H:%M:%S}Z, at or before the signing time "
        f"{dt.datetime.fromtimestamp((ms(revoked['at']) + MINUTE) / 1000, dt.UTC):%Y-%m-%d %H:%M:%S}Z\n",
    )
    # Without the CRLs the file says what it checked.
    code, output = verify_cli(str(after), "--ca", ca)
    assert code == 0 and output.endswith("verified against the CA (revocation not checked)\n"), output


def test_the_centre_refuses_signatures_received_after_the_revocation_whatever_time_they_claim(
    revoked, ioc_db
):
    node, ca = revoked["node"], pki.load_certificates(revoked["ca"] / "ca.crt")[0]
    backdated = ms(revoked["at"]) - 2 * MINUTE  # the stolen key's clock set back before the revocation
    why = f"was revoked at {revoked['at']:%Y-%m-%d %H:%M:%S}Z; the signature arrived after that "

    body = json.dumps({"device": "vessel-042", "clock_ms": backdated, "time_ms": backdated, "passed": True})
    signature = node.key.sign(body.encode(), _ecdsa())
    batch = Batch("vessel-042", "00000000000000c1", "commissioning", [1], [
        Commissioning(backdated, TimeSource.NTP, backdated, body, node.pem.decode(), signature)
    ])  # fmt: skip
    ioc_db.store(batch)
    CommissioningCheck(ioc_db, ca, crls=crl_file(revoked))(batch)
    found = latest(ioc_db, "vessel-042")
    assert found["verdict"] == "invalid" and why in found["detail"], found["detail"]

    epoch = "0000000000000001"
    for batch in track_batches("vessel-042", epoch, node, TIMES, backdated):
        ioc_db.store(batch)
    TrackCheck(ioc_db, ca, crls=crl_file(revoked)).advance("vessel-042", epoch)
    (flag,) = ioc_db.fetch("SELECT idx, kind, detail FROM track_flags")
    assert (flag["idx"], flag["kind"]) == (4, "bad_signature") and why in flag["detail"], flag["detail"]


def test_ioc_center_run_takes_the_crl_file(revoked, ioc_db):
    crls = crl_file(revoked)
    receiver = Receiver(ioc_db, "127.0.0.1", 1, crls=crls)  # not started: its checks are built
    assert receiver.checks["track"].checker.crls is crls
    assert receiver.checks["commissioning"].checker.crls is crls
    assert "--crl FILE" in cli(center_cli, ["run", "--help"])


def _ecdsa():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.ECDSA(hashes.SHA256())
