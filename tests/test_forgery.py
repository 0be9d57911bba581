"""Finding 1: a node that holds only its own key and certificate cannot make a signature verify as another
device's, nor can a chain that breaks the certificates' profile (CA flag, key usage, validity at the
signing time, the signer's signing window). Through the real ``ioc-center track verify`` and the
centre's track and commissioning checks over the real database.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import make_identity
from cryptography.x509.oid import ExtendedKeyUsageOID
from helpers import now_ms
from support_forgery import Minted, mint, points, verify_cli, write_track

from ioc.commissioning import CommissioningCheck, latest
from ioc.track import TrackCheck
from provisioning import pki
from sync.chain import ChainHead, sig_message
from sync.records import Commissioning, TimeSource, TrackSig
from sync.wire import Batch

DAY = dt.timedelta(days=1)
TIMES = [1_700_000_000_000 + 1000 * i for i in range(5)]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> dict:
    """A CA with a provisioned vessel-7 (the stolen node), its signer and the CA's own key."""
    tmp = tmp_path_factory.mktemp("fleet")
    node = make_identity(tmp, "vessel-7")
    signer = tmp / "signers" / "vessel-7"
    return {
        "tmp": tmp,
        "ca": tmp / "ca" / "ca.crt",
        "node": Minted.load(node),
        "signer": Minted(
            pki.load_private_key(signer / "signer.key"), pki.load_certificates(signer / "signer.crt")
        ),
        "root": Minted(
            pki.load_private_key(tmp / "ca" / "ca.key"), pki.load_certificates(tmp / "ca" / "ca.crt")
        ),
    }


def forged(fleet: dict, how: str) -> tuple[Minted, int, str]:
    """A vessel-042 certificate made ``how``, the time its signature claims, and why it must fail."""
    now = pki.now()
    if how == "device key as issuer":
        return (
            mint(fleet["node"], "vessel-042"),
            now_ms(),
            "which is not a CA: only a signer of the CA certifies devices",
        )
    if how == "server usage":
        leaf = mint(fleet["signer"], "vessel-042", eku=[ExtendedKeyUsageOID.SERVER_AUTH])
        return leaf, now_ms(), "a device certificate's extended key usage is clientAuth only, not serverAuth"
    if how == "leaf is a CA":
        leaf = mint(fleet["signer"], "vessel-042", ca=True, usage="ca")
        return leaf, now_ms(), "a device certificate must not be a CA"
    if how == "not a device":
        return (
            mint(fleet["signer"], "vessel-042", unit="signers"),
            now_ms(),
            "is not a device certificate (OU=devices)",
        )
    if how == "outside the signing window":
        _, end = pki.signing_window(fleet["signer"].cert)
        leaf = mint(fleet["signer"], "vessel-042", not_before=end + DAY)
        claimed = int((end + 2 * DAY).timestamp() * 1000)
        return leaf, claimed, "outside the signing window of 'vessel-7'"
    assert how == "expired signer"
    old = mint(
        fleet["root"],
        "old-signer",
        unit="signers",
        ca=True,
        usage="ca",
        not_before=now - 20 * DAY,
        not_after=now - 10 * DAY,
    )
    leaf = mint(old, "vessel-042", not_before=now - 15 * DAY)
    return leaf, now_ms(), "outside the validity of the certificate CN=old-signer,OU=signers,O=Hue IOC"


HOW = [
    "device key as issuer",
    "server usage",
    "leaf is a CA",
    "not a device",
    "outside the signing window",
    "expired signer",
]


@pytest.mark.parametrize("how", HOW)
def test_a_forged_track_does_not_verify_offline(fleet, tmp_path, how):
    leaf, signed_ms, why = forged(fleet, how)
    path = write_track(tmp_path / "forged.track", "vessel-042", leaf, TIMES, signed_ms)
    code, output = verify_cli(str(path), "--ca", str(fleet["ca"]))
    assert code == 1, output
    assert output.startswith(
        f"{path}: record 4 (2023-11-14T22:13:24Z): the signature there does not verify: "
    )
    assert why in output


def test_the_node_s_own_chain_still_verifies(fleet, tmp_path):
    path = write_track(tmp_path / "own.track", "vessel-7", fleet["node"], TIMES, now_ms())
    code, output = verify_cli(str(path), "--ca", str(fleet["ca"]))
    assert (code, output.split(":")[0]) == (0, "OK"), output


def test_the_centre_flags_a_forged_track_and_commissioning_record(fleet, ioc_db):
    leaf, signed_ms, why = forged(fleet, "device key as issuer")
    ca = pki.load_certificates(fleet["ca"])[0]
    epoch, track = "0000000000000001", points(TIMES)
    head = ChainHead.start("vessel-042", epoch)
    digest = head.append(track)[-1]
    message = sig_message("vessel-042", epoch, 4, digest, signed_ms)
    sig = TrackSig(
        TIMES[-1], TimeSource.GPS, signed_ms, 4, digest, leaf.key.sign(message, _ecdsa()), leaf.pem
    )
    ioc_db.store(Batch("vessel-042", epoch, "track", [1, 2, 3, 4, 5], track))
    ioc_db.store(Batch("vessel-042", epoch, "track_sig", [1], [sig]))
    TrackCheck(ioc_db, ca).advance("vessel-042", epoch)
    (flag,) = ioc_db.fetch("SELECT idx, kind, detail FROM track_flags")
    assert (flag["idx"], flag["kind"]) == (4, "bad_signature") and why in flag["detail"]

    body = json.dumps({"device": "vessel-042", "clock_ms": signed_ms, "time_ms": signed_ms, "passed": True})
    record = Commissioning(
        signed_ms, TimeSource.NTP, signed_ms, body, leaf.pem.decode(), leaf.key.sign(body.encode(), _ecdsa())
    )
    batch = Batch("vessel-042", epoch, "commissioning", [1], [record])
    ioc_db.store(batch)
    CommissioningCheck(ioc_db, ca)(batch)
    found = latest(ioc_db, "vessel-042")
    assert found["verdict"] == "invalid" and why in found["detail"], found["detail"]


def _ecdsa():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.ECDSA(hashes.SHA256())
