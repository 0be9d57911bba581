"""A node's own identity: its private key, certificate chain, the IOC's CA certificate and its last request.

The key is made on the node and never leaves it: the signer sees only the certificate request.

Example::

    identity = NodeIdentity(config.uplink.tls)
    if identity.problem("vessel-042") is not None:      # None: the current certificate is good
        identity.renew("vessel-042", "thuan-an", SigningCredential.load(Path("/media/usb/signer")))
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provisioning import pki
from provisioning.credential import SigningCredential
from provisioning.pki import PkiError
from provisioning.tls import TlsSource

__all__ = ["DEVICE_DAYS", "RENEW_DAYS", "NodeIdentity"]

DEVICE_DAYS = 3 * 365
"""Validity of a device certificate (bounded by its signer's)."""
RENEW_DAYS = 30
"""A certificate expiring within this many days is renewed by the next provisioning."""


class NodeIdentity:
    """The files of ``[uplink.tls]`` (``ca``, ``cert``, ``key``) and the request beside the key."""

    def __init__(self, files: TlsSource) -> None:
        self.ca, self.cert, self.key = Path(files.ca), Path(files.cert), Path(files.key)
        self.csr = self.key.with_suffix(".csr")

    def certificate(self) -> x509.Certificate:
        return pki.load_certificates(self.cert)[0]

    def problem(self, device_id: str, ca: x509.Certificate | None = None) -> str | None:
        """Why the node needs a new certificate for ``device_id`` (under ``ca`` if given), or None."""
        if not self.key.exists() or not self.cert.exists() or not self.ca.exists():
            return "not provisioned yet"
        if self.key.stat().st_mode & 0o077:
            return f"the key {self.key} was readable by others: it may have leaked"
        try:
            key = pki.load_private_key(self.key)
            chain = pki.load_certificates(self.cert)
            trusted = pki.load_certificates(self.ca)[0]
        except PkiError as exc:
            return str(exc)
        leaf = chain[0]
        if leaf.public_key() != key.public_key():
            return f"{self.cert} is not the certificate of {self.key}"
        if pki.common_name(leaf.subject) != device_id:
            return f"the certificate is for device {pki.common_name(leaf.subject)!r}"
        if ca is not None and ca != trusted:
            return f"the node trusts another CA ({trusted.subject.rfc4514_string()})"
        if len(chain) < 2 or not pki.issued_by(leaf, chain[1]) or not pki.issued_by(chain[1], trusted):
            return f"{self.cert} does not chain to {self.ca}"
        if leaf.not_valid_after_utc < pki.now() + dt.timedelta(days=RENEW_DAYS):
            return f"the certificate expires on {leaf.not_valid_after_utc:%Y-%m-%d}"
        return None

    def renew(
        self, device_id: str, site: str, credential: SigningCredential, days: int = DEVICE_DAYS
    ) -> x509.Certificate:
        """A new key, request and certificate for ``device_id`` at ``site``, signed by ``credential``.

        The certificate and CA are written before the key: a node cut off in between keeps its old
        key and a certificate that does not match it, which the next provisioning detects and redoes.
        """
        key = pki.new_key()
        csr = pki.device_csr(key, device_id, site)
        pki.write_public(self.csr, csr.public_bytes(serialization.Encoding.PEM))
        cert = credential.sign(csr, days)
        pki.write_public(self.ca, pki.certificate_pem(credential.ca))
        pki.write_public(self.cert, credential.chain(cert))
        pki.write_private_key(self.key, key)
        return cert
