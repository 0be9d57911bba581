"""Signatures with a node's own key: made on the node, checked with nothing but the CA certificate."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_identity
from helpers import now_ms

from provisioning import pki
from provisioning.revocation import CrlFile, Revocations
from provisioning.signing import DeviceSigner, Enrolled, SignatureChecker, SignatureError
from provisioning.tls import TlsFiles


def test_a_signature_verifies_against_the_ca_and_any_change_is_named(identity: TlsFiles) -> None:
    signer = DeviceSigner.load(identity)
    assert signer.device == "vessel-042"
    assert "PRIVATE" not in repr(signer) and b"PRIVATE" not in signer.chain_pem
    signature = signer.sign(b"position 1")
    checker = SignatureChecker(pki.load_certificates(identity.ca)[0])
    checker.check(signer.chain_pem, "vessel-042", b"position 1", signature, at_ms=now_ms())
    with pytest.raises(SignatureError, match="^the signature does not match the data: changed or forged$"):
        checker.check(signer.chain_pem, "vessel-042", b"position 2", signature)
    with pytest.raises(SignatureError, match="^the certificate is for device 'vessel-042', not 'vessel-7'$"):
        checker.check(signer.chain_pem, "vessel-7", b"position 1", signature)
    with pytest.raises(
        SignatureError,
        match=r"^signed at 1970-01-01 00:00:00Z, outside the validity of the "
        r"certificate L=Thuan An,CN=vessel-042,OU=devices,O=Hue IOC \(serial [0-9a-f]+\): ",
    ):
        checker.check(signer.chain_pem, "vessel-042", b"position 1", signature, at_ms=0)
    with pytest.raises(SignatureError, match="^the certificate chain is not PEM certificates$"):
        checker.check(b"garbage", "vessel-042", b"position 1", signature)


def test_a_device_of_another_ca_is_refused_and_without_a_ca_only_the_signature_counts(
    tmp_path: Path, identity: TlsFiles
) -> None:
    other = make_identity(tmp_path / "elsewhere")
    signer = DeviceSigner.load(other)
    signature = signer.sign(b"track")
    ours = SignatureChecker(pki.load_certificates(identity.ca)[0])
    with pytest.raises(
        SignatureError, match="^the certificate .* does not lead to the CA .*: not a device of this CA$"
    ):
        ours.check(signer.chain_pem, "vessel-042", b"track", signature)
    SignatureChecker(None).check(signer.chain_pem, "vessel-042", b"track", signature)


def test_a_certificate_that_is_not_the_key_s_is_refused(tmp_path: Path, identity: TlsFiles) -> None:
    other = make_identity(tmp_path / "elsewhere")
    with pytest.raises(pki.PkiError, match="not the certificate of the node's key"):
        DeviceSigner(pki.load_private_key(identity.key), pki.load_certificates(other.cert))


def test_a_checker_sees_a_revocation_at_once_and_trusts_no_crl_its_issuer_did_not_sign(tmp_path, identity):
    from ioc.ca import CertificateAuthority

    signer = DeviceSigner.load(identity)
    leaf, issuer = pki.load_certificates(identity.cert)
    crls = CrlFile(tmp_path / "ca" / "devices-crl.pem", every_s=0)
    checker = SignatureChecker(pki.load_certificates(identity.ca)[0], crls=crls)
    later = now_ms() + 60_000  # the revocation below comes before it: now, not when the module was imported
    checker.check(
        signer.chain_pem, "vessel-042", b"fix", signer.sign(b"fix"), at_ms=later
    )  # validated, cached

    # A list naming the signer as its issuer but signed by the device's own key counts for nothing.
    forged = pki.make_crl(
        issuer, pki.load_private_key(identity.key), [pki.Revoked(leaf.serial_number, pki.now())], 9, 1
    )
    assert Revocations([forged]).revoked_at(leaf, issuer) is None

    ca = CertificateAuthority(tmp_path / "ca")
    ca.import_certificates([identity.cert])
    ca.revoke("vessel-042")
    with pytest.raises(
        SignatureError,
        match=r"^the certificate L=Thuan An,CN=vessel-042,OU=devices,O=Hue IOC "
        r"\(serial [0-9a-f]+\) was revoked at .*Z, at or before the signing time .*Z$",
    ):
        checker.check(signer.chain_pem, "vessel-042", b"fix", signer.sign(b"fix"), at_ms=later)
    with pytest.raises(
        SignatureError, match=r"and the node's clock was not set when it signed: maybe after$"
    ):
        checker.check(signer.chain_pem, "vessel-042", b"fix", signer.sign(b"fix"))


def test_with_the_enrolment_register_only_an_enrolled_certificate_in_force_verifies(identity):
    signer = DeviceSigner.load(identity)
    serial = pki.load_certificates(identity.cert)[0].serial_number
    checker = SignatureChecker(pki.load_certificates(identity.ca)[0])
    t = now_ms()
    signature = signer.sign(b"fix")

    def check(enrolled: list[Enrolled], at_ms: int = t, received_ms: int = t + 1000) -> None:
        checker.check(signer.chain_pem, "vessel-042", b"fix", signature, at_ms, received_ms, enrolled)

    check([Enrolled(serial)])
    # Replaced after ioc-edge provision --rotate: what it signed before still counts, however late it arrives.
    check([Enrolled(0x1F), Enrolled(serial, ended_ms=t + 1)], received_ms=t + 3_600_000)
    with pytest.raises(
        SignatureError, match=r"\) was replaced for 'vessel-042' at .*: it no longer signs for it$"
    ):
        check([Enrolled(0x1F), Enrolled(serial, ended_ms=t)])
    # Revoked in the register: nothing it signs counts once the centre knows, whatever time it claims.
    with pytest.raises(SignatureError, match=r"was revoked in the enrolment register at .*, before this"):
        check([Enrolled(serial, ended_ms=t + 500, revoked=True)])
    check([Enrolled(serial, ended_ms=t + 2000, revoked=True)])
    with pytest.raises(
        SignatureError,
        match=rf"^the certificate .* \(serial {serial:x}\) is not one enrolled for .vessel-042. \(serial 1f",
    ):
        check([Enrolled(0x1F)])
    with pytest.raises(
        SignatureError, match=r"^device 'vessel-042' is not enrolled at the centre: ioc-center device enrol$"
    ):
        check([])
