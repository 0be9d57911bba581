"""The IOC's certificate authorities: devices' trust, technicians' signers, revocation.

A CA directory (``ioc-center ca init DIR``)::

    ca.key, ca.crt, ca.crl         the device CA: signs signers and the broker's server certificate
    centre/ca.key, ca.crt, ca.crl  the centre CA: signs the receivers' identities, and nothing a device holds
    signers/NAME/                  each signer: signer.key (the IOC's copy, to sign its CRL), signer.crt,
                                   signer.crl, issued/ (device certificates it signed)
    command-signers/NAME.crt       each command signer's certificate (its key is only where it was written)
    warning-signers/NAME.crt       each warning signer's certificate, likewise
    revoked-signers/NAME/          a signer cut off (``ca revoke-signer``): kept, its name never reused
    issued/                        device certificates imported from the field (``ca import``)
    devices-crl.pem                every CRL of the device side in one file: the broker's ``crlfile``

Two CAs, because mosquitto decides a client's rights from its certificate's CN alone: were the
receivers' identities under the device CA, a signer could mint a "device" named like a receiver.

A device certificate is revoked in the CRL of the signer that issued it (OpenSSL, and so
mosquitto, checks a certificate against its own issuer's CRL), which is why the IOC keeps each
signer's key. Every issuer needs a CRL in the broker's file, even an empty one, or the broker
refuses all its certificates; a CRL is valid for :data:`CRL_DAYS`: ``ioc-center ca crl`` signs
them again.

A lost or stolen signer credential is cut off with :meth:`CertificateAuthority.revoke_signer`.
mosquitto checks a device certificate against its own issuer's CRL only (OpenSSL's
``X509_V_FLAG_CRL_CHECK``, not ``CRL_CHECK_ALL``): the signer's certificate in the device CA's CRL
alone would not stop a device it certified (tests/test_revoke_signer.py shows it). What does: its
own CRL leaves the broker's file, and the broker refuses every certificate of an issuer without a
CRL, the ones a thief mints included. The signer's certificate is revoked in the device CA's CRL as
well, for verifiers that check the whole chain.

Example::

    ca = CertificateAuthority.create(Path("/var/lib/ioc/ca"), "Hue IOC")
    ca.issue_signer("alice")                      # -> /var/lib/ioc/ca/signers/alice
    ca.issue_command_signer("centre", Path("/etc/ioc"))   # the dispatcher's key and certificate
    ca.revoke("vessel-042")                       # the broker refuses it once reloaded
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning import commands, credential, pki
from provisioning.pki import PkiError, Revoked
from provisioning.trust import Purpose

__all__ = ["CRL_DAYS", "CertificateAuthority", "Issuer"]

CRL_DAYS = 365
SIGNER_NAME = pki.DEVICE_ID  # signer names share the device ids' shape: safe in file names and CNs


@dataclass
class Issuer:
    """A key and certificate that sign certificates, with the CRL file it keeps up to date."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    crl_path: Path

    @classmethod
    def load(cls, key: Path, cert: Path, crl: Path) -> Issuer:
        return cls(pki.load_private_key(key), pki.load_certificates(cert)[0], crl)

    def revoked(self) -> list[Revoked]:
        return pki.crl_entries(self._crl()) if self.crl_path.exists() else []

    def _crl(self) -> x509.CertificateRevocationList:
        return x509.load_pem_x509_crl(self.crl_path.read_bytes())

    def write_crl(self, add: Iterable[Revoked] = ()) -> None:
        number = pki.crl_number(self._crl()) + 1 if self.crl_path.exists() else 1
        crl = pki.make_crl(self.cert, self.key, self.revoked() + list(add), number, CRL_DAYS)
        pki.write_public(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))


