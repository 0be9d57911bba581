"""Commands from the centre to a node: what one is, and how it travels on the node's command topic.

A command is signed at the centre (``provisioning.commands``) and verified by the node before it
runs; the node answers with :class:`sync.records.CommandResult` records on its alarm lane. This
module is the format only: it signs, verifies and runs nothing.

Topic (``prefix`` is ``ioc/v1`` by default)::

    {prefix}/{device}/cmd    IOC -> edge    one signed command (QoS 1)

The payload is JSON ``{"v": 1, "command": TEXT, "signature": BASE64, "chain": PEM}``. ``command`` is
the command's canonical JSON text (:meth:`Command.canonical`) kept as a string, so the bytes the
centre signed are exactly the ones the node verifies; a text that is not canonical is refused.

Example::

    >>> cmd = Command("vessel-042", "a1b2c3d4e5f60718", 1, "ping", {}, "lan",
    ...               1700000000000, 1700003600000)
    >>> signed = SignedCommand(cmd, b"", b"")   # unsigned: a node refuses it, the format does not
    >>> decode_command(encode_command(signed)) == signed
    True
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from sync.wire import DEVICE_RE, EPOCH_RE, MAX_TIME_MS, WireError

__all__ = [
    "COMMAND_VERSION",
    "KIND_RE",
    "MAX_COMMAND_BYTES",
    "RESULT_STATES",
    "Command",
    "SignedCommand",
    "command_topic",
    "decode_command",
    "encode_command",
]

COMMAND_VERSION = 1
MAX_COMMAND_BYTES = 256 * 1024
"""A bigger payload is refused unread."""
KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
MAX_ISSUER_CHARS = 128
_MAX_SEQ = 2**63 - 1  # an SQL BIGINT at the centre and in the node's store

RESULT_STATES = ("delivered", "applied", "refused")
"""A node's answers: ``delivered`` (verified and accepted, about to run), then ``applied`` or ``refused``."""


def command_topic(prefix: str, device: str) -> str:
    """The topic ``device`` reads its commands from (IOC -> edge, QoS 1)."""
    return f"{prefix}/{device}/cmd"


def _bad(field: str, message: str) -> WireError:
    return WireError("bad_field", f"{field}: {message}")


def _is_int(v: object) -> bool:
    return type(v) is int  # bool is an int to isinstance, never a seq or a time here


