"""Signatures made with a node's own key, and their checking by anyone who holds the IOC's CA certificate.

What a node signs (its track log, its commissioning record) must stay provable for years and away
from the node: so each signature travels with the node's certificate chain (device certificate,
then the signer that issued it), and a checker needs only the CA certificate to trust it. The
key is the one made by provisioning (ECDSA P-256); the signature is ECDSA over SHA-256, DER.

Example::

    signer = DeviceSigner.load(config.uplink.tls)
    signature = signer.sign(b"message")
    SignatureChecker(ca).check(signer.chain_pem, signer.device, b"message", signature)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from common.clock import SANE_WALL_MS
from provisioning import pki
from provisioning.revocation import CrlFile, Revocations
from provisioning.tls import TlsSource
from provisioning.trust import SignatureError, TrustedPath, describe, valid_at, validate, validation_time

__all__ = ["DeviceSigner", "Enrolled", "SignatureChecker", "SignatureError", "signed_at"]

_ECDSA = ec.ECDSA(hashes.SHA256())
_CACHE = 256
"""Validated paths a checker keeps: a node's chain changes only when it is re-provisioned."""


def signed_at(signed_ms: int) -> int | None:
    """The time to check a certificate's validity at, or None when the node's clock was not set.

    The wall clock rather than the GPS time: a replayed capture's GPS time can be years old,
    and a node at sea without NTP still keeps its RTC's time; a clock at 1970 proves nothing.
    """
    return signed_ms if signed_ms >= SANE_WALL_MS else None


@dataclass(frozen=True)
class Enrolled:
    """A certificate the centre's enrolment register holds for a device, and until when it counts.

    ``ended_ms`` None: the one in force. Else when it stopped: ``revoked`` (cut off: nothing it
    signs counts once the centre knows, whatever time it claims) or replaced by a newer one after
    ``ioc-edge provision --rotate`` (what it signed before then still counts: the node's backlog
    signed with the old key arrives after the rotation).
    """

    serial: int
    ended_ms: int | None = None
    revoked: bool = False


class DeviceSigner:
    """Signs with the node's private key; ``chain_pem`` is what a checker needs beside the CA.

    Example::

        signer = DeviceSigner.load(config.uplink.tls)
        signer.sign(b"ioc-edge track v1 ...")
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate]) -> None:
        if not chain or chain[0].public_key() != key.public_key():
            raise pki.PkiError("the certificate is not the certificate of the node's key")
        self._key = key
        self.device = pki.common_name(chain[0].subject)
        self.chain_pem = pki.certificate_pem(*chain)

    @classmethod
    def load(cls, files: TlsSource) -> DeviceSigner:
        """The signer of a node's ``[uplink.tls]`` files; :class:`PkiError` when they are unfit."""
        return cls(pki.load_private_key(Path(files.key)), pki.load_certificates(Path(files.cert)))

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, _ECDSA)

    def __repr__(self) -> str:  # never the key
        return f"DeviceSigner(device={self.device!r})"


