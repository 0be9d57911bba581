"""Wire format: round trips of every stream, properties, the reason of every refusal, topics, acks, size."""

from __future__ import annotations

import math
import random
import re
import zlib

import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common.errors import IocEdgeError
from sync.records import Alarm, Event, NodeStatus, Position, Reading, Summary, TimeSource
from sync.wire import (
    CODEC_ZLIB,
    CODEC_ZSTD,
    MAX_DECODED_BYTES,
    MAX_PAYLOAD_BYTES,
    STREAMS,
    Ack,
    Batch,
    InvalidRecords,
    WireError,
    ack_topic,
    decode_ack,
    decode_batch,
    encode_ack,
    encode_batch,
    parse_up_topic,
    up_topic,
)

DEVICE = "vessel-042"
EPOCH = "a1b2c3d4e5f60718"
T0 = 1_700_000_000_000
GPS, NTP, FREE = int(TimeSource.GPS), int(TimeSource.NTP), int(TimeSource.FREE)
COMPRESSIONS = ["zstd", "zlib"]
REASONS = {"too_large", "bad_compression", "bad_encoding", "bad_schema", "unknown_stream", "bad_value"}
STREAM_NAMES = str(sorted(STREAMS))

SAMPLES: dict[str, list[tuple]] = {
    "position": [
        Position(T0, GPS, T0 + 3, 16.0544261, 108.2022274, 7.95, 45.0, 1, 9, 0.9, 2.5),
        Position(T0 + 1000, NTP, T0 + 1003, -16.5, -107.6),
        Position(T0 + 2000, FREE, 0, 89.9999999, 179.9999999, 0.0, 359.9, 0, 0, 99.99, -10_000.0),
        Position(T0 + 2500, GPS, T0 + 2503, -90.0, -180.0, None, 12.3, None, 12, None, 100_000.0),
    ],
    "alarm": [
        Alarm(T0, GPS, T0, "bilge", "water_high", 1, 0.125, "water 12 cm above the pump"),
        Alarm(T0 + 5, NTP, T0 + 5, "bilge", "water_high", 0),
        Alarm(T0 + 9, FREE, 7, "gps", "no_fix", 1, -3.5, "mất tín hiệu GPS ✓"),
    ],
    "reading": [
        Reading(T0, GPS, T0, "sds011", "pm2_5", 12.3),
        Reading(T0, GPS, T0, "sds011", "pm10", 40.125),
        Reading(T0 + 1000, NTP, T0 + 1001, "bme280", "temperature_c", -4.5),
        Reading(T0 + 2000, NTP, T0 + 2001, "", "", None),
    ],
    "status": [
        NodeStatus(T0, NTP, T0, '{"backlog": {"position": 12}, "drops": {}}'),
        NodeStatus(T0 + 60_000, NTP, T0 + 60_000, ""),
    ],
}
SEQS = {"position": [5, 6, 9, 1000], "alarm": [1, 2, 2**40], "reading": [7, 8, 9, 10], "status": [3, 4]}


def quantized(stream: str, record: tuple) -> tuple:
    """``record`` as it comes back from the wire: fixed-point columns rounded to their scale, as floats."""
    values = [
        None if v is None else round(v * c.scale) / c.scale if c.kind == "fixed" else v
        for c, v in zip(STREAMS[stream].columns, record, strict=True)
    ]
    return STREAMS[stream].record(*values)


def assert_same_batch(got: Batch, expected: Batch) -> None:
    assert got == expected
    # 1 == 1.0 in Python, so equality alone would let an int column come back as float.
    assert [[type(v) for v in r] for r in got.records] == [[type(v) for v in r] for r in expected.records]
    assert [type(s) for s in got.seqs] == [int] * len(expected.seqs)
    assert [type(r) for r in got.records] == [STREAMS[expected.stream].record] * len(expected.records)


