"""The technician's signing credential: certifies devices in the field, offline.

A credential is a directory written by ``ioc-center ca issue-signer NAME``::

    signer.key      the signer's private key (0600)
    signer.crt      its certificate (an intermediate CA, pathlen 0, clientAuth only)
    ca.crt          the IOC's device CA, which devices trust for the broker's certificate
    issued/         every device certificate it signed (the IOC imports them: ``ioc-center ca import``)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning import pki
from provisioning.pki import PkiError

__all__ = ["SigningCredential"]

KEY, CERT, CA = "signer.key", "signer.crt", "ca.crt"


class SigningCredential:
    """A signer's key and certificate and the CA above it, checked when loaded.

    Example::

        credential = SigningCredential.load(Path("/media/usb/signer-alice"))
        cert = credential.sign(csr, days=1095)       # the device's certificate
        chain = credential.chain(cert)               # what the device presents: its cert, then the signer's

    :meth:`load` raises :class:`~provisioning.pki.PkiError` naming the file and what is wrong.
    """

    def __init__(
        self, path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, ca: x509.Certificate
    ):
        self.path, self.key, self.cert, self.ca = path, key, cert, ca

    @property
    def name(self) -> str:
        return pki.common_name(self.cert.subject)

    @classmethod
    def load(cls, path: Path) -> SigningCredential:
        if not path.is_dir():
            raise PkiError(f"{path}: no signing credential here (a directory with {KEY}, {CERT}, {CA})")
        cert = pki.load_certificates(path / CERT)[0]
        ca = pki.load_certificates(path / CA)[0]
        key = pki.load_private_key(path / KEY)
        if cert.public_key() != key.public_key():
            raise PkiError(f"{path / KEY}: not the key of {path / CERT}")
        if not pki.issued_by(cert, ca):
            raise PkiError(f"{path / CERT}: not issued by the CA in {path / CA}")
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            raise PkiError(f"{path / CERT}: not a signing certificate (it is not a CA)")
        start, end = pki.signing_window(cert)
        t = pki.now()
        if not start <= t <= end:
            raise PkiError(
                f"{path}: signer {pki.common_name(cert.subject)!r} may sign from {start:%Y-%m-%d} to "
                f"{end:%Y-%m-%d} only; ask the IOC for a new one (ioc-center ca issue-signer)"
            )
        return cls(path, key, cert, ca)

    @property
    def signs_until(self) -> dt.datetime:
        return pki.signing_window(self.cert)[1]

    def sign(self, csr: x509.CertificateSigningRequest, days: int) -> x509.Certificate:
        """Certify the device of ``csr``; a copy goes to ``issued/`` when the directory is writable."""
        cert = pki.sign_device(csr, self.cert, self.key, days)
        try:
            device = pki.common_name(cert.subject)
            pki.write_public(
                self.path / "issued" / f"{device}-{cert.serial_number:x}.crt", pki.certificate_pem(cert)
            )
        except OSError:
            pass  # a write-protected medium: the certificate is good; the IOC imports it from the device
        return cert

    def chain(self, cert: x509.Certificate) -> bytes:
        """The PEM chain a device presents: its certificate, then its signer's (the broker has the CA)."""
        return pki.certificate_pem(cert, self.cert)
