"""The enrolment register: the centre says which device ids exist and which certificate each holds.

A signer's credential can certify any device id, and the broker accepts whatever chains to the CA
(OpenSSL ignores a signer's signing window). So an operator enrols each device certificate the
technician brings back (``ioc-center device enrol CA/signers/alice/issued``); the receiver refuses
batches of a device id the register does not know (``not_enrolled``) or has revoked (``revoked``),
and the signature checks accept a signed record only with a certificate the register holds for its
device, in force when it signed (:meth:`CachedRegister.enrolled`).

A device id holds one active certificate. Another certificate for an active id is refused unless
the operator says it replaces the first (``--replace``: the node was provisioned again with
``ioc-edge provision --rotate``). A certificate is checked before it is enrolled: issued by a
signer this CA keeps, its path to the device CA valid now as a signature's must be
(:func:`provisioning.trust.validate`: a device certificate, CA flags and key usage, each link
issued inside its issuer's signing window), and not in the signer's CRL.

Example::

    register = Register(Database("sqlite:///ioc.db"))
    register.enrol(pki.load_certificates(Path("vessel-042-1f.crt"))[0], CertificateAuthority(ca_dir))
    register.serial_of("vessel-042")             # -> 0x1f..., or None when not enrolled
    register.revoke("vessel-042")                # its batches are refused from now on
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from common.errors import IocEdgeError
from ioc.ca import CertificateAuthority
from ioc.db import Database, now_ms
from provisioning import pki, trust
from provisioning.signing import Enrolled

__all__ = ["CACHE_S", "CachedRegister", "Enrolment", "EnrolmentError", "Register", "check_device_certificate"]

ACTIVE, REVOKED, REPLACED = "active", "revoked", "replaced"
CACHE_S = 5.0
"""How long the receiver trusts what it read of the register: a revocation takes effect within it."""
_CACHED = 4096
"""Device ids a :class:`CachedRegister` remembers before it forgets the stale ones (the broker's ACL lets a
device send only under its own id, so this is the fleet's size, not an attacker's choice)."""
_COLUMNS = (
    "device, serial, issuer, signer, not_before_ms, not_after_ms, status, enrolled_ms, revoked_ms, "
    "enrolled_by"
)

_LATEST_FIRST = (
    "CASE WHEN status = 'active' THEN 0 ELSE 1 END, COALESCE(revoked_ms, enrolled_ms) DESC, "
    "enrolled_ms DESC, CASE WHEN status = 'revoked' THEN 0 ELSE 1 END, serial"
)
"""A device's certificates, the one in force first, then the one that stopped counting last (within one
millisecond: the one enrolled last; a revocation before a replacement)."""


class EnrolmentError(IocEdgeError, ValueError):
    """A certificate the register refuses, or a device it does not hold; the message says what to do."""


@dataclass(frozen=True)
class Enrolment:
    """One certificate in the register: whose, from which signer, valid when, and its status."""

    device: str
    serial: int
    issuer: str
    signer: str
    not_before_ms: int
    not_after_ms: int
    status: str
    enrolled_ms: int
    revoked_ms: int | None
    enrolled_by: str

    @classmethod
    def from_row(cls, row: dict) -> Enrolment:
        return cls(**{**row, "serial": int(row["serial"], 16)})

    def as_enrolled(self) -> Enrolled:
        """What a signature check needs of it: its serial, and when and how it stopped counting."""
        return Enrolled(self.serial, self.revoked_ms, self.status == REVOKED)


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def check_device_certificate(cert: x509.Certificate, ca: CertificateAuthority) -> str:
    """The name of the signer of ``cert`` once checked (see the module's docstring), else EnrolmentError."""
    device = pki.common_name(cert.subject)
    if not pki.DEVICE_ID.fullmatch(device):
        raise EnrolmentError(
            f"its CN {device!r} is not a device id ({cert.subject.rfc4514_string()}); give the node.crt "
            "of a provisioned node or a certificate from a signer's issued/"
        )
    signers = ca.signers()
    name = next((n for n, s in signers.items() if pki.issued_by(cert, s.cert)), None)
    if name is None:
        raise EnrolmentError(
            f"not issued by a signer of the CA in {ca.path} (its issuer: {cert.issuer.rfc4514_string()}; "
            f"signers: {', '.join(signers) or 'none'}); a revoked signer's devices are provisioned again "
            "with another (ioc-edge provision --rotate)"
        )
    signer = signers[name]
    try:
        # The signatures' own path rules (device profile, CA flags, signing window), valid now.
        trust.validate(ca.device_ca().cert, [cert, signer.cert], device, pki.now())
    except trust.SignatureError as exc:
        raise EnrolmentError(str(exc)) from None
    revoked = {r.serial: r.at for r in signer.revoked()}
    if cert.serial_number in revoked:
        raise EnrolmentError(
            f"revoked on {revoked[cert.serial_number]:%Y-%m-%d} in the CRL of signer {name!r}; provision the "
            "device again (ioc-edge provision --rotate) and enrol its new certificate"
        )
    return name


class Register:
    """The enrolment register in the centre's database (see the module's docstring).

    Example::

        register = Register(db)
        register.enrol(cert, ca, replace=True, by="lan")   # after ioc-edge provision --rotate
        [e.device for e in register.active()]
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def enrol(
        self, cert: x509.Certificate, ca: CertificateAuthority, *, replace: bool = False, by: str = ""
    ) -> bool:
        """Enrol ``cert`` after checking it against ``ca``; False when it was already the active one.

        Raises :class:`EnrolmentError` for a certificate that is not fit, one enrolled before and
        since revoked or replaced, or another certificate for a device id that holds an active one
        (unless ``replace``: that one becomes ``replaced``).
        """
        signer = check_device_certificate(cert, ca)
        device, serial, issuer = (
            pki.common_name(cert.subject),
            f"{cert.serial_number:x}",
            cert.issuer.rfc4514_string(),
        )
        now = now_ms()
        with self.db.transaction() as cur:
            cur.execute("SELECT status FROM enrolments WHERE issuer = ? AND serial = ?", [issuer, serial])
            known = cur.fetchone()
            if known and known[0] == ACTIVE:
                return False
            if known:
                raise EnrolmentError(
                    f"certificate {serial} of {device} was {known[0]}: a certificate is never enrolled "
                    "again; provision the device again (ioc-edge provision --rotate) and enrol the new one"
                )
            cur.execute("SELECT serial FROM enrolments WHERE device = ? AND status = ?", [device, ACTIVE])
            active = cur.fetchone()
            if active and not replace:
                raise EnrolmentError(
                    f"{device} is in service with certificate {active[0]}: a second certificate for it is "
                    "refused; if the node was provisioned again (--rotate), enrol it with --replace"
                )
            if active:
                cur.execute(
                    "UPDATE enrolments SET status = ?, revoked_ms = ? WHERE device = ? AND status = ?",
                    [REPLACED, now, device, ACTIVE],
                )
            cur.execute(
                f"INSERT INTO enrolments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    device,
                    serial,
                    issuer,
                    signer,
                    _ms(cert.not_valid_before_utc),
                    _ms(cert.not_valid_after_utc),
                ]
                + [ACTIVE, now, None, by],
            )
        return True

    def revoke(self, device: str) -> Enrolment:
        """Revoke ``device``'s active certificate in the register; it, as now revoked.

        Raises :class:`EnrolmentError` when the device holds no active certificate.
        """
        changed = self.db.execute(
            "UPDATE enrolments SET status = ?, revoked_ms = ? WHERE device = ? AND status = ?",
            [REVOKED, now_ms(), device, ACTIVE],
        )
        found = self.get(device)
        if found is None or not changed:
            state = f"its latest certificate is {found.status}" if found else "it was never enrolled"
            raise EnrolmentError(f"{device} holds no active certificate ({state}): nothing to revoke")
        return found

    def get(self, device: str) -> Enrolment | None:
        """``device``'s active certificate, else the one that stopped counting last, else None."""
        return next(iter(self.certificates(device)), None)

    def certificates(self, device: str) -> list[Enrolment]:
        """Every certificate ever enrolled for ``device``, the one in force first."""
        rows = self.db.fetch(
            f"SELECT {_COLUMNS} FROM enrolments WHERE device = ? ORDER BY {_LATEST_FIRST}", [device]
        )
        return [Enrolment.from_row(r) for r in rows]

    def entries(self) -> list[Enrolment]:
        """Every certificate ever enrolled, per device, the active one first, then the latest to stop."""
        rows = self.db.fetch(f"SELECT {_COLUMNS} FROM enrolments ORDER BY device, {_LATEST_FIRST}")
        return [Enrolment.from_row(r) for r in rows]

    def active(self) -> list[Enrolment]:
        return [e for e in self.entries() if e.status == ACTIVE]

    def serial_of(self, device: str) -> int | None:
        """The serial of ``device``'s active certificate; None when it holds none."""
        found = self.get(device)
        return found.serial if found and found.status == ACTIVE else None


class CachedRegister:
    """What the register holds for a device id, read at most every ``cache_s`` per device.

    The receiver asks per message; the register is read once per device per ``cache_s``, so a
    revocation takes effect within that time. ``refusal`` is the reject reason, or None;
    ``enrolled`` what a signature check of the device's records needs. Neither may be called inside
    a transaction of the same :class:`Database`: its connection is held alone.

    Example::

        cached = CachedRegister(Register(db))
        cached.refusal("vessel-042")     # None, "not_enrolled" or "revoked"
    """

    def __init__(
        self, register: Register, cache_s: float = CACHE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.register, self.cache_s, self._clock = register, cache_s, clock
        self._seen: dict[str, tuple[float, list[Enrolment]]] = {}

    def _lookup(self, device: str) -> list[Enrolment]:
        now = self._clock()
        cached = self._seen.get(device)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        found = self.register.certificates(device)
        if len(self._seen) >= _CACHED:
            self._seen = {d: seen for d, seen in self._seen.items() if now - seen[0] < self.cache_s}
        self._seen[device] = (now, found)
        return found

    def refusal(self, device: str) -> str | None:
        found = self._lookup(device)
        if not found:
            return "not_enrolled"
        return None if found[0].status == ACTIVE else "revoked"

    def enrolled(self, device: str) -> list[Enrolled]:
        """``device``'s certificates as the signature checks take them (:class:`Enrolled`)."""
        return [e.as_enrolled() for e in self._lookup(device)]