def body_of(batch: Batch) -> dict:
    """The msgpack map inside ``batch``'s payload, to tamper with."""
    payload = encode_batch(batch, "zstd")
    return msgpack.unpackb(zstandard.ZstdDecompressor().decompress(payload[1:]), raw=False)


def pack(body: object, codec: int = CODEC_ZSTD) -> bytes:
    packed = msgpack.packb(body, use_bin_type=True)
    if codec == CODEC_ZSTD:
        return bytes([CODEC_ZSTD]) + zstandard.ZstdCompressor().compress(packed)
    return bytes([CODEC_ZLIB]) + zlib.compress(packed)


def refusal(payload: bytes) -> WireError:
    with pytest.raises(WireError) as info:
        decode_batch(payload)
    return info.value


def sample_batch(stream: str = "position") -> Batch:
    return Batch(DEVICE, EPOCH, stream, SEQS[stream], SAMPLES[stream])


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("stream", sorted(SAMPLES))
def test_every_stream_round_trips(stream, compression):
    payload = encode_batch(sample_batch(stream), compression)
    assert payload[0] == {"zstd": CODEC_ZSTD, "zlib": CODEC_ZLIB}[compression]
    expected = Batch(DEVICE, EPOCH, stream, SEQS[stream], [quantized(stream, r) for r in SAMPLES[stream]])
    assert_same_batch(decode_batch(payload), expected)


def test_missing_position_fields_come_back_as_none_not_zero():
    got = decode_batch(encode_batch(sample_batch("position")))
    assert got.records[1][5:] == (None,) * 6
    assert got.records[3].speed_kn is None and got.records[3].sats == 12 and got.records[3].alt_m == 100_000.0


def test_fixed_point_columns_round_to_their_scale():
    batch = Batch(
        DEVICE, EPOCH, "position", [1], [Position(T0, GPS, T0, 16.123456789, -107.00000004, 5.006, 90.04)]
    )
    got = decode_batch(encode_batch(batch)).records[0]
    assert (got.lat, got.lon, got.speed_kn, got.course_deg) == (16.1234568, -107.0, 5.01, 90.0)
    alarm = Alarm(T0, GPS, T0, "s", "k", 1, 1.23456)
    assert decode_batch(encode_batch(Batch(DEVICE, EPOCH, "alarm", [1], [alarm]))).records[0].value == 1.235


def test_encoding_is_deterministic_and_a_single_record_batch_round_trips():
    batch = Batch(DEVICE, EPOCH, "alarm", [2**40], [Alarm(0, FREE, 0, "x", "y", 0)])
    assert encode_batch(batch) == encode_batch(batch)
    assert_same_batch(decode_batch(encode_batch(batch, "zlib")), batch)


def test_empty_batch_is_refused():
    error = refusal(encode_batch(Batch(DEVICE, EPOCH, "position", [], [])))
    assert (error.reason, str(error)) == ("bad_schema", "bad_schema: record count 0 is not 1..100000")


def test_wire_error_is_an_ioc_edge_error_and_a_value_error():
    error = refusal(b"")
    assert isinstance(error, IocEdgeError) and isinstance(error, ValueError)
    assert (error.reason, str(error)) == ("bad_compression", "bad_compression: empty payload")


# -- properties ----------------------------------------------------------------------------------


def _scaled(lo: float, hi: float, digits: int) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, digits))


def _optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


positions = st.builds(
    Position,
    ts_ms=st.integers(0, 4_102_444_800_000),
    tsrc=st.sampled_from([GPS, NTP, FREE]),
    clock_ms=st.integers(0, 4_102_444_800_000),
    lat=_scaled(-90, 90, 7),
    lon=_scaled(-180, 180, 7),
    speed_kn=_optional(_scaled(0, 1000, 2)),
    course_deg=_optional(_scaled(0, 360, 1)),
    fix=_optional(st.integers(0, 9)),
    sats=_optional(st.integers(0, 255)),
    hdop=_optional(_scaled(0, 100, 2)),
    alt_m=_optional(_scaled(-10_000, 100_000, 1)),
)


