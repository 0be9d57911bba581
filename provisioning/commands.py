"""Command signing: the centre signs its commands to nodes, a node runs only what it can verify.

The broker and its ACL are one line of defence, not the only one: a command counts only when it is
signed by a **command signer**, a certificate the IOC's device CA issues for that purpose alone
(``ioc-center ca command-signer``): not a CA, digitalSignature only, its one extended key usage
:data:`COMMAND_SIGNING`, ``OU=command-signers``, issued by the CA itself. A device's certificate, a
technician's signer or the broker's certificate cannot sign a command, and neither can a
certificate a technician's signer minted with that usage (such a signer is trusted to certify
devices only). The signature is ECDSA P-256 / SHA-256 (DER) over the command's canonical text
(``sync.commands``); the chain travels with it, so a node needs only its CA certificate.

Warnings (commands of kind ``warning``, which sound sirens) are signed by a **warning signer**
instead (``ioc-center ca warning-signer``: ``OU=warning-signers``, :data:`WARNING_SIGNING`), and
only by one: each credential signs the kinds made for it (:func:`purpose_of`).

A node checks the chain at its own time: a node whose clock was never set cannot tell a valid
certificate from an expired one, and refuses (``untrusted``) until it can. Replays are the
node's to refuse (a seq it has run, an epoch not its store's): :class:`CommandVerifier` answers
whether the centre's signer issued this command for this device and it has not expired.

Example::

    signer = CommandSigner.load(Path("centre.key"), Path("centre.crt"))
    signed = signer.sign(command)                               # at the centre
    CommandVerifier(ca_cert, "vessel-042").verify(signed, now_ms)   # on the node: the Command
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.clock import SANE_WALL_MS
from common.errors import IocEdgeError
from provisioning import pki, trust
from sync.commands import Command, SignedCommand

__all__ = [
    "COMMAND_SIGNER",
    "COMMAND_SIGNING",
    "WARNING_SIGNER",
    "WARNING_SIGNING",
    "CommandRefused",
    "CommandSigner",
    "CommandVerifier",
    "issue_command_signer",
    "purpose_of",
]

COMMAND_SIGNING = x509.ObjectIdentifier("2.25.62971358531637551199880080299825013691")
"""The extended key usage of a command signer (an OID under 2.25, made from a random UUID)."""
COMMAND_SIGNERS_UNIT = "command-signers"

COMMAND_SIGNER = trust.Purpose(
    "a command signer",
    "a command signer",
    COMMAND_SIGNERS_UNIT,
    COMMAND_SIGNING,
    "commandSigning",
    by_ca=True,
)
"""The path validation's profile of a command signer's certificate (:func:`provisioning.trust.validate`)."""

WARNING_SIGNING = x509.ObjectIdentifier("2.25.166301790362959823924638069333190068847")
"""The extended key usage of a warning signer (an OID under 2.25, made from a random UUID)."""
WARNING_SIGNER = trust.Purpose(
    "a warning signer",
    "a warning signer",
    "warning-signers",
    WARNING_SIGNING,
    "warningSigning",
    by_ca=True,
)
"""The profile of a warning signer's certificate: the credential that alone may make a siren sound."""
SIGNERS = (COMMAND_SIGNER, WARNING_SIGNER)


def purpose_of(kind: str) -> trust.Purpose:
    """The credential a command of ``kind`` must be signed by: a warning (``warning``, ``warning.*``)
    by a warning signer, every other kind by a command signer. Each credential is for its purpose
    alone: a stolen command signer cannot sound a siren, nor a warning signer restart a node.

    >>> purpose_of("warning").unit, purpose_of("restart").unit
    ('warning-signers', 'command-signers')
    """
    return WARNING_SIGNER if kind == "warning" or kind.startswith("warning.") else COMMAND_SIGNER


_ECDSA = ec.ECDSA(hashes.SHA256())


class CommandRefused(IocEdgeError, ValueError):
    """A command a node must not run; ``reason`` is the counter it goes under (snake_case)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def issue_command_signer(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    name: str,
    days: int = 365,
    purpose: trust.Purpose = COMMAND_SIGNER,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and its signing certificate for ``purpose`` (``OU=command-signers, CN=<name>`` by
    default; :data:`WARNING_SIGNER`: ``OU=warning-signers``), from the CA.

    Valid for ``days``, never beyond the CA's own validity.
    """
    key = pki.new_key()
    subject = x509.Name(
        [
            *ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, purpose.unit),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    start = pki.now()
    end = min(start + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        pki._builder(subject, ca_cert.subject, key.public_key(), start, end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(pki._LEAF_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose.usage]), critical=False)
        .add_extension(pki._aki(ca_cert), critical=False)
        .sign(ca_key, pki._SIG)
    )
    return key, cert


