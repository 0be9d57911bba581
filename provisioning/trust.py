"""Which certificate chains a signature may come with: a real path validation to the device CA.

A node signs with its device key and sends its chain (device certificate, then the signer that
issued it). Following issuer names and signatures is not enough: any certificate's key can sign a
certificate. :func:`validate` builds the path with ``cryptography``'s verifier (RFC 5280 and the
CA/Browser Forum profile) and states this project's profile on top of it:

- every issuer: ``basicConstraints`` CA (critical), ``keyUsage`` keyCertSign, its path length, and
  clientAuth among its extended key usages when it lists any (a signer lists clientAuth only);
- every link valid at the signing time (a certificate that expired, or was not yet valid, then
  proves nothing);
- the leaf is what the :class:`Purpose` says: by default (:data:`DEVICE_SIGNATURE`) a device
  certificate as :func:`provisioning.pki.sign_device` makes it: not a CA (critical),
  digitalSignature without certificate or CRL signing (critical), clientAuth as its only extended
  key usage, ``OU=devices``, and its CN is the device the signature is claimed for; a command
  signer (``provisioning.commands``) has the same shape with its own usage and unit, and is issued
  by the CA itself;
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

__all__ = [
    "DEVICE_SIGNATURE",
    "Purpose",
    "SignatureError",
    "TrustedPath",
    "describe",
    "valid_at",
    "validate",
    "validation_time",
]


class SignatureError(IocEdgeError, ValueError):
    """A signature, or the certificate chain that came with it, does not verify; the message says which."""


def describe(cert: x509.Certificate) -> str:
    """A certificate as the messages name it: its subject and serial."""
    return f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:x})"


def _when(t: dt.datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}Z"


# -- the leaf's profile (the verifier raises what a validator raises, with its text) ---------------


@dataclass(frozen=True)
class Purpose:
    """What a path's leaf signs for: a signing key's certificate, not a CA, with one extended key usage.

    ``what`` names it in messages, ``holder`` who holds its key, ``unit`` is its OU, ``usage`` its
    only extended key usage (``usage_name`` in messages). ``for_device``: its CN is the device the
    signature is claimed for. ``by_ca``: issued by the CA itself, never by a technician's signer
    (which may sign certificates of any usage, but is trusted to certify devices only).
    """

    what: str
    holder: str
    unit: str
    usage: x509.ObjectIdentifier
    usage_name: str
    for_device: bool = False
    by_ca: bool = False

    def policy(self) -> ExtensionPolicy:
        """The verifier's policy for the leaf: the web's defaults, without their subjectAltName."""

        def not_a_ca(policy: Policy, cert: x509.Certificate, ext: x509.BasicConstraints) -> None:
            if ext.ca:
                raise ValueError(f"{self.what} must not be a CA")

        def signs_data_only(policy: Policy, cert: x509.Certificate, ext: x509.KeyUsage) -> None:
            if not ext.digital_signature or ext.key_cert_sign or ext.crl_sign:
                raise ValueError(f"{self.what}'s key usage is digitalSignature, not certificate signing")

        def one_usage(policy: Policy, cert: x509.Certificate, ext: x509.ExtendedKeyUsage) -> None:
            if list(ext) != [self.usage]:
                names = ", ".join(u._name for u in ext) or "none"
                raise ValueError(f"{self.what}'s extended key usage is {self.usage_name} only, not {names}")

        return (
            ExtensionPolicy.webpki_defaults_ee()
            .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
            .require_present(x509.BasicConstraints, Criticality.CRITICAL, not_a_ca)
            .require_present(x509.KeyUsage, Criticality.CRITICAL, signs_data_only)
            .require_present(x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, one_usage)
        )


DEVICE_SIGNATURE = Purpose(
    "a device certificate",
    "a device",
    pki.DEVICES_UNIT,
    ExtendedKeyUsageOID.CLIENT_AUTH,
    "clientAuth",
    for_device=True,
)
"""A node's signatures (its track, its commissioning record): the device certificate's profile."""
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
    ca: x509.Certificate,
    chain: list[x509.Certificate],
    device: str | None,
    at: dt.datetime,
    purpose: Purpose = DEVICE_SIGNATURE,
) -> TrustedPath:
    """The path from ``chain[0]`` to ``ca`` for ``device``'s signatures made at ``at``.

    ``purpose`` is what the leaf must be (``device`` None for a purpose not ``for_device``).
    Raises :class:`SignatureError` naming the certificate and what is wrong with it.
    """
    leaf = chain[0]
    valid_at([*chain, ca], at)
    verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .time(at)
        .extension_policies(ca_policy=_ISSUER, ee_policy=purpose.policy())
        .build_client_verifier()
    )
    try:
        certs = verifier.verify(leaf, chain[1:]).chain
    except VerificationError as exc:
        raise SignatureError(_why(exc, chain, ca, purpose)) from None
    _role(certs, device, purpose)
    for cert, issuer in zip(certs, certs[1:], strict=False):
        _in_window(cert, issuer)
    return TrustedPath(
        certs,
        max(c.not_valid_before_utc for c in certs),
        min(c.not_valid_after_utc for c in certs),
    )


def _why(
    exc: VerificationError, chain: list[x509.Certificate], ca: x509.Certificate, purpose: Purpose
) -> str:
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
                f"not {purpose.holder} of this CA"
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


def _role(certs: list[x509.Certificate], device: str | None, purpose: Purpose) -> None:
    leaf = certs[0]
    units = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if units != [purpose.unit]:
        raise SignatureError(f"the certificate {describe(leaf)} is not {purpose.what} (OU={purpose.unit})")
    if purpose.by_ca and len(certs) != 2:
        raise SignatureError(
            f"the certificate {describe(leaf)} was issued by {describe(certs[1])}, not by the CA itself: "
            f"only the CA issues {purpose.what}"
        )
    name = pki.common_name(leaf.subject)
    if purpose.for_device and name != device:
        raise SignatureError(f"the certificate is for device {name!r}, not {device!r}")


def _in_window(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    start, end = pki.signing_window(issuer)
    issued = cert.not_valid_before_utc + pki.BACKDATE
    if not start <= issued <= end:
        raise SignatureError(
            f"the certificate {describe(cert)} was issued at {_when(issued)}, outside the signing "
            f"window of {pki.common_name(issuer.subject)!r}: {start:%Y-%m-%d} .. {end:%Y-%m-%d}"
        )