@st.composite
def position_batches(draw) -> Batch:
    records = draw(st.lists(positions, min_size=1, max_size=60))
    first = draw(st.integers(1, 2**40))
    gaps = draw(st.lists(st.integers(1, 10_000), min_size=len(records) - 1, max_size=len(records) - 1))
    seqs = [first]
    for gap in gaps:
        seqs.append(seqs[-1] + gap)
    return Batch(DEVICE, EPOCH, "position", seqs, records)


@settings(max_examples=200, deadline=None)
@given(position_batches(), st.sampled_from(COMPRESSIONS))
def test_any_valid_positions_round_trip_exactly(batch, compression):
    assert_same_batch(decode_batch(encode_batch(batch, compression)), batch)


def _compressed(codec: int) -> st.SearchStrategy[bytes]:
    compress = zstandard.ZstdCompressor().compress if codec == CODEC_ZSTD else zlib.compress
    return st.binary(max_size=400).map(lambda data: bytes([codec]) + compress(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | _compressed(CODEC_ZSTD) | _compressed(CODEC_ZLIB))
def test_arbitrary_bytes_decode_or_raise_wire_error(payload):
    try:
        decode_batch(payload)
    except WireError as exc:
        assert exc.reason in REASONS


def _mutation_base(compression: str) -> bytes:
    records = [
        Position(
            T0 + i * 1000,
            GPS,
            T0 + i * 1000 + 2,
            round(16.05 + i * 2.3e-5, 7),
            round(108.2 + i * 1.9e-5, 7),
            7.5 + (i % 3) / 10,
            45.0,
            1,
            9,
            0.9,
            None if i % 4 else 2.5,
        )
        for i in range(20)
    ]
    return encode_batch(Batch(DEVICE, EPOCH, "position", list(range(1, 21)), records), compression)


MUTATED = {c: _mutation_base(c) for c in COMPRESSIONS}
flips = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4)
cuts = st.none() | st.integers(0, 10_000)


def _decode_mutated(payload: bytes, changes: list[tuple[int, int]], cut: int | None) -> None:
    mutated = bytearray(payload)
    for index, value in changes:
        mutated[index % len(mutated)] = value
    if cut is not None:
        mutated = mutated[: cut % len(mutated)]
    try:
        decode_batch(bytes(mutated))
    except WireError as exc:
        assert exc.reason in REASONS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips, cuts)
def test_mutated_zlib_payload_raises_only_wire_error(changes, cut):
    _decode_mutated(MUTATED["zlib"], changes, cut)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips, cuts)
@example(changes=[(84, 0x80)], cut=None)  # byte 84 is the top byte of a uint64 head (zstandard 0.25, level 3)
def test_mutated_zstd_payload_raises_only_wire_error(changes, cut):
    _decode_mutated(MUTATED["zstd"], changes, cut)


# -- refusals, by reason -------------------------------------------------------------------------


def test_payload_over_the_limit_is_too_large_unread():
    error = refusal(bytes([CODEC_ZSTD]) + bytes(MAX_PAYLOAD_BYTES))
    assert (error.reason, str(error)) == (
        "too_large",
        f"too_large: payload of {MAX_PAYLOAD_BYTES + 1} bytes exceeds {MAX_PAYLOAD_BYTES}",
    )
    # One byte less is read (and refused for what it is, not for its size).
    assert refusal(bytes([CODEC_ZSTD]) + bytes(MAX_PAYLOAD_BYTES - 1)).reason == "bad_compression"