class CertificateAuthority:
    """The IOC's CA directory (see the module's docstring); raises :class:`PkiError` on bad input."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not (self.path / "ca.crt").exists():
            raise PkiError(f"{self.path}: no CA here; create one with `ioc-center ca init {self.path}`")

    @property
    def ca_cert_path(self) -> Path:
        return self.path / "ca.crt"

    @property
    def centre_ca_cert_path(self) -> Path:
        return self.path / "centre" / "ca.crt"

    @property
    def devices_crl_path(self) -> Path:
        return self.path / "devices-crl.pem"

    @property
    def centre_crl_path(self) -> Path:
        return self.path / "centre" / "ca.crl"

    @classmethod
    def create(cls, path: Path, org: str, days: int = 20 * 365) -> CertificateAuthority:
        """A new CA directory at ``path`` (which must not hold one yet) with both CAs and empty CRLs."""
        path = Path(path)
        if (path / "ca.crt").exists() or (path / "ca.key").exists():
            raise PkiError(f"{path}: a CA exists here already; it is never overwritten")
        for sub, label in ((path, "device CA"), (path / "centre", "centre CA")):
            key = pki.new_key()
            cert = pki.make_root(key, org, days, label)
            pki.write_private_key(sub / "ca.key", key)
            pki.write_public(sub / "ca.crt", pki.certificate_pem(cert))
            Issuer(key, cert, sub / "ca.crl").write_crl()
        ca = cls(path)
        ca._write_devices_crl()
        return ca

    def device_ca(self) -> Issuer:
        return Issuer.load(self.path / "ca.key", self.path / "ca.crt", self.path / "ca.crl")

    def centre_ca(self) -> Issuer:
        c = self.path / "centre"
        return Issuer.load(c / "ca.key", c / "ca.crt", c / "ca.crl")

    def signers(self) -> dict[str, Issuer]:
        found = {}
        for d in sorted((self.path / "signers").glob("*/")):
            found[d.name] = Issuer.load(d / credential.KEY, d / credential.CERT, d / "signer.crl")
        return found

    def issue_signer(
        self, name: str, out: Path | None = None, signing_days: int = 30, device_days: int = 3 * 365
    ) -> Path:
        """A technician's credential directory (``out``, default ``signers/NAME`` here); returns it.

        The IOC keeps the signer's key and certificate in ``signers/NAME`` to sign its CRL.
        """
        if not SIGNER_NAME.fullmatch(name):
            raise PkiError(f"signer name {name!r} is not valid; expected {SIGNER_NAME.pattern}")
        home = self.path / "signers" / name
        if home.exists():
            raise PkiError(f"{home}: signer {name!r} exists; choose another name (e.g. {name}-2)")
        if (self.path / "revoked-signers" / name).exists():
            raise PkiError(
                f"signer {name!r} was revoked; its name is not used again: choose another (e.g. {name}-2)"
            )
        ca = self.device_ca()
        key = pki.new_key()
        cert = pki.issue_signer(ca.cert, ca.key, key.public_key(), name, signing_days, device_days)
        for where in dict.fromkeys([home, Path(out) if out else home]):
            pki.write_private_key(where / credential.KEY, key)
            pki.write_public(where / credential.CERT, pki.certificate_pem(cert))
            pki.write_public(where / credential.CA, pki.certificate_pem(ca.cert))
            (where / "issued").mkdir(exist_ok=True)
        Issuer(key, cert, home / "signer.crl").write_crl()
        self._write_devices_crl()
        return Path(out) if out else home

    def issue_command_signer(
        self, name: str, out: Path, days: int = 365, purpose: Purpose = commands.COMMAND_SIGNER
    ) -> tuple[Path, Path]:
        """The centre's command-signing key and certificate, ``out/NAME.key`` (0600) and ``out/NAME.crt``;
        with ``purpose`` :data:`~provisioning.commands.WARNING_SIGNER`, its warning signer's.

        The device CA issues it (``provisioning.commands``); the CA keeps the certificate in
        ``command-signers/NAME.crt`` (``warning-signers/``) and never the key. Raises
        :class:`PkiError` for a name that is not valid or was used before.
        """
        what = purpose.what.removeprefix("a ")
        if not SIGNER_NAME.fullmatch(name):
            raise PkiError(f"{what} name {name!r} is not valid; expected {SIGNER_NAME.pattern}")
        kept = self.path / purpose.unit / f"{name}.crt"
        if kept.exists():
            raise PkiError(f"{kept}: {what} {name!r} exists; choose another name (e.g. {name}-2)")
        ca = self.device_ca()
        key, cert = commands.issue_command_signer(ca.key, ca.cert, name, days, purpose)
        key_path, cert_path = Path(out) / f"{name}.key", Path(out) / f"{name}.crt"
        pki.write_private_key(key_path, key)
        pki.write_public(cert_path, pki.certificate_pem(cert))
        pki.write_public(kept, pki.certificate_pem(cert))
        return key_path, cert_path

    def import_certificates(self, paths: list[Path]) -> list[x509.Certificate]:
        """Add device certificates (files, or directories of ``*.crt``) to ``issued/``, to revoke them."""
        signers = [s.cert for s in self.signers().values()]
        added = []
        for path in paths:
            for file in sorted(Path(path).glob("*.crt")) if Path(path).is_dir() else [Path(path)]:
                cert = pki.load_certificates(file)[0]
                if not any(pki.issued_by(cert, s) for s in signers):
                    raise PkiError(f"{file}: not a device certificate issued by a signer of this CA")
                device = pki.common_name(cert.subject)
                pki.write_public(
                    self.path / "issued" / f"{device}-{cert.serial_number:x}.crt", pki.certificate_pem(cert)
                )
                added.append(cert)
        return added

    def _known_certificates(self) -> list[x509.Certificate]:
        """Device certificates signed with a signer kept here, or imported (each once)."""
        files = list(self.path.glob("signers/*/issued/*.crt")) + list(self.path.glob("issued/*.crt"))
        certs = {}
        for f in files:
            cert = pki.load_certificates(f)[0]
            certs[(cert.issuer.rfc4514_string(), cert.serial_number)] = cert
        return list(certs.values())

    def certificates_of(self, device: str) -> list[x509.Certificate]:
        """Every known certificate of ``device``: signed with a signer kept here, or imported."""
        return [c for c in self._known_certificates() if pki.common_name(c.subject) == device]

    def revoke_signer(self, name: str) -> list[str]:
        """Cut off signer ``name`` and every device it certified (see the module's docstring).

        Returns the ids of the devices known to hold its certificates (signed with this copy of
        the credential or imported): they need provisioning again with another signer. Its
        directory moves to ``revoked-signers/NAME``. Raises :class:`PkiError` for an unknown name.
        """
        if (self.path / "revoked-signers" / name).exists():
            raise PkiError(f"signer {name!r} is revoked already")
        signer = self.signers().get(name)
        if signer is None:
            known = ", ".join(self.signers()) or "none"
            raise PkiError(f"no signer {name!r} in the CA in {self.path}; its signers: {known}")
        devices = sorted(
            {pki.common_name(c.subject) for c in self._known_certificates() if pki.issued_by(c, signer.cert)}
        )
        ca = self.device_ca()
        if signer.cert.serial_number not in {r.serial for r in ca.revoked()}:
            ca.write_crl([Revoked(signer.cert.serial_number, pki.now())])
        (self.path / "revoked-signers").mkdir(exist_ok=True)
        (self.path / "signers" / name).rename(self.path / "revoked-signers" / name)
        self._write_devices_crl()
        return devices

    def revoke(self, device: str) -> list[x509.Certificate]:
        """Revoke every known certificate of ``device`` in its signer's CRL; the ones newly revoked."""
        certs = self.certificates_of(device)
        if not certs:
            raise PkiError(
                f"no certificate of device {device!r} is known to the CA in {self.path}; "
                "import the technician's issued certificates first: ioc-center ca import DIR/issued"
            )
        newly = []
        for issuer in self.signers().values():
            done = {r.serial for r in issuer.revoked()}
            mine = [c for c in certs if pki.issued_by(c, issuer.cert) and c.serial_number not in done]
            if mine:
                issuer.write_crl([Revoked(c.serial_number, pki.now()) for c in mine])
                newly += mine
        self._write_devices_crl()
        return newly

    def refresh_crls(self) -> None:
        """Sign every CRL again (their validity starts over), e.g. from a monthly timer."""
        for issuer in [self.device_ca(), self.centre_ca(), *self.signers().values()]:
            issuer.write_crl()
        self._write_devices_crl()

    def _write_devices_crl(self) -> None:
        files = [self.path / "ca.crl"] + sorted(self.path.glob("signers/*/signer.crl"))
        pki.write_public(self.devices_crl_path, b"".join(f.read_bytes() for f in files))
