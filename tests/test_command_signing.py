"""Signed commands: the format (sync.commands), the command-result stream, signing and every refusal."""

from __future__ import annotations

import base64
import json
import re
import stat
from dataclasses import replace

import pytest
from click.testing import CliRunner
from conftest import make_identity
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from helpers import cli, now_ms
from hypothesis import given, settings
from hypothesis import strategies as st
from support_forgery import Minted, mint, signed_by

from ioc.ca import CertificateAuthority
from ioc.cli import main as center_cli
from provisioning import pki
from provisioning.commands import (
    COMMAND_SIGNER,
    COMMAND_SIGNING,
    WARNING_SIGNER,
    CommandRefused,
    CommandSigner,
    CommandVerifier,
    issue_command_signer,
)
from sync.commands import (
    MAX_COMMAND_BYTES,
    Command,
    SignedCommand,
    command_topic,
    decode_command,
    encode_command,
)
from sync.records import CommandResult, TimeSource
from sync.wire import STREAMS, Batch, WireError, decode_batch, encode_batch

CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH

DEVICE = "vessel-042"
EPOCH = "a1b2c3d4e5f60718"
T0 = 1_700_000_000_000
HOUR_MS = 3_600_000
REASONS = {"too_big", "not_json", "bad_field"}


def command(**changes: object) -> Command:
    fields: dict = {
        "device": DEVICE,
        "epoch": EPOCH,
        "seq": 1,
        "kind": "ping",
        "body": {"note": "xin chào ✓", "n": [1, 2.5, None, True]},
        "issuer": "lan",
        "issued_ms": T0,
        "expires_ms": T0 + HOUR_MS,
    }
    return Command(**(fields | changes))


def payload(**outer: object) -> bytes:
    """An unsigned command's payload with keys of the outer JSON object replaced."""
    body = json.loads(encode_command(SignedCommand(command(), b"", b"")))
    return json.dumps(body | outer).encode()


def refusal(data: bytes) -> WireError:
    with pytest.raises(WireError) as info:
        decode_command(data)
    return info.value


# -- the format ----------------------------------------------------------------------------------


def test_topic():
    assert command_topic("ioc/v1", DEVICE) == "ioc/v1/vessel-042/cmd"


def test_canonical_is_sorted_compact_utf8():
    text = command().canonical()
    assert text.startswith(b'{"body":{"n":[1,2.5,null,true],"note":"xin ch\xc3\xa0o \xe2\x9c\x93"},"device":')
    assert json.loads(text) == {
        "body": {"n": [1, 2.5, None, True], "note": "xin chào ✓"},
        "device": DEVICE,
        "epoch": EPOCH,
        "expires_ms": T0 + HOUR_MS,
        "issued_ms": T0,
        "issuer": "lan",
        "kind": "ping",
        "seq": 1,
    }


def test_round_trip_keeps_the_signed_bytes():
    signed = SignedCommand(command(), b"\x30\x45" + bytes(69), b"-----BEGIN CERTIFICATE-----\n...")
    data = encode_command(signed)
    assert decode_command(data) == signed
    assert json.loads(data)["command"].encode() == signed.command.canonical()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"device": "Vessel 42"}, "device: 'Vessel 42' does not match"),
        ({"epoch": "a1b2"}, "epoch: 'a1b2' does not match"),
        ({"kind": "Ping"}, "kind: 'Ping' does not match"),
        ({"kind": "x" * 33}, "kind: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' does not match"),
        ({"seq": 0}, "seq: 0 is not an integer 1.."),
        ({"seq": True}, "seq: True is not an integer 1.."),
        ({"seq": 2**63}, "seq: 9223372036854775808 is not an integer 1.."),
        ({"issuer": "lan\n"}, "issuer: 'lan\\n' is not printable text"),
        ({"issuer": "x\ud800"}, "issuer: 'x\\ud800' is not printable text"),
        ({"issued_ms": -1}, "issued_ms: -1 is not a time"),
        ({"expires_ms": 1.5e12}, "expires_ms: 1500000000000.0 is not a time"),
        ({"expires_ms": T0}, f"expires_ms: {T0} is not after issued_ms {T0}"),
        ({"body": []}, "body: a JSON object, not list"),
        ({"body": {"x": float("nan")}}, "body: not JSON that can be signed"),
        ({"body": {"x": {1, 2}}}, "body: not JSON that can be signed"),
        ({"body": {"x": "\udc00"}}, "body: not JSON that can be signed"),
    ],
)
def test_a_command_checks_its_fields_when_made(changes, message):
    with pytest.raises(WireError) as info:
        command(**changes)
    assert info.value.reason == "bad_field"
    assert str(info.value).startswith(f"bad_field: {message}")