@pytest.mark.parametrize("codec", [CODEC_ZSTD, CODEC_ZLIB])
def test_compression_bomb_is_too_large(codec):
    bomb = b"\0" * (MAX_DECODED_BYTES + 1)
    data = zstandard.ZstdCompressor(level=3).compress(bomb) if codec == CODEC_ZSTD else zlib.compress(bomb)
    payload = bytes([codec]) + data
    assert len(payload) < 40_000
    error = refusal(payload)
    assert (error.reason, str(error)) == (
        "too_large",
        f"too_large: payload expands beyond {MAX_DECODED_BYTES} bytes",
    )


def test_streamed_zstd_bomb_without_content_size_is_too_large():
    out = zstandard.ZstdCompressor(level=3).compressobj()
    data = b"".join(out.compress(b"\0" * (1 << 20)) for _ in range(33)) + out.flush()
    assert zstandard.get_frame_parameters(data).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert refusal(bytes([CODEC_ZSTD]) + data).reason == "too_large"


def test_decoded_size_at_the_limit_is_not_too_large():
    payload = bytes([CODEC_ZSTD]) + zstandard.ZstdCompressor().compress(b"\xc0" * MAX_DECODED_BYTES)
    error = refusal(payload)
    assert (error.reason, str(error)) == (
        "bad_encoding",
        "bad_encoding: not msgpack: unpack(b) received extra data.",
    )


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\x07" + b"\x28\xb5\x2f\xfd", r"^bad_compression: unknown compression byte 7$"),
        (b"\x00", r"^bad_compression: unknown compression byte 0$"),
        (b"\x02not zstd at all", r"^bad_compression: zstd decompress error: "),
        (
            b"\x01not zlib at all",
            r"^bad_compression: Error -3 while decompressing data: incorrect header check$",
        ),
    ],
    ids=["unknown-codec", "codec-zero", "corrupt-zstd", "corrupt-zlib"],
)
def test_bad_compression(payload, message):
    error = refusal(payload)
    assert error.reason == "bad_compression"
    assert re.search(message, str(error)), str(error)


@pytest.mark.parametrize("codec", [CODEC_ZSTD, CODEC_ZLIB])
@pytest.mark.parametrize(
    "data, detail",
    [
        (b"\xc1", "Unpack failed: incomplete input"),
        (msgpack.packb({"v": 1}) + b"\x01", "unpack(b) received extra data."),
        (b"\x81\x01\x02", "int is not allowed for map key when strict_map_key=True"),
    ],
    ids=["reserved-byte", "trailing-bytes", "int-map-key"],
)
def test_not_msgpack_is_bad_encoding(codec, data, detail):
    compressed = zstandard.ZstdCompressor().compress(data) if codec == CODEC_ZSTD else zlib.compress(data)
    error = refusal(bytes([codec]) + compressed)
    assert error.reason == "bad_encoding"
    assert str(error).startswith("bad_encoding: not msgpack: ")


KEYS = "['c', 'dev', 'ep', 'n', 'seq', 'st', 'v']"


def _tampered(**changes) -> dict:
    body = body_of(sample_batch("position"))
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


