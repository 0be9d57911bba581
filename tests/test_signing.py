"""Signatures with a node's own key: made on the node, checked with nothing but the CA certificate."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_identity

from provisioning import pki
from provisioning.signing import DeviceSigner, SignatureChecker, SignatureError
from provisioning.tls import TlsFiles

NOW_MS = int(pki.now().timestamp() * 1000)


def test_a_signature_verifies_against_the_ca_and_any_change_is_named(identity: TlsFiles) -> None:
    signer = DeviceSigner.load(identity)
    assert signer.device == "vessel-042"
    assert "PRIVATE" not in repr(signer) and b"PRIVATE" not in signer.chain_pem
    signature = signer.sign(b"position 1")
    checker = SignatureChecker(pki.load_certificates(identity.ca)[0])
    checker.check(signer.chain_pem, "vessel-042", b"position 1", signature, at_ms=NOW_MS)
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
