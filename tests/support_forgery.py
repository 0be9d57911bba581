"""What an attacker holding one node makes: certificates minted in-process, a track export signed with them.

Example: ``forged = mint(Minted.load(node), "vessel-042")`` (a device certificate used as an issuer),
then ``write_track(path, "vessel-042", forged, [(t0, 0), (t0 + 1000, 1)], signed_ms=now)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ioc.cli import main as center_cli
from provisioning import pki
from provisioning.tls import TlsFiles
from sync.chain import ChainHead, canonical, sig_message
from sync.commands import Command, SignedCommand
from sync.records import TimeSource, TrackPoint, TrackSig
from sync.wire import TRACK, Batch

CLIENT = [ExtendedKeyUsageOID.CLIENT_AUTH]


@dataclass(frozen=True)
class Minted:
    """A key, its certificate and the chain above it (the certificates a signature travels with)."""

    key: ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate]

    @classmethod
    def load(cls, files: TlsFiles) -> Minted:
        """A provisioned node's own key and chain (what a stolen device holds)."""
        return cls(pki.load_private_key(files.key), pki.load_certificates(files.cert))

    @property
    def cert(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def pem(self) -> bytes:
        return pki.certificate_pem(*self.chain)


def signed_by(minted: Minted, command: Command) -> SignedCommand:
    """``command`` signed with ``minted``'s key, with its chain: what a holder of that key can send."""
    return SignedCommand(command, minted.key.sign(command.canonical(), ec.ECDSA(hashes.SHA256())), minted.pem)


def mint(
    issuer: Minted,
    cn: str,
    *,
    unit: str = pki.DEVICES_UNIT,
    ca: bool = False,
    usage: str = "leaf",
    eku: Sequence[x509.ObjectIdentifier] | None = CLIENT,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Minted:
    """A new key certified by ``issuer``'s key as ``O=Hue IOC, OU=unit, CN=cn``, with these extensions."""
    key = pki.new_key()
    start = not_before or pki.now() - dt.timedelta(minutes=5)  # backdated as pki does
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hue IOC"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    leaf = usage == "leaf"
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + dt.timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None if not ca else 0), critical=True)
        .add_extension(
            x509.KeyUsage(leaf, False, False, False, False, not leaf, not leaf, False, False), critical=True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return Minted(key, [builder.sign(issuer.key, hashes.SHA256()), *issuer.chain])


def points(times_ms: Sequence[int]) -> list[TrackPoint]:
    """Fixes at ``times_ms``, numbered from 0, moving north a little each time."""
    return [
        TrackPoint(t, TimeSource.GPS, t, i, 16.46 + i * 1e-4, 107.59, 5.0, 45.0, 1, 9, 0.9)
        for i, t in enumerate(times_ms)
    ]


def track_batches(
    device: str, epoch: str, signer: Minted, times_ms: Sequence[int], signed_ms: int
) -> list[Batch]:
    """The ``track`` and ``track_sig`` batches of a chain of ``device`` at ``times_ms``, signed once at its
    end with ``signer``'s key at ``signed_ms``, as a node sends them."""
    track = points(times_ms)
    digest = ChainHead.start(device, epoch).append(track)[-1]
    last = len(track) - 1
    message = sig_message(device, epoch, last, digest, signed_ms)
    signature = signer.key.sign(message, ec.ECDSA(hashes.SHA256()))
    return [
        Batch(device, epoch, "track", list(range(1, len(track) + 1)), track),
        Batch(device, epoch, "track_sig", [1], [
            TrackSig(times_ms[-1], TimeSource.GPS, signed_ms, last, digest, signature, signer.pem)
        ]),
    ]  # fmt: skip


def write_track(path: Path, device: str, signer: Minted, times_ms: Sequence[int], signed_ms: int) -> Path:
    """A whole chain ``0000000000000001`` of ``device`` at ``times_ms``, signed once at its end with
    ``signer``'s key at ``signed_ms``, written as ``ioc-edge track export`` writes it."""
    from sync.trackfile import TrackFileWriter

    epoch = "0000000000000001"
    head = ChainHead.start(device, epoch)
    track = points(times_ms)
    hashes_ = head.append(track)
    last = len(track) - 1
    signature = signer.key.sign(
        sig_message(device, epoch, last, hashes_[-1], signed_ms), ec.ECDSA(hashes.SHA256())
    )
    header = {
        "device": device, "chain": epoch, "columns": list(TRACK.names), "first_idx": 0,
        "prev_hash": ChainHead.start(device, epoch).hash.hex(), "certificates": [signer.pem.decode()],
        "signatures": [{"idx": last, "signed_ms": signed_ms, "hash": hashes_[-1].hex(),
                        "signature": signature.hex(), "cert": 0}],
        "from_ms": times_ms[0], "to_ms": times_ms[-1], "exported_ms": signed_ms,
    }  # fmt: skip
    with TrackFileWriter(path, header) as out:
        out.write(canonical(track), b"".join(hashes_))
    return path


def verify_cli(*args: str) -> tuple[int, str]:
    """``ioc-center track verify ARGS``: its exit code and output (stdout and stderr)."""
    result = CliRunner().invoke(center_cli, ["track", "verify", *args], catch_exceptions=False)
    return result.exit_code, result.output
