"""Keys, certificate requests, certificates and revocation lists, with the ``cryptography`` library.

The IOC's trust has three levels::

    IOC device CA (root, 20 years)            ioc-center ca init
      ├── signer "alice" (CA, pathlen 0)      ioc-center ca issue-signer alice
      │     └── device "vessel-042"           ioc-edge provision (the device's own key, never copied)
      └── the broker's server certificate     ioc-center broker-config

A signer is a technician's credential: an intermediate CA that may sign only client certificates
(its extended key usage is clientAuth, so nothing it signs passes as a server) for at most its
**signing window** (``PrivateKeyUsagePeriod``, 30 days by default). Its certificate itself lasts
the window plus the devices' lifetime, because TLS refuses a chain with an expired link: a device
certified on the window's last day stays valid until its own end.

Keys are ECDSA P-256 (small, fast on a Pi, accepted by every TLS stack); private keys are written
``0600`` by :func:`write_private_key` and never logged.

Example::

    >>> key = new_key()
    >>> root = make_root(key, "Hue IOC", days=30)
    >>> root.subject.rfc4514_string()
    'CN=Hue IOC device CA,O=Hue IOC'
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.errors import PkiError
from sync.wire import DEVICE_RE

__all__ = [
    "DEVICE_ID",
    "PkiError",
    "Revoked",
    "certificate_pem",
    "common_name",
    "device_csr",
    "issue_leaf",
    "issue_signer",
    "load_certificates",
    "load_private_key",
    "make_crl",
    "make_root",
    "new_key",
    "sign_device",
    "write_private_key",
    "write_public",
]

DEVICE_ID = DEVICE_RE
"""What a device id may be (``node.device_id``): it becomes the certificate's CN and MQTT username."""

DEVICES_UNIT = "devices"
"""The organizational unit of device certificates (and of nothing else)."""

_SIG = hashes.SHA256()
BACKDATE = dt.timedelta(minutes=5)  # a node whose clock runs a little behind still accepts a new cert


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