def test_too_big_is_refused_unread_and_not_encoded():
    assert refusal(b"{" * (MAX_COMMAND_BYTES + 1)).reason == "too_big"
    with pytest.raises(WireError) as info:
        encode_command(SignedCommand(command(body={"x": "y" * MAX_COMMAND_BYTES}), b"", b""))
    assert str(info.value) == f"too_big: command payload of {MAX_COMMAND_BYTES + 230} bytes exceeds 262144"


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        (b"\xff\xfe", "not_json", "not_json: not a JSON document"),
        (b"[" * 100_000, "not_json", "not_json: not a JSON document"),
        (b'{"v": NaN}', "not_json", "not_json: not a JSON document: NaN is not JSON"),
        (b"[1]", "not_json", "not_json: a JSON object expected, not list"),
        (b'{"v": 1}', "bad_field", "bad_field: payload: keys ['v'] are not"),
        (payload(v=2), "bad_field", "bad_field: v: version 2 is not 1"),
        (payload(v=True), "bad_field", "bad_field: v: version True is not 1"),
        (payload(signature=7), "bad_field", "bad_field: signature: a string expected, not int"),
        (payload(signature="not base64!"), "bad_field", "bad_field: signature: not base64"),
        (payload(chain="\ud800"), "bad_field", "bad_field: chain: not text that can be UTF-8"),
        (payload(command="{"), "bad_field", "bad_field: command: not a JSON document"),
        (payload(command="[]"), "bad_field", "bad_field: command: list are not the keys"),
        (payload(command='{"seq": 1}'), "bad_field", "bad_field: command: ['seq'] are not the keys"),
        (payload(command=command().canonical().decode().replace('"seq":1', '"seq":"1"')), "bad_field", "seq"),
    ],
)
def test_refusals_name_their_reason_and_field(data, reason, message):
    error = refusal(data)
    assert error.reason == reason
    assert str(error).startswith(message) or f"bad_field: {message}:" in str(error)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(json.loads(command().canonical())),  # spaces after separators
        json.dumps(json.loads(command().canonical()), separators=(",", ":")),  # ASCII escapes
        command().canonical().decode().replace('"seq":1', '"seq":1.0'),
        command().canonical().decode().replace('{"body":', '{"device":"vessel-042","body":', 1),
    ],
)
def test_a_command_text_that_is_not_canonical_is_refused(text):
    # The node verifies the signature over command.canonical(): bytes other than those sent are refused.
    error = refusal(payload(command=text))
    assert str(error).startswith("bad_field: ")
    assert "command" in str(error) or "seq" in str(error)


def _json_values() -> st.SearchStrategy:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=6,
    )


@st.composite
def _outer(draw: st.DrawFn) -> bytes:
    """A JSON object with some of the payload's keys, any values; its command often nearly right."""
    keys = draw(st.sets(st.sampled_from(["v", "command", "signature", "chain", "x"])))
    values = {k: draw(_json_values()) for k in keys}
    if "command" in values and draw(st.booleans()):
        fields = json.loads(command().canonical())
        changed = draw(st.sampled_from(sorted(fields)))
        values["command"] = json.dumps(fields | {changed: draw(_json_values())})
    return json.dumps(values).encode()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode) | _outer())
def test_any_bytes_decode_or_raise_wire_error(data):
    try:
        decode_command(data)
    except WireError as exc:
        assert exc.reason in REASONS


