"""Which certificate chains a signature may come with: a real path validation to the device CA.

A node signs with its device key and sends its chain (device certificate, then the signer that
issued it). Following issuer names and signatures is not enough: any certificate's key can sign a
certificate. :func:`validate` builds the path with ``cryptography``'s verifier (RFC 5280 and the
CA/Browser Forum profile) and states this project's profile on top of it:

- every issuer: ``basicConstraints`` CA (critical), ``keyUsage`` keyCertSign, its path length, and
  clientAuth among its extended key usages when it lists any (a signer lists clientAuth only);
- every link valid at the signing time (a certificate that expired, or was not yet valid, then
  proves nothing);
- the leaf is a device certificate as :func:`provisioning.pki.sign_device` makes it: not a CA
  (critical), digitalSignature without certificate or CRL signing (critical), clientAuth as its
  only extended key usage, ``OU=devices``, and its CN is the device the signature is claimed for;
- each certificate was issued inside its issuer's signing window (``PrivateKeyUsagePeriod``,
  which OpenSSL ignores): its notBefore, plus the 5 minutes ``pki`` backdates it by, falls in
  :func:`provisioning.pki.signing_window`.

The verifier's defaults are for web servers: it wants a subjectAltName on the leaf, which device
certificates never had (the CN is the device id) and deployed devices cannot be re-issued; so the
leaf's profile is stated here, extension by extension, rather than loosened as a whole.

Example::

    path = validate(ca, [device_cert, signer_cert], "vessel-042", signed_at)   # leaf ... CA
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from common.errors import IocEdgeError
from provisioning import pki

__all__ = ["SignatureError", "TrustedPath", "describe", "valid_at", "validate", "validation_time"]


class SignatureError(IocEdgeError, ValueError):
    """A signature, or the certificate chain that came with it, does not verify; the message says which."""


def describe(cert: x509.Certificate) -> str:
    """A certificate as the messages name it: its subject and serial."""
    return f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:x})"


def _when(t: dt.datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}Z"


# -- the device certificate's profile (the verifier raises what a validator raises, with its text) --


def _not_a_ca(policy: Policy, cert: x509.Certificate, ext: x509.BasicConstraints) -> None:
    if ext.ca:
        raise ValueError("a device certificate must not be a CA")


def _signs_data_only(policy: Policy, cert: x509.Certificate, ext: x509.KeyUsage) -> None:
    if not ext.digital_signature or ext.key_cert_sign or ext.crl_sign:
        raise ValueError("a device certificate's key usage is digitalSignature, not certificate signing")


def _client_only(policy: Policy, cert: x509.Certificate, ext: x509.ExtendedKeyUsage) -> None:
    if list(ext) != [ExtendedKeyUsageOID.CLIENT_AUTH]:
        names = ", ".join(u._name for u in ext) or "none"
        raise ValueError(f"a device certificate's extended key usage is clientAuth only, not {names}")


_DEVICE = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .require_present(x509.BasicConstraints, Criticality.CRITICAL, _not_a_ca)
    .require_present(x509.KeyUsage, Criticality.CRITICAL, _signs_data_only)
    .require_present(x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, _client_only)
)
_ISSUER = ExtensionPolicy.webpki_defaults_ca()
_PROCESSING = re.compile(r" \(encountered processing <Certificate\(subject=<Name\((.*?)\)>, \.\.\.\)>\)")


@dataclass(frozen=True)
class TrustedPath:
    """A validated path, leaf first and the CA last, and when all of its links are valid at once.

    Path validation depends on the time only through the links' validity: a path valid at one
    time within ``valid_from .. valid_to`` is valid at any other (``SignatureChecker`` caches it).
    """

    certs: list[x509.Certificate]
    valid_from: dt.datetime
    valid_to: dt.datetime

    def holds_at(self, at: dt.datetime) -> bool:
        return self.valid_from <= at <= self.valid_to


def validation_time(leaf: x509.Certificate, signed: dt.datetime | None) -> dt.datetime:
    """When to validate ``leaf``'s path: the signing time, else (the node's clock was not set) the
    leaf's issue time: the path's shape is checked, the links' validity when it signed is not known."""
    if signed is not None:
        return signed
    return min(leaf.not_valid_before_utc + pki.BACKDATE, leaf.not_valid_after_utc)


def valid_at(certs: list[x509.Certificate], at: dt.datetime) -> None:
    """Raise :class:`SignatureError` naming the first of ``certs`` not valid at ``at``."""
    for cert in certs:
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise SignatureError(
                f"signed at {_when(at)}, outside the validity of the certificate {describe(cert)}: "
                f"{cert.not_valid_before_utc:%Y-%m-%d} .. {cert.not_valid_after_utc:%Y-%m-%d}"
            )


def validate(
    ca: x509.Certificate, chain: list[x509.Certificate], device: str, at: dt.datetime
) -> TrustedPath:
    """The path from ``chain[0]`` to ``ca`` for ``device``'s signatures made at ``at``.

    Raises :class:`SignatureError` naming the certificate and what is wrong with it.
    """
    leaf = chain[0]
    valid_at([*chain, ca], at)
    verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .time(at)
        .extension_policies(ca_policy=_ISSUER, ee_policy=_DEVICE)
        .build_client_verifier()
    )
    try:
        certs = verifier.verify(leaf, chain[1:]).chain
    except VerificationError as exc:
        raise SignatureError(_why(exc, chain, ca)) from None
    _role(certs[0], device)
    for cert, issuer in zip(certs, certs[1:], strict=False):
        _in_window(cert, issuer)
    return TrustedPath(
        certs,
        max(c.not_valid_before_utc for c in certs),
        min(c.not_valid_after_utc for c in certs),
    )


def _why(exc: VerificationError, chain: list[x509.Certificate], ca: x509.Certificate) -> str:
    """Why ``chain`` fails: first as names and keys tell it (which certificate issued which), then the
    verifier's reason, naming the certificate it was processing."""
    cert, links = chain[0], [*chain[1:], ca]
    for _ in links:
        if cert == ca:
            break
        issuer = next((c for c in links if pki.issued_by(cert, c)), None)
        if issuer is None:
            return (
                f"the certificate {describe(cert)} does not lead to the CA {ca.subject.rfc4514_string()}: "
                "not a device of this CA"
            )
        if not _is_ca(issuer):  # the forger's way: a device certificate's key signed another certificate
            return (
                f"the certificate {describe(cert)} was issued by {describe(issuer)}, which is not a CA: "
                "only a signer of the CA certifies devices"
            )
        cert = issuer
    text = str(exc).removeprefix("validation failed: ").removeprefix("candidates exhausted: ")
    text = text.replace("Python extension validator failed: ValueError: ", "")
    return "the certificate chain does not hold: " + _PROCESSING.sub(r" (certificate \1)", text)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _role(leaf: x509.Certificate, device: str) -> None:
    units = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if units != [pki.DEVICES_UNIT]:
        raise SignatureError(
            f"the certificate {describe(leaf)} is not a device certificate (OU={pki.DEVICES_UNIT})"
        )
    name = pki.common_name(leaf.subject)
    if name != device:
        raise SignatureError(f"the certificate is for device {name!r}, not {device!r}")


def _in_window(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    start, end = pki.signing_window(issuer)
    issued = cert.not_valid_before_utc + pki.BACKDATE
    if not start <= issued <= end:
        raise SignatureError(
            f"the certificate {describe(cert)} was issued at {_when(issued)}, outside the signing "
            f"window of {pki.common_name(issuer.subject)!r}: {start:%Y-%m-%d} .. {end:%Y-%m-%d}"
        )