@pytest.mark.parametrize(
    "body, message",
    [
        ([1, 2, 3], f"expected a map with keys {KEYS}"),
        (_tampered(seq=...), f"expected a map with keys {KEYS}"),
        (_tampered(extra=1), f"expected a map with keys {KEYS}"),
        (_tampered(v=2), "wire version 2 is not 1"),
        (_tampered(v="1"), "wire version '1' is not 1"),
        (_tampered(dev="Vessel 42"), "device 'Vessel 42' is not a valid device id"),
        (_tampered(dev="-vessel"), "device '-vessel' is not a valid device id"),
        (_tampered(dev="v" * 65), f"device '{'v' * 65}' is not a valid device id"),
        (_tampered(dev=42), "device 42 is not a valid device id"),
        (_tampered(ep="a1b2c3d4e5f6071"), "epoch 'a1b2c3d4e5f6071' is not 16 hex digits"),
        (_tampered(ep="A1B2C3D4E5F60718"), "epoch 'A1B2C3D4E5F60718' is not 16 hex digits"),
        (_tampered(ep=None), "epoch None is not 16 hex digits"),
        (_tampered(n=0), "record count 0 is not 1..100000"),
        (_tampered(n=100_001), "record count 100001 is not 1..100000"),
        (_tampered(n="4"), "record count '4' is not 1..100000"),
        (_tampered(c=body_of(sample_batch())["c"][:-1]), "expected 11 columns for stream position"),
        (_tampered(c="columns"), "expected 11 columns for stream position"),
        (_tampered(n=5), "integer column holds 6 bytes, expected 8"),
        (_tampered(seq=[[1], 3, b""]), "integer column header is malformed"),
        (_tampered(seq=[[1, 2, 3], 1, b"\x01"]), "integer column header is malformed"),
        (_tampered(seq=[[1], 1, b"\x01\x01"]), "integer column holds 2 bytes, expected 3"),
    ],
    ids=[
        "not-a-map",
        "missing-key",
        "extra-key",
        "version-2",
        "version-str",
        "device-space",
        "device-dash",
        "device-long",
        "device-int",
        "epoch-short",
        "epoch-upper",
        "epoch-none",
        "count-zero",
        "count-over",
        "count-str",
        "columns-short",
        "columns-str",
        "count-mismatch",
        "width-3",
        "three-heads",
        "data-short",
    ],
)
def test_bad_schema(body, message):
    error = refusal(pack(body))
    assert (error.reason, str(error)) == ("bad_schema", f"bad_schema: {message}")


@pytest.mark.parametrize("head", [None, "1", [1], {"a": 1}])
def test_malformed_head_is_bad_schema(head):
    error = refusal(pack(_tampered(seq=[[head], 0, b""])))
    assert error.reason == "bad_schema"
    assert str(error).startswith("bad_schema: ")


def test_text_column_must_hold_strings():
    body = body_of(sample_batch("reading"))
    body["c"][3] = ["sds011", "sds011", 7, "bme280"]
    error = refusal(pack(body))
    assert str(error) == "bad_schema: column sensor: expected a list of 4 text values"
    body["c"][3] = ["sds011"]
    assert str(refusal(pack(body))) == "bad_schema: column sensor: expected a list of 4 text values"


def test_presence_bitmap_on_a_column_that_cannot_be_missing():
    body = body_of(sample_batch("position"))
    body["c"][3][0] = b"\xf0"  # lat is not nullable
    assert str(refusal(pack(body))) == "bad_schema: column lat: bad presence bitmap"


@pytest.mark.parametrize("stream", ["video", 7, None])
def test_unknown_stream_in_payload(stream):
    error = refusal(pack(_tampered(st=stream)))
    assert (error.reason, str(error)) == (
        "unknown_stream",
        f"unknown_stream: stream {stream!r} is not one of {STREAM_NAMES}",
    )


def _single(stream: str, column: str, stored: int) -> bytes:
    """A one-record batch of ``stream`` whose ``column`` travels as the integer ``stored``.

    Built by hand because the encoder refuses out-of-range values before they leave the node.
    """
    record = {"position": SAMPLES["position"][0], "alarm": SAMPLES["alarm"][0]}[stream]
    body = body_of(Batch(DEVICE, EPOCH, stream, [1], [record]))
    body["c"][STREAMS[stream].names.index(column)] = [None, [stored], 0, b""]
    return pack(body)