_BASE = encode_command(SignedCommand(command(), b"\x01\x02", b"chain"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_a_mutated_payload_decodes_or_raises_wire_error(flips):
    mutated = bytearray(_BASE)
    for index, value in flips:
        mutated[index] = value
    try:
        decode_command(bytes(mutated))
    except WireError as exc:
        assert exc.reason in REASONS


# -- the result stream ---------------------------------------------------------------------------


def test_command_results_travel_on_the_alarm_lane():
    stream = STREAMS["command_result"]
    assert (stream.priority, stream.synced, stream.record) == (0, True, CommandResult)
    assert stream.names == ("ts_ms", "tsrc", "clock_ms", "command_seq", "state", "reason", "details")
    gps = int(TimeSource.GPS)
    records = [
        CommandResult(T0, gps, T0, 1, "delivered", "", ""),
        CommandResult(T0 + 40, gps, T0 + 40, 1, "applied", "", '{"version": "0.1.0"}'),
        CommandResult(T0 + 90, gps, T0 + 90, 2, "refused", "unknown_kind", '{"message": "no kind ✗"}'),
    ]
    batch = Batch(DEVICE, EPOCH, "command_result", [1, 2, 3], records)
    assert decode_batch(encode_batch(batch)) == batch


def test_a_base64_signature_is_bytes_again():
    signed = decode_command(payload(signature=base64.b64encode(b"\x00sig").decode()))
    assert signed.signature == b"\x00sig"


# -- signing and verifying -------------------------------------------------------------------------

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A CA with a provisioned vessel-042, its technician's signer, the centre's command signer (by
    the CLI), another CA's command signer and the broker's server certificate."""
    tmp = tmp_path_factory.mktemp("commands")
    node = make_identity(tmp, DEVICE)
    cli(center_cli, ["ca", "command-signer", "centre", "--out", str(tmp / "centre"), "--ca", str(tmp / "ca")])
    warn = [
        "ca",
        "command-signer",
        "warnings",
        "--warnings",
        "--out",
        str(tmp / "centre"),
        "--ca",
        str(tmp / "ca"),
    ]
    cli(center_cli, warn)
    ca = CertificateAuthority(tmp / "ca").device_ca()
    other = CertificateAuthority.create(tmp / "other-ca", "Hue IOC").device_ca()
    broker_key = pki.new_key()
    broker = pki.issue_leaf(
        ca.cert, ca.key, broker_key.public_key(), "broker", unit="broker", days=30, server_names=["localhost"]
    )
    return {
        "tmp": tmp,
        "ca": ca,
        "centre": CommandSigner.load(tmp / "centre" / "centre.key", tmp / "centre" / "centre.crt"),
        "warnings": CommandSigner.load(tmp / "centre" / "warnings.key", tmp / "centre" / "warnings.crt"),
        "other_ca": CommandSigner(*_pair(issue_command_signer(other.key, other.cert, "centre"))),
        "short": CommandSigner(*_pair(issue_command_signer(ca.key, ca.cert, "short-lived", days=1))),
        "device": Minted.load(node),
        "technician": Minted(
            pki.load_private_key(tmp / "signers" / DEVICE / "signer.key"),
            pki.load_certificates(tmp / "signers" / DEVICE / "signer.crt"),
        ),
        "broker": Minted(broker_key, [broker]),
        "root": Minted(ca.key, [ca.cert]),
    }


def _pair(made: tuple) -> tuple:
    key, cert = made
    return key, [cert]


def fresh(**changes: object) -> Command:
    """A command issued now, valid an hour."""
    t = now_ms()
    return command(**({"issued_ms": t, "expires_ms": t + HOUR_MS} | changes))


def verifier(world: dict) -> CommandVerifier:
    return CommandVerifier(world["ca"].cert, DEVICE)


def refused(world: dict, signed: SignedCommand, at_ms: int | None = None) -> CommandRefused:
    with pytest.raises(CommandRefused) as info:
        verifier(world).verify(signed, now_ms() if at_ms is None else at_ms)
    return info.value


def test_a_signed_command_verifies_after_the_wire(world):
    cmd = fresh()
    signed = world["centre"].sign(cmd)
    assert verifier(world).verify(decode_command(encode_command(signed)), now_ms()) == cmd
    leaf = x509.load_pem_x509_certificate(signed.chain_pem)
    assert leaf.subject.rfc4514_string() == "CN=centre,OU=command-signers,O=Hue IOC"
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [COMMAND_SIGNING]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca


def test_the_cli_writes_the_key_private_and_keeps_the_certificate(world):
    tmp = world["tmp"]
    assert stat.S_IMODE((tmp / "centre" / "centre.key").stat().st_mode) == 0o600
    assert (tmp / "ca" / "command-signers" / "centre.crt").read_bytes() == (
        tmp / "centre" / "centre.crt"
    ).read_bytes()
    again = CliRunner().invoke(
        center_cli, ["ca", "command-signer", "centre", "--out", str(tmp / "x"), "--ca", str(tmp / "ca")]
    )
    assert again.exit_code == 1
    assert f"{tmp / 'ca' / 'command-signers' / 'centre.crt'}: command signer 'centre' exists" in again.output
    assert not (tmp / "x").exists()


def test_loading_a_signer_names_the_file(world):
    tmp = world["tmp"]
    with pytest.raises(pki.PkiError, match=f"^{tmp / 'nope.key'}: private key not found$"):
        CommandSigner.load(tmp / "nope.key", tmp / "centre" / "centre.crt")
    with pytest.raises(
        pki.PkiError, match=f"^{tmp / 'ca' / 'ca.crt'}: the certificate is not the certificate"
    ):
        CommandSigner.load(tmp / "centre" / "centre.key", tmp / "ca" / "ca.crt")


def _unsigned(world: dict) -> SignedCommand:
    return replace(world["centre"].sign(fresh()), signature=b"")


def _no_chain(world: dict) -> SignedCommand:
    return replace(world["centre"].sign(fresh()), chain_pem=b"")


SERIAL = r"\(serial [0-9a-f]+\)"


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("unsigned", r"unsigned: command 1 came without a signature or chain"),
        ("no chain", r"unsigned: command 1 came without a signature or chain"),
        (
            "device key",
            rf"not_a_command_signer: the certificate L=Thuan An,CN=vessel-042,OU=devices,O=Hue IOC {SERIAL} "
            r"is not a command signer's \(its usage: clientAuth\)",
        ),
        (
            "technician's signer",
            rf"not_a_command_signer: the certificate CN=vessel-042,OU=signers,O=Hue IOC {SERIAL} "
            r"is not a command signer's \(its usage: clientAuth\)",
        ),
        (
            "broker",
            rf"not_a_command_signer: the certificate CN=broker,OU=broker,O=Hue IOC {SERIAL} "
            r"is not a command signer's \(its usage: serverAuth\)",
        ),
        (
            "other CA",
            rf"untrusted: the certificate CN=centre,OU=command-signers,O=Hue IOC {SERIAL} does not lead to "
            r"the CA CN=Hue IOC device CA,O=Hue IOC: not a command signer of this CA",
        ),
        (
            "minted by a technician",
            rf"untrusted: the certificate CN=rogue,OU=command-signers,O=Hue IOC {SERIAL} was issued by "
            rf"CN=vessel-042,OU=signers,O=Hue IOC {SERIAL}, not by the CA itself: "
            "only the CA issues a command signer",
        ),
        (
            "a second usage",
            r"untrusted: the certificate chain does not hold: a command signer's extended key usage is "
            r"commandSigning only, not Unknown OID, clientAuth .*",
        ),
        ("not PEM", r"untrusted: the certificate chain is not PEM certificates"),
    ],
)
def test_who_may_not_sign_a_command(world, how, message):
    cmd = fresh()
    signed = {
        "unsigned": lambda: _unsigned(world),
        "no chain": lambda: _no_chain(world),
        "device key": lambda: signed_by(world["device"], cmd),
        "technician's signer": lambda: signed_by(world["technician"], cmd),
        "broker": lambda: signed_by(world["broker"], cmd),
        "other CA": lambda: world["other_ca"].sign(cmd),
        "minted by a technician": lambda: signed_by(
            mint(world["technician"], "rogue", unit="command-signers", eku=[COMMAND_SIGNING]), cmd
        ),
        "a second usage": lambda: signed_by(
            mint(world["root"], "two", unit="command-signers", eku=[COMMAND_SIGNING, CLIENT_AUTH]), cmd
        ),
        "not PEM": lambda: replace(world["centre"].sign(cmd), chain_pem=b"garbage"),
    }[how]()
    error = refused(world, signed)
    assert re.fullmatch(message, str(error)), str(error)
    assert error.reason == message.split(":")[0]


def test_an_expired_command_signer_is_untrusted(world):
    signed = world["short"].sign(fresh(expires_ms=now_ms() + 3 * DAY_MS))
    assert verifier(world).verify(signed, now_ms()) == signed.command
    error = refused(world, signed, now_ms() + 2 * DAY_MS)
    assert error.reason == "untrusted"
    assert "outside the validity of the certificate CN=short-lived,OU=command-signers" in str(error)


def test_a_node_whose_clock_is_not_set_refuses_until_it_is(world):
    error = refused(world, world["centre"].sign(fresh()), 1_000)
    assert (
        str(error)
        == "untrusted: the node's clock is not set (1970-01-01 00:00:01Z): no certificate can be checked"
    )


def test_a_changed_command_does_not_verify(world):
    signed = world["centre"].sign(fresh())
    for changed in (
        replace(signed.command, kind="selftest"),
        replace(signed.command, seq=2),
        replace(signed.command, body={}),
    ):
        error = refused(world, replace(signed, command=changed))
        assert str(error) == "bad_signature: the signature does not match the command: changed or forged"
    other_key = replace(signed, signature=world["short"].sign(signed.command).signature)
    assert refused(world, other_key).reason == "bad_signature"


def test_tampered_canonical_text_on_the_wire_does_not_verify(world):
    data = encode_command(world["centre"].sign(fresh()))
    tampered = data.replace(b'\\"kind\\":\\"ping\\"', b'\\"kind\\":\\"pong\\"')
    assert tampered != data
    assert decode_command(tampered).command.kind == "pong"  # still a well-formed command ...
    assert refused(world, decode_command(tampered)).reason == "bad_signature"  # ... that nobody signed


def test_a_command_for_another_device_is_refused(world):
    error = refused(world, world["centre"].sign(fresh(device="vessel-043")))
    assert str(error) == "other_device: command 1 is for 'vessel-043', not 'vessel-042'"


def test_an_expired_command_is_refused_at_its_expiry(world):
    cmd = fresh()
    signed = world["centre"].sign(cmd)
    assert verifier(world).verify(signed, cmd.expires_ms - 1) == cmd
    error = refused(world, signed, cmd.expires_ms)
    assert error.reason == "expired"
    assert str(error).startswith("expired: command 1 expired at ")


def test_a_warning_is_signed_by_the_warning_signer_and_by_nothing_else(world):
    warning = fresh(kind="warning", body={"identifier": "storm-9"})
    signer = world["warnings"]
    assert (signer.purpose, world["centre"].purpose) == (WARNING_SIGNER, COMMAND_SIGNER)
    assert verifier(world).verify(signer.sign(warning), now_ms()) == warning
    leaf = x509.load_pem_x509_certificate(signer.chain_pem)
    assert leaf.subject.rfc4514_string() == "CN=warnings,OU=warning-signers,O=Hue IOC"
    assert (world["tmp"] / "ca" / "warning-signers" / "warnings.crt").exists()
    # The command signer's key, used by hand (its CommandSigner would not sign a warning at all):
    error = refused(world, signed_by(key_files(world, "centre"), warning))
    assert error.reason == "not_a_warning_signer"
    assert "OU=command-signers" in str(error) and "is not a warning signer's (its usage: Unknown OID)" in str(
        error
    )
    # ... and the warning signer's key cannot sign anything but a warning.
    error = refused(world, signed_by(key_files(world, "warnings"), fresh(kind="restart")))
    assert (error.reason, "OU=warning-signers" in str(error)) == ("not_a_command_signer", True)
    with pytest.raises(pki.PkiError, match="a warning signer does not sign a 'restart' command"):
        signer.sign(fresh(kind="restart"))
    with pytest.raises(pki.PkiError, match="a command signer does not sign a 'warning' command"):
        world["centre"].sign(warning)


def key_files(world: dict, name: str) -> Minted:
    """The signer ``name``'s key and certificate as written: what a thief of those files holds."""
    where = world["tmp"] / "centre"
    return Minted(pki.load_private_key(where / f"{name}.key"), pki.load_certificates(where / f"{name}.crt"))