class CommandSigner:
    """The centre's command-signing key and its chain; signs each command for its device.

    Example::

        signer = CommandSigner.load(Path("/var/lib/ioc/ca/command-signers/centre.key"),
                                    Path("/var/lib/ioc/ca/command-signers/centre.crt"))
        payload = encode_command(signer.sign(command))
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate]) -> None:
        if not chain or chain[0].public_key() != key.public_key():
            raise pki.PkiError("the certificate is not the certificate of the command signer's key")
        usages = _usages(chain[0])
        purpose = next((p for p in SIGNERS if p.usage in usages), None)
        if purpose is None:
            raise pki.PkiError(
                f"the certificate {trust.describe(chain[0])} is not a command signer's or a warning signer's"
            )
        self._key = key
        self.purpose = purpose
        self.name = pki.common_name(chain[0].subject)
        self.chain_pem = pki.certificate_pem(*chain)

    @classmethod
    def load(cls, key: Path, cert: Path) -> CommandSigner:
        """The signer of a key file and its certificate file (the leaf first); :class:`PkiError` naming
        the file that is missing, unreadable or unfit."""
        signer_key, chain = pki.load_private_key(Path(key)), pki.load_certificates(Path(cert))
        try:
            return cls(signer_key, chain)
        except pki.PkiError as exc:
            raise pki.PkiError(f"{cert}: {exc}") from None

    def sign(self, command: Command) -> SignedCommand:
        """``command`` signed; :class:`PkiError` for a kind another credential signs (:func:`purpose_of`)."""
        if purpose_of(command.kind) != self.purpose:
            raise pki.PkiError(f"{self.purpose.what} does not sign a {command.kind!r} command")
        return SignedCommand(command, self._key.sign(command.canonical(), _ECDSA), self.chain_pem)

    def __repr__(self) -> str:  # never the key
        return f"CommandSigner(name={self.name!r})"


class CommandVerifier:
    """What a node runs: commands for ``device`` signed by a command signer of ``ca``, not expired.

    :meth:`verify` raises :class:`CommandRefused` with ``reason``, checked in this order:
    ``unsigned`` (no signature or no chain), ``not_a_command_signer`` (the leaf lacks
    :data:`COMMAND_SIGNING`: a device's certificate, a technician's signer, the broker's, a warning
    signer's), ``not_a_warning_signer`` (a ``warning`` command whose leaf lacks :data:`WARNING_SIGNING`:
    a command signer cannot sound a siren),
    ``untrusted`` (no valid path from the leaf to ``ca`` at ``now_ms``: another CA, expired, not
    issued by the CA itself, the node's clock not set), ``bad_signature``, ``other_device``,
    ``expired`` (``now_ms >= expires_ms``). The last two are about a genuine command.

    Example::

        verifier = CommandVerifier(pki.load_certificates(Path("/etc/ioc-edge/ca.crt"))[0], "vessel-042")
        command = verifier.verify(decode_command(payload), clock_ms)
    """

    def __init__(self, ca: x509.Certificate, device: str) -> None:
        self.ca, self.device = ca, device
        # one chain per purpose in practice: the centre's command signer and its warning signer
        self._paths: dict[tuple[str, bytes], trust.TrustedPath] = {}

    def verify(self, signed: SignedCommand, now_ms: int) -> Command:
        command = signed.command
        if not signed.signature or not signed.chain_pem:
            raise CommandRefused("unsigned", f"command {command.seq} came without a signature or chain")
        key = self._signer_key(signed.chain_pem, now_ms, purpose_of(command.kind))
        try:
            key.verify(signed.signature, command.canonical(), _ECDSA)
        except InvalidSignature:
            raise CommandRefused(
                "bad_signature", "the signature does not match the command: changed or forged"
            ) from None
        if command.device != self.device:
            raise CommandRefused(
                "other_device", f"command {command.seq} is for {command.device!r}, not {self.device!r}"
            )
        if now_ms >= command.expires_ms:
            raise CommandRefused("expired", f"command {command.seq} expired at {_when(command.expires_ms)}")
        return command

    def _signer_key(self, chain_pem: bytes, now_ms: int, purpose: trust.Purpose) -> ec.EllipticCurvePublicKey:
        """The key of the chain's leaf once its path to the CA holds at ``now_ms`` for ``purpose``."""
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            raise CommandRefused("untrusted", "the certificate chain is not PEM certificates") from None
        leaf = chain[0]
        usages = _usages(leaf)
        if purpose.usage not in usages:
            names = ", ".join(u._name for u in usages) or "none"
            raise CommandRefused(
                f"not_{purpose.what.replace(' ', '_')}",  # not_a_command_signer, not_a_warning_signer
                f"the certificate {trust.describe(leaf)} is not {purpose.what}'s (its usage: {names})",
            )
        if now_ms < SANE_WALL_MS:
            raise CommandRefused(
                "untrusted", f"the node's clock is not set ({_when(now_ms)}): no certificate can be checked"
            )
        at = _time(now_ms)
        path = self._paths.get((purpose.unit, chain_pem))
        if path is None or not path.holds_at(at):
            try:
                path = trust.validate(self.ca, chain, None, at, purpose)
            except trust.SignatureError as exc:
                raise CommandRefused("untrusted", str(exc)) from None
            others = {k: v for k, v in self._paths.items() if k[0] != purpose.unit}
            self._paths = others | {(purpose.unit, chain_pem): path}  # the newest chain of each purpose
        key = path.certs[0].public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise CommandRefused("untrusted", f"{purpose.what}'s key is {type(key).__name__}, not ECDSA")
        return key


def _usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except (x509.ExtensionNotFound, ValueError):  # ValueError: an extension that does not parse
        return []


def _time(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _when(ms: int) -> str:
    return f"{_time(ms):%Y-%m-%d %H:%M:%S}Z"