@pytest.mark.parametrize(
    "stream, column, stored, message",
    [
        ("position", "lat", 950_000_000, "column lat: values outside [-90, 90]"),
        ("position", "lat", -900_000_001, "column lat: values outside [-90, 90]"),
        ("position", "lon", 1_805_000_000, "column lon: values outside [-180, 180]"),
        ("position", "speed_kn", -50, "column speed_kn: values outside [0, 1000]"),
        ("position", "course_deg", 3601, "column course_deg: values outside [0, 360]"),
        ("position", "fix", 10, "column fix: values outside [0, 9]"),
        ("position", "alt_m", -100_001, "column alt_m: values outside [-10000, 100000]"),
        ("position", "tsrc", 4, "column tsrc: values outside [1, 3]"),
        ("position", "tsrc", 0, "column tsrc: values outside [1, 3]"),
        ("alarm", "state", 2, "column state: values outside [0, 1]"),
    ],
    ids=["lat-95", "lat-low", "lon", "speed", "course", "fix", "alt", "tsrc-4", "tsrc-0", "alarm-state"],
)
def test_value_out_of_range_is_bad_value(stream, column, stored, message):
    error = refusal(_single(stream, column, stored))
    assert (error.reason, str(error)) == ("bad_value", f"bad_value: {message}")


def test_values_at_the_bounds_are_accepted():
    got = decode_batch(_single("position", "lat", -900_000_000)).records[0]
    assert got.lat == -90.0
    assert decode_batch(_single("position", "course_deg", 3600)).records[0].course_deg == 360.0


def _seq_column(seqs: list[int]) -> list:
    """The ``seq`` column for ``seqs`` (first value, then zig-zagged deltas in one byte each)."""
    deltas = [b - a for a, b in zip(seqs, seqs[1:], strict=False)]
    zigzag = [(d << 1) ^ (d >> 63) for d in deltas]
    return [[seqs[0]], 1, bytes(zigzag)]


@pytest.mark.parametrize("seqs", [[3, 3], [5, 4], [0, 1], [-2, 5], [1, 2, 2, 3]])
def test_sequence_numbers_must_be_positive_and_increasing(seqs):
    body = body_of(
        Batch(DEVICE, EPOCH, "position", list(range(1, len(seqs) + 1)), SAMPLES["position"][: len(seqs)])
    )
    body["seq"] = _seq_column(seqs)
    error = refusal(pack(body))
    assert (error.reason, str(error)) == (
        "bad_value",
        "bad_value: sequence numbers must be positive and strictly increasing",
    )


def test_hand_made_seq_column_decodes():
    body = _tampered(seq=_seq_column([2, 3, 10, 11]))
    assert decode_batch(pack(body)).seqs == [2, 3, 10, 11]


@pytest.mark.parametrize("head", [2**63, 2**64 - 1])
def test_integer_head_beyond_int64_is_bad_schema(head):
    error = refusal(pack(_tampered(seq=[[head], 1, b"\x02\x02\x02"])))
    assert error.reason == "bad_schema"


@pytest.mark.parametrize(
    "column, head", [("seq", 1.5), ("seq", math.nan), ("lat", math.nan), ("ts_ms", 1.5e12)]
)
def test_non_integer_head_is_bad_schema(column, head):
    body = body_of(sample_batch("position"))
    if column == "seq":
        body["seq"][0] = [head]
    else:
        index = STREAMS["position"].names.index(column)
        body["c"][index][1] = [head, *body["c"][index][1][1:]]
    error = refusal(pack(body))
    assert error.reason == "bad_schema"


# -- topics and acks -----------------------------------------------------------------------------


def test_topics():
    assert up_topic("ioc/v1", DEVICE, "position") == "ioc/v1/vessel-042/up/position"
    assert ack_topic("ioc/v1", DEVICE) == "ioc/v1/vessel-042/ack"
    assert parse_up_topic("ioc/v1", "ioc/v1/vessel-042/up/position") == ("vessel-042", "position")
    assert parse_up_topic("city/ioc", "city/ioc/buoy_7/up/alarm") == ("buoy_7", "alarm")