class SignatureChecker:
    """Checks a node's signatures: the chain that came with them against the CA, then the signature.

    The chain is validated as a path to ``ca`` at the signing time (:mod:`provisioning.trust`);
    with ``crls`` a certificate of it revoked at or before the signing time voids the signature
    (and, given when the centre received it, one received after the revocation whatever time it
    claims: a stolen key can set its clock back). Given ``enrolled`` (what the centre's enrolment
    register holds for the device: :class:`Enrolled`), the device certificate must be one of them,
    in force when it signed.

    ``ca`` None checks the signature against the chain alone (it proves the data was not changed
    since that key signed it, not who holds the key): for a centre without a CA configured.

    Example::

        checker = SignatureChecker(pki.load_certificates(Path("ca.pem"))[0], crls=CrlFile(crl_path))
        checker.check(chain_pem, "vessel-042", message, signature, at_ms)   # raises SignatureError
    """

    def __init__(
        self,
        ca: x509.Certificate | None,
        *,
        crls: CrlFile | None = None,
    ) -> None:
        self.ca, self.crls = ca, crls
        self._paths: dict[tuple[bytes, str], TrustedPath] = {}

    def chain(self, chain_pem: bytes, device: str, at_ms: int | None = None) -> list[x509.Certificate]:
        """The certificates of ``chain_pem`` for ``device`` at ``at_ms``: with a CA, the validated path
        (leaf first, the CA last); without, the chain as it came, its leaf ``device``'s."""
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            raise SignatureError("the certificate chain is not PEM certificates") from None
        if self.ca is None:
            name = pki.common_name(chain[0].subject)
            if name != device:
                raise SignatureError(f"the certificate is for device {name!r}, not {device!r}")
            if at_ms is not None:
                valid_at(chain, _ms(at_ms))
            return chain
        at = validation_time(chain[0], None if at_ms is None else _ms(at_ms))
        # The cache key is what the verdict depends on but the time; a cached path is used only at a
        # time all its links are valid (the only way time enters path validation). Revocation and
        # enrolment are looked at on every check: they change while the centre runs.
        found = self._paths.get((chain_pem, device))
        if found is None or not found.holds_at(at):
            found = validate(self.ca, chain, device, at)
            if len(self._paths) >= _CACHE:
                self._paths.pop(next(iter(self._paths)))
            self._paths[(chain_pem, device)] = found
        return found.certs

    def check(
        self,
        chain_pem: bytes,
        device: str,
        message: bytes,
        signature: bytes,
        at_ms: int | None = None,
        received_ms: int | None = None,
        enrolled: Sequence[Enrolled] | None = None,
    ) -> list[x509.Certificate]:
        """Raise :class:`SignatureError` unless ``device``'s key signed ``message`` (at ``at_ms``, the
        signer's clock; ``received_ms``: when the centre received it; ``enrolled``: the device's
        certificates in the enrolment register, None when there is none to ask). Returns the chain."""
        chain = self.chain(chain_pem, device, at_ms)
        if self.crls is not None and self.ca is not None:
            _not_revoked(self.crls.revocations(), chain, at_ms, received_ms)
        if enrolled is not None:
            _enrolled(enrolled, chain[0], device, at_ms, received_ms)
        key = chain[0].public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):  # e.g. RSA: a device key is ECDSA P-256
            raise SignatureError(
                f"the certificate's key cannot check this signature: {type(key).__name__} is not an ECDSA key"
            )
        try:
            key.verify(signature, message, _ECDSA)
        except InvalidSignature:
            raise SignatureError("the signature does not match the data: changed or forged") from None
        except (TypeError, ValueError) as exc:  # what cryptography raises for input it cannot take
            raise SignatureError(f"the certificate's key cannot check this signature: {exc}") from None
        return chain


def _ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _not_revoked(
    revocations: Revocations, chain: list[x509.Certificate], at_ms: int | None, received_ms: int | None
) -> None:
    """Raise :class:`SignatureError` when a certificate of ``chain`` was revoked before it counts."""
    for cert, issuer in zip(chain, chain[1:], strict=False):
        revoked = revocations.revoked_at(cert, issuer)
        if revoked is None:
            continue
        what = f"the certificate {describe(cert)} was revoked at {revoked:%Y-%m-%d %H:%M:%S}Z"
        if at_ms is None:
            raise SignatureError(f"{what}, and the node's clock was not set when it signed: maybe after")
        if revoked <= _ms(at_ms):
            raise SignatureError(f"{what}, at or before the signing time {_ms(at_ms):%Y-%m-%d %H:%M:%S}Z")
        if received_ms is not None and revoked <= _ms(received_ms):
            raise SignatureError(
                f"{what}; the signature arrived after that ({_ms(received_ms):%Y-%m-%d %H:%M:%S}Z), "
                "whatever time it claims"
            )


def _enrolled(
    enrolled: Sequence[Enrolled],
    leaf: x509.Certificate,
    device: str,
    at_ms: int | None,
    received_ms: int | None,
) -> None:
    """Raise :class:`SignatureError` unless ``leaf`` is one of ``enrolled``, in force when it signed."""
    if not enrolled:
        raise SignatureError(f"device {device!r} is not enrolled at the centre: ioc-center device enrol")
    found = next((e for e in enrolled if e.serial == leaf.serial_number), None)
    if found is None:
        serials = ", ".join(f"{e.serial:x}" for e in enrolled)
        raise SignatureError(
            f"the certificate {describe(leaf)} is not one enrolled for {device!r} (serial {serials})"
        )
    if found.ended_ms is None:
        return
    ended = f"{_ms(found.ended_ms):%Y-%m-%d %H:%M:%S}Z"
    signed_before = at_ms is not None and at_ms < found.ended_ms
    if found.revoked:
        if not signed_before or (received_ms is not None and received_ms >= found.ended_ms):
            raise SignatureError(
                f"the certificate {describe(leaf)} was revoked in the enrolment register at {ended}, "
                "before this signature was made or received"
            )
    elif not signed_before:
        raise SignatureError(
            f"the certificate {describe(leaf)} was replaced for {device!r} at {ended}: "
            "it no longer signs for it"
        )