# -- files -----------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file with ``mode`` (never wider), then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: 0600 from the start
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write ``key`` (PEM, PKCS#8, unencrypted) to ``path`` with mode 0600, atomically."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomic(path, pem, 0o600)


def write_public(path: Path, data: bytes) -> None:
    """Write public material (certificates, requests, lists, configs) with mode 0644, atomically."""
    _write_atomic(path, data, 0o644)


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The EC private key in ``path``; raises :class:`PkiError` naming the file otherwise."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise PkiError(f"{path}: private key not found") from None
    except PermissionError:
        raise PkiError(f"{path}: private key not readable by this user") from None
    except (ValueError, TypeError):
        raise PkiError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path}: not an EC private key")
    return key


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in the PEM file ``path`` (a chain: the leaf first); at least one."""
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except FileNotFoundError:
        raise PkiError(f"{path}: certificate not found") from None
    except ValueError:
        raise PkiError(f"{path}: not a PEM certificate") from None
    return certs


def certificate_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else ""


def _ski(public_key) -> x509.SubjectKeyIdentifier:  # noqa: ANN001 - any public key type
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _builder(subject: x509.Name, issuer: x509.Name, public_key, start: dt.datetime, end: dt.datetime):  # noqa: ANN001, ANN202
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(end)
        .add_extension(_ski(public_key), critical=False)
    )


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


# -- issuing ---------------------------------------------------------------------------------------


def make_root(
    key: ec.EllipticCurvePrivateKey, org: str, days: int = 20 * 365, label: str = "device CA"
) -> x509.Certificate:
    """A self-signed CA certificate ``CN=<org> <label>, O=<org>`` for ``key``."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{org} {label}"),
        ]
    )
    start = now()
    return (
        _builder(name, name, key.public_key(), start, start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(key, _SIG)
    )


def issue_signer(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    name: str,
    signing_days: int,
    device_days: int,
) -> x509.Certificate:
    """A technician's signing certificate: CA with pathlen 0, clientAuth only, a signing window.

    It may certify devices for ``signing_days`` (``PrivateKeyUsagePeriod``); the certificate lasts
    ``signing_days + device_days`` so that the last device it certifies keeps a valid chain.
    """
    start = now()
    window_end = start + dt.timedelta(days=signing_days)
    subject = x509.Name(
        [
            *ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "signers"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    end = min(window_end + dt.timedelta(days=device_days), ca.not_valid_after_utc)
    return (
        _builder(subject, ca.subject, public_key, start, end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.PrivateKeyUsagePeriod(start - BACKDATE, window_end), critical=False)
        .add_extension(_aki(ca), critical=False)
        .sign(ca_key, _SIG)
    )


def issue_leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    common: str,
    *,
    unit: str,
    days: int,
    server_names: Iterable[str] = (),
) -> x509.Certificate:
    """A certificate signed directly by ``ca``: a server's (with ``server_names``) or a client's."""
    subject = x509.Name(
        [
            *ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )
    start = now()
    builder = (
        _builder(
            subject,
            ca.subject,
            public_key,
            start,
            min(start + dt.timedelta(days=days), ca.not_valid_after_utc),
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_USAGE, critical=True)
        .add_extension(_aki(ca), critical=False)
    )
    names = list(server_names)
    if names:
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    return builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).sign(ca_key, _SIG)


def device_csr(key: ec.EllipticCurvePrivateKey, device_id: str, site: str) -> x509.CertificateSigningRequest:
    """The device's certificate request: ``CN=<device id>``, ``L=<site>`` (when there is one)."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, device_id)]
    if site:
        attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, site))
    return x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, _SIG)


@dataclass(frozen=True)
class DeviceRequest:
    """What a signer accepted from a certificate request."""

    device_id: str
    site: str


def check_device_csr(csr: x509.CertificateSigningRequest) -> DeviceRequest:
    """The device id and site a request names; raises :class:`PkiError` when it is not a device's."""
    if not csr.is_signature_valid:
        raise PkiError("the certificate request's signature does not verify: it was not made with its key")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
        raise PkiError("the certificate request's key is not an EC key")
    device = common_name(csr.subject)
    if not DEVICE_ID.fullmatch(device):
        raise PkiError(f"the request's CN {device!r} is not a device id ({DEVICE_ID.pattern})")
    sites = csr.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)
    site = str(sites[0].value) if sites else ""
    return DeviceRequest(device, site)


def signing_window(signer: x509.Certificate) -> tuple[dt.datetime, dt.datetime]:
    """When ``signer`` may certify devices (its ``PrivateKeyUsagePeriod``, else its validity)."""
    try:
        period = signer.extensions.get_extension_for_class(x509.PrivateKeyUsagePeriod).value
    except x509.ExtensionNotFound:
        return signer.not_valid_before_utc, signer.not_valid_after_utc
    start = (period.not_before or signer.not_valid_before_utc).replace(tzinfo=dt.UTC)
    end = (period.not_after or signer.not_valid_after_utc).replace(tzinfo=dt.UTC)
    return start, end


def sign_device(
    csr: x509.CertificateSigningRequest,
    signer: x509.Certificate,
    signer_key: ec.EllipticCurvePrivateKey,
    days: int,
) -> x509.Certificate:
    """Certify the device of ``csr`` (``O=<org>, OU=devices, CN=<device id>, L=<site>``).

    Valid for ``days``, never beyond the signer's own validity. Raises :class:`PkiError` for a
    request that is not a device's or a signer outside its signing window.
    """
    request = check_device_csr(csr)
    start, end = signing_window(signer)
    t = now()
    if not start <= t <= end:
        raise PkiError(
            f"signer {common_name(signer.subject)!r} may sign from {start:%Y-%m-%d} to {end:%Y-%m-%d} only"
        )
    attrs = [
        *signer.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEVICES_UNIT),
        x509.NameAttribute(NameOID.COMMON_NAME, request.device_id),
    ]
    if request.site:
        attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, request.site))
    return (
        _builder(
            x509.Name(attrs),
            signer.subject,
            csr.public_key(),
            t,
            min(t + dt.timedelta(days=days), signer.not_valid_after_utc),
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(_aki(signer), critical=False)
        .sign(signer_key, _SIG)
    )


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``cert`` (names and signature)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# -- revocation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revoked:
    """One revoked certificate: its serial and when it was revoked."""

    serial: int
    at: dt.datetime


def make_crl(
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    revoked: Iterable[Revoked],
    number: int,
    days: int,
) -> x509.CertificateRevocationList:
    """A CRL of ``issuer`` listing ``revoked``, valid for ``days`` (a broker refuses all once it expires)."""
    t = now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(t - BACKDATE)
        .next_update(t + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_aki(issuer), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.at).build()
        )
    return builder.sign(issuer_key, _SIG)


def crl_entries(crl: x509.CertificateRevocationList) -> list[Revoked]:
    return [Revoked(r.serial_number, r.revocation_date_utc) for r in crl]


def crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0