@pytest.mark.parametrize(
    "topic",
    [
        "ioc/v1/vessel-042/down/position",
        "ioc/v2/vessel-042/up/position",
        "ioc/v1/Vessel-042/up/position",
        "ioc/v1/vessel-042/up/position/more",
        "ioc/v1//up/position",
        "ioc/v1/vessel-042/ack",
        "ioc/v1",
        "ioc/v1x/vessel-042/up/position",
    ],
)
def test_parse_up_topic_refuses_other_topics(topic):
    with pytest.raises(WireError) as info:
        parse_up_topic("ioc/v1", topic)
    assert (info.value.reason, str(info.value)) == (
        "bad_topic",
        f"bad_topic: {topic!r} is not ioc/v1/<device>/up/<stream>",
    )


def test_parse_up_topic_unknown_stream():
    with pytest.raises(WireError) as info:
        parse_up_topic("ioc/v1", "ioc/v1/vessel-042/up/video")
    assert (info.value.reason, str(info.value)) == (
        "unknown_stream",
        f"unknown_stream: stream 'video' in 'ioc/v1/vessel-042/up/video' is not one of {STREAM_NAMES}",
    )


def test_ack_round_trip():
    ack = Ack(EPOCH, "position", 1, 2**40)
    assert decode_ack(encode_ack(ack)) == ack
    assert type(decode_ack(encode_ack(ack))) is Ack


@pytest.mark.parametrize(
    "payload, message",
    [
        (msgpack.packb([EPOCH, "video", 1, 2]), f"not an ack: '{EPOCH}' 'video' 1 2"),
        (msgpack.packb([EPOCH, "position", "1", 2]), f"not an ack: '{EPOCH}' 'position' '1' 2"),
        (msgpack.packb([EPOCH, "position", 1, 2.0]), f"not an ack: '{EPOCH}' 'position' 1 2.0"),
        (
            msgpack.packb([EPOCH, "position", 1]),
            "not an ack: not enough values to unpack (expected 4, got 3)",
        ),
        (msgpack.packb({"epoch": EPOCH}), "not an ack: not enough values to unpack (expected 4, got 1)"),
        (b"\xc1", "not an ack: "),
        (b"", "not an ack: Unpack failed: incomplete input"),
        (msgpack.packb(["not-an-epoch", "position", 1, 2]), "not an ack: 'not-an-epoch' 'position' 1 2"),
        (msgpack.packb([EPOCH, "position", 5, 2]), f"not an ack: '{EPOCH}' 'position' 5 2"),
        (msgpack.packb([EPOCH, "position", 0, 2]), f"not an ack: '{EPOCH}' 'position' 0 2"),
    ],
    ids=[
        "stream",
        "first-str",
        "last-float",
        "three",
        "map",
        "garbage",
        "empty",
        "epoch",
        "reversed",
        "zero",
    ],
)
def test_decode_ack_refuses(payload, message):
    with pytest.raises(WireError) as info:
        decode_ack(payload)
    assert (info.value.reason, str(info.value)) == ("bad_ack", f"bad_ack: {message}")


# -- size ----------------------------------------------------------------------------------------


