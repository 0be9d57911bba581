"""Revocation for signature checks: which certificates of a validated chain were revoked, and when.

The CA directory's ``devices-crl.pem`` holds every device-side CRL in one file (the device CA's,
then each signer's: ``ioc.ca``). A CRL counts only once its issuer's key verifies it, and the
issuer is a certificate of the validated path (or the CA): a list a node made up names nothing.
Whether a revocation voids a signature depends on when it was made (``SignatureChecker``).

Example::

    crls = CrlFile(Path("/var/lib/ioc/ca/devices-crl.pem"))
    crls.revocations().revoked_at(device_cert, signer_cert)    # datetime, or None
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provisioning.errors import PkiError

__all__ = ["CrlFile", "Revocations", "load_crls"]

log = logging.getLogger(__name__)

RELOAD_S = 5.0
"""How often a running centre looks at the CRL file's mtime: a revocation takes effect within it."""
_PEM = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def load_crls(data: bytes, name: str) -> list[x509.CertificateRevocationList]:
    """Every CRL of the PEM text ``data`` (of file ``name``); :class:`PkiError` when there is none."""
    try:
        crls = [x509.load_pem_x509_crl(block) for block in _PEM.findall(data)]
    except ValueError:
        raise PkiError(f"{name}: a CRL in it is corrupt; sign them again: ioc-center ca crl") from None
    if not crls:
        raise PkiError(f"{name}: no CRL in it; the CA directory's devices-crl.pem holds them")
    return crls


class Revocations:
    """The revoked certificates listed by ``crls``, each list trusted once its issuer's key verifies it.

    Example::

        Revocations(load_crls(pem, "devices-crl.pem")).revoked_at(cert, issuer)
    """

    def __init__(self, crls: Sequence[x509.CertificateRevocationList]) -> None:
        self._by_issuer: dict[bytes, list[x509.CertificateRevocationList]] = {}
        for crl in crls:
            self._by_issuer.setdefault(crl.issuer.public_bytes(), []).append(crl)
        self._verified: dict[tuple[int, bytes], bool] = {}

    def revoked_at(self, cert: x509.Certificate, issuer: x509.Certificate) -> dt.datetime | None:
        """When ``issuer`` revoked ``cert`` (the earliest date its lists give), or None."""
        found = []
        for crl in self._by_issuer.get(issuer.subject.public_bytes(), []):
            if not self._genuine(crl, issuer):
                continue
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None:
                found.append(entry.revocation_date_utc)
        return min(found, default=None)

    def _genuine(self, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
        key = (id(crl), issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
        if key not in self._verified:
            try:
                # The issuer's key may be one that cannot sign (X25519...): the TypeError below says so.
                self._verified[key] = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except TypeError:  # a key type a CRL cannot be signed with
                self._verified[key] = False
        return self._verified[key]


class CrlFile:
    """A PEM file of CRLs, read again when it changes (its mtime, looked at every ``every_s`` at most).

    A file that cannot be read or parsed at start raises :class:`PkiError`; later, the lists read
    last stay in force and a warning is logged (refusing every signature would not revoke more).

    Example::

        crls = CrlFile(ca.devices_crl_path)
        SignatureChecker(ca_cert, crls=crls)
    """

    def __init__(
        self, path: Path, every_s: float = RELOAD_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path, self.every_s, self._clock = Path(path), every_s, clock
        self._mtime, self._revocations = self._read()
        self._looked = clock()

    def _read(self) -> tuple[int, Revocations]:
        try:
            mtime = self.path.stat().st_mtime_ns
            data = self.path.read_bytes()
        except OSError as exc:
            raise PkiError(f"{self.path}: cannot read the CRLs: {exc.strerror or exc}") from None
        return mtime, Revocations(load_crls(data, str(self.path)))

    def revocations(self) -> Revocations:
        """The lists as the file holds them now (at most ``every_s`` old)."""
        now = self._clock()
        if now - self._looked >= self.every_s:
            self._looked = now
            try:
                if self.path.stat().st_mtime_ns != self._mtime:
                    self._mtime, self._revocations = self._read()
                    log.info("event=crl_reloaded path=%s", self.path)
            except (OSError, PkiError) as exc:
                log.warning("event=crl_unreadable path=%s detail=%s", self.path, exc)
        return self._revocations