@dataclass(frozen=True)
class Command:
    """One command for one device's store epoch, checked as it is made.

    ``epoch`` is the node store's epoch it is for: a wiped or re-flashed node has a new epoch and
    refuses it, so an old command never runs again (its expiry alone would not stop a replay within
    its lifetime). ``seq`` numbers a device's commands from 1; ``body`` is a JSON object whose
    meaning depends on ``kind``. Raises :class:`sync.wire.WireError` (``bad_field``, naming the
    field) for a value that could not travel or that a node would refuse unread.
    """

    device: str
    epoch: str
    seq: int
    kind: str
    body: dict[str, Any]
    issuer: str
    issued_ms: int
    expires_ms: int

    def __post_init__(self) -> None:
        for name, pattern in (("device", DEVICE_RE), ("epoch", EPOCH_RE), ("kind", KIND_RE)):
            value = getattr(self, name)
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise _bad(name, f"{value!r} does not match {pattern.pattern}")
        if not _is_int(self.seq) or not 1 <= self.seq <= _MAX_SEQ:
            raise _bad("seq", f"{self.seq!r} is not an integer 1..{_MAX_SEQ}")
        if (
            not isinstance(self.issuer, str)
            or len(self.issuer) > MAX_ISSUER_CHARS
            or not self.issuer.isprintable()
        ):
            raise _bad(
                "issuer", f"{self.issuer!r} is not printable text of at most {MAX_ISSUER_CHARS} characters"
            )
        for name in ("issued_ms", "expires_ms"):
            value = getattr(self, name)
            if not _is_int(value) or not 0 <= value <= MAX_TIME_MS:
                raise _bad(name, f"{value!r} is not a time in milliseconds 0..{MAX_TIME_MS}")
        if self.expires_ms <= self.issued_ms:
            raise _bad("expires_ms", f"{self.expires_ms} is not after issued_ms {self.issued_ms}")
        if not isinstance(self.body, dict):
            raise _bad("body", f"a JSON object, not {type(self.body).__name__}")
        try:
            self.canonical()
        except (TypeError, ValueError, RecursionError) as exc:  # a set, NaN, a lone surrogate, a cycle
            raise _bad("body", f"not JSON that can be signed: {exc}") from None

    def canonical(self) -> bytes:
        """The bytes that are signed: sorted keys, no spaces, UTF-8 (one text for one command)."""
        return json.dumps(
            asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()


@dataclass(frozen=True)
class SignedCommand:
    """A command with its signature and the chain that proves who signed it.

    ``signature`` is ECDSA P-256 / SHA-256 (DER) over ``command.canonical()``, empty when unsigned;
    ``chain_pem`` the command signer's certificate, then any intermediate (PEM).
    """

    command: Command
    signature: bytes
    chain_pem: bytes


_KEYS = {"v", "command", "signature", "chain"}
_COMMAND_KEYS = {f.name for f in fields(Command)}


def encode_command(signed: SignedCommand) -> bytes:
    """The payload of ``signed``; :class:`WireError` (``too_big``) when a node would refuse its size."""
    payload = json.dumps(
        {
            "v": COMMAND_VERSION,
            "command": signed.command.canonical().decode(),
            "signature": base64.b64encode(signed.signature).decode(),
            "chain": signed.chain_pem.decode(),
        },
        separators=(",", ":"),
    ).encode()
    if len(payload) > MAX_COMMAND_BYTES:
        raise WireError("too_big", f"command payload of {len(payload)} bytes exceeds {MAX_COMMAND_BYTES}")
    return payload


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json(text: str | bytes) -> Any:
    """``text`` parsed as strict JSON (no NaN or Infinity); ValueError or RecursionError otherwise."""
    return json.loads(text, parse_constant=_no_constant)


def decode_command(payload: bytes) -> SignedCommand:
    """The signed command in ``payload``, its fields checked (not its signature: the verifier's job).

    Raises :class:`WireError` and nothing else, whatever the bytes, with ``reason`` ``too_big``,
    ``not_json`` or ``bad_field`` (the message names the field).
    """
    if len(payload) > MAX_COMMAND_BYTES:
        raise WireError("too_big", f"command payload of {len(payload)} bytes exceeds {MAX_COMMAND_BYTES}")
    try:
        outer = _json(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise WireError("not_json", f"not a JSON document: {exc}") from None
    if not isinstance(outer, dict):
        raise WireError("not_json", f"a JSON object expected, not {type(outer).__name__}")
    if set(outer) != _KEYS:
        raise _bad("payload", f"keys {sorted(outer)} are not {sorted(_KEYS)}")
    if not _is_int(outer["v"]) or outer["v"] != COMMAND_VERSION:
        raise _bad("v", f"version {outer['v']!r} is not {COMMAND_VERSION}")
    for key in ("command", "signature", "chain"):
        if not isinstance(outer[key], str):
            raise _bad(key, f"a string expected, not {type(outer[key]).__name__}")
    try:
        signature = base64.b64decode(outer["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise _bad("signature", "not base64") from None
    try:
        chain_pem = outer["chain"].encode()
    except UnicodeEncodeError:
        raise _bad("chain", "not text that can be UTF-8") from None
    return SignedCommand(_command(outer["command"]), signature, chain_pem)


def _command(text: str) -> Command:
    try:
        fields_ = _json(text)
    except (ValueError, RecursionError) as exc:
        raise _bad("command", f"not a JSON document: {exc}") from None
    if not isinstance(fields_, dict) or set(fields_) != _COMMAND_KEYS:
        keys = sorted(fields_) if isinstance(fields_, dict) else type(fields_).__name__
        raise _bad("command", f"{keys} are not the keys {sorted(_COMMAND_KEYS)}")
    command = Command(**fields_)
    # What is verified is command.canonical(): the text must be exactly it, or a signature over
    # other bytes (spaces, key order, escapes) would be checked against bytes nobody signed.
    if command.canonical() != text.encode("utf-8", "surrogatepass"):
        raise _bad("command", "not in canonical form (sorted keys, no spaces, UTF-8 as is)")
    return command