def vessel_track(n: int = 5000, seed: int = 42) -> list[Position]:
    """A 1 Hz track of a vessel at ~8 kn turning slowly, with ~1 m of correlated GPS noise."""
    rng = random.Random(seed)
    lat, lon, heading, speed = 16.0544, 108.2022, 45.0, 8.0
    noise_lat = noise_lon = 0.0
    track = []
    for i in range(n):
        heading = (heading + rng.gauss(0, 0.3)) % 360
        speed = min(max(speed + rng.gauss(0, 0.02), 4.0), 12.0)
        metres = speed * 0.514444
        lat += metres * math.cos(math.radians(heading)) / 111_320
        lon += metres * math.sin(math.radians(heading)) / (111_320 * math.cos(math.radians(lat)))
        noise_lat = 0.95 * noise_lat + rng.gauss(0, 0.3e-6)
        noise_lon = 0.95 * noise_lon + rng.gauss(0, 0.3e-6)
        ts = T0 + i * 1000
        track.append(
            Position(
                ts,
                GPS,
                ts + rng.randint(0, 3),
                round(lat + noise_lat, 7),
                round(lon + noise_lon, 7),
                round(speed + rng.gauss(0, 0.05), 2),
                round(heading, 1),
                1,
                9 + (i // 700) % 3,
                round(0.9 + rng.choice((0, 0, 0, 0.1)), 2),
                round(2 + rng.gauss(0, 0.3), 1),
            )
        )
    return track


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_vessel_track_costs_at_most_12_bytes_per_record(compression):
    track = vessel_track()
    batch = Batch(DEVICE, EPOCH, "position", list(range(1, len(track) + 1)), track)
    payload = encode_batch(batch, compression)
    assert len(payload) / len(track) <= 12.0, f"{len(payload) / len(track):.2f} bytes per record"
    assert_same_batch(decode_batch(payload), batch)


def test_event_with_a_jpeg_blob_round_trips_and_a_wrong_type_is_refused():
    jpeg = bytes(range(256)) * 40
    t = 1_764_000_000_000
    event = Event(
        t, 1, t, "cam-1", "boat_at_night", "boat", 7, 0.81, 10, 20, 110, 90, "crossed at 21:40", jpeg
    )
    batch = Batch(DEVICE, EPOCH, "event", [1], [event])
    assert decode_batch(encode_batch(batch)).records == [event]
    with pytest.raises(InvalidRecords) as info:
        encode_batch(batch._replace(records=[event._replace(jpeg="not bytes")]))
    assert (info.value.column, info.value.rows) == ("jpeg", [0])


def test_a_batch_is_encoded_to_the_bytes_the_numpy_encoder_wrote():
    # Pinned from the encoder before it left numpy (the IOC's decoder did not change): deltas of
    # order 2, zig-zag, byte widths, shuffled bytes and presence bitmaps, column by column.
    records = [
        Position(
            T0 + 1000 * i,
            GPS,
            T0 + 1000 * i + (7 if i == 2 else 0),
            16.5 + 0.0001 * i * i,
            107.6 - 0.00003 * i,
            None if i == 1 else 5.25 + i,
            90.0,
            1,
            9 + i,
            0.9,
            -3.5 if i == 3 else None,
        )
        for i in range(5)
    ]
    payload = encode_batch(Batch(DEVICE, EPOCH, "position", [3, 4, 5, 9, 10], records), "zlib")
    body = msgpack.unpackb(zlib.decompress(payload[1:]), raw=False)
    assert body["seq"] == [[3], 1, b"\x02\x02\x08\x02"]
    assert body["c"] == [
        [None, [T0, 1000], 0, b""],
        [None, [1], 0, b""],
        [None, [T0, 1000], 1, b"\x0e\x1b\x0e"],
        [None, [165000000, 1000], 2, b"\xa0\xa0\xa0\x0f\x0f\x0f"],
        [None, [1076000000, -300], 0, b""],
        [b"\xb8", [525], 2, b"\x90\xc8\xc8\x01\x00\x00"],
        [None, [900], 0, b""],
        [None, [1], 0, b""],
        [None, [9], 1, b"\x02\x02\x02\x02"],
        [None, [90], 0, b""],
        [b"\x10", [-35], 0, b""],
    ]


@pytest.mark.parametrize("mean", [math.inf, -math.inf, 1e300, 1e16])
def test_a_value_with_no_int64_once_scaled_is_invalid_not_sent_as_another(mean):
    # 1e16 * 1000 is beyond int64: numpy's cast turned such a value into -9.2e15 without a word.
    good = Summary(T0, NTP, T0, "pm-a", "pm25", 60, 60, 35.0, 30.0, 40.0, 35.0, 2100.0, 0)
    batch = Batch(DEVICE, EPOCH, "summary", [1, 2], [good, good._replace(mean=mean)])
    with pytest.raises(InvalidRecords) as info:
        encode_batch(batch)
    assert (info.value.column, info.value.rows) == ("mean", [1])
    assert str(info.value) == "1 record(s) with an invalid mean"
