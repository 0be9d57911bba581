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
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from edge.clock import SANE_WALL_MS
from edge.errors import IocEdgeError
from provisioning import pki
from provisioning.tls import TlsSource

__all__ = ["DeviceSigner", "SignatureChecker", "SignatureError", "signed_at"]

_ECDSA = ec.ECDSA(hashes.SHA256())
_CACHE = 64
"""Chains kept checked by a checker: a node's chain changes only when it is re-provisioned."""


def signed_at(signed_ms: int) -> int | None:
    """The time to check a certificate's validity at, or None when the node's clock was not set.

    The wall clock rather than the GPS time: a replayed capture's GPS time can be years old,
    and a node at sea without NTP still keeps its RTC's time; a clock at 1970 proves nothing.
    """
    return signed_ms if signed_ms >= SANE_WALL_MS else None


class SignatureError(IocEdgeError, ValueError):
    """A signature, or the certificate chain that came with it, does not verify; the message says which."""


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

    ``ca`` None checks the signature against the chain alone (it proves the data was not changed
    since that key signed it, not who holds the key): for a centre without a CA configured.

    Example::

        checker = SignatureChecker(pki.load_certificates(Path("ca.pem"))[0])
        checker.check(chain_pem, "vessel-042", message, signature)   # raises SignatureError
    """

    def __init__(self, ca: x509.Certificate | None) -> None:
        self.ca = ca
        self._chains: dict[tuple[bytes, str], list[x509.Certificate]] = {}

    def chain(self, chain_pem: bytes, device: str) -> list[x509.Certificate]:
        """The certificates of ``chain_pem``, checked: ``device``'s, each issued by the next, then the CA."""
        found = self._chains.get((chain_pem, device))
        if found is not None:
            return found
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            raise SignatureError("the certificate chain is not PEM certificates") from None
        name = pki.common_name(chain[0].subject)
        if name != device:
            raise SignatureError(f"the certificate is for device {name!r}, not {device!r}")
        if self.ca is not None:
            links = [*chain, self.ca] if chain[-1] != self.ca else chain
            for cert, issuer in zip(links, links[1:], strict=False):
                if not pki.issued_by(cert, issuer):
                    raise SignatureError(
                        f"the certificate {cert.subject.rfc4514_string()} was not issued by "
                        f"{issuer.subject.rfc4514_string()}: not a device of this CA"
                    )
        if len(self._chains) >= _CACHE:
            self._chains.pop(next(iter(self._chains)))
        self._chains[(chain_pem, device)] = chain
        return chain

    def check(
        self, chain_pem: bytes, device: str, message: bytes, signature: bytes, at_ms: int | None = None
    ) -> None:
        """Raise :class:`SignatureError` unless ``device``'s key signed ``message`` (at ``at_ms``)."""
        leaf = self.chain(chain_pem, device)[0]
        if at_ms is not None:
            at = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC)
            if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
                raise SignatureError(
                    f"signed at {at:%Y-%m-%d %H:%M:%S}Z, outside the certificate's validity "
                    f"{leaf.not_valid_before_utc:%Y-%m-%d} .. {leaf.not_valid_after_utc:%Y-%m-%d}"
                )
        try:
            leaf.public_key().verify(signature, message, _ECDSA)
        except InvalidSignature:
            raise SignatureError("the signature does not match the data: changed or forged") from None
