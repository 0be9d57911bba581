"""Signed commands: the format (sync.commands), the command-result stream, signing and every refusal."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=200, deadline=None)
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
