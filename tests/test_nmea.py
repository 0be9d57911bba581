"""The NMEA GPS parser and driver: real captures, merging, time provenance, garbage."""

from __future__ import annotations

import datetime
import json
import logging
from collections import Counter
from functools import reduce

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import drivers.base
from common.clock import Clock
from drivers.base import decode
from drivers.nmea import MAX_LINE, NmeaGps, NmeaParser
from drivers.transport import EndOfStream, MemoryTransport, ReplayTransport, Transport, TransportError
from edge.cli import main
from sync.records import Position, TimeSource

WALL_S = 1_000.0  # a node booted without RTC: 1970, so clock time is FREE
GPS, FREE = int(TimeSource.GPS), int(TimeSource.FREE)


class SpyClock(Clock):
    """A clock stuck in 1970 that remembers what the GPS told it."""

    def __init__(self) -> None:
        super().__init__(wall=lambda: WALL_S, synced=lambda: False)
        self.observed: list[int] = []

    def observe_gps(self, utc_ms: int) -> None:
        self.observed.append(utc_ms)
        super().observe_gps(utc_ms)


def nmea(body: str, start: str = "$") -> bytes:
    """A sentence with a correct checksum and CR LF."""
    checksum = reduce(lambda acc, ch: acc ^ ord(ch), body, 0)
    return f"{start}{body}*{checksum:02X}\r\n".encode()


def utc_ms(*args: int) -> int:
    return int(datetime.datetime(*args, tzinfo=datetime.UTC).timestamp() * 1000)


def parse(data: bytes, clock: Clock | None = None) -> tuple[list[Position], NmeaParser]:
    parser = NmeaParser(clock or SpyClock())
    return parser.feed(data) + parser.flush(), parser


RMC = nmea("GPRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230324,003.1,W,A")
GGA = nmea("GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")
VTG = nmea("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A")
RMC2 = nmea("GPRMC,123520.00,A,4807.040,N,01131.002,E,022.5,084.5,230324,003.1,W,A")
T0 = utc_ms(2024, 3, 23, 12, 35, 19)
FIRST = Position(T0, GPS, 1_000_000, 48 + 7.038 / 60, 11 + 31.0 / 60, 5.5, 54.7, 1, 8, 0.9, 545.4)

# (positions, of which GPS-timed) per shared capture: a regression table, and each figure was
# checked against the capture: hemi.log has GGA fixes but no RMC (so no date), the Telit's
# first 260 lines have no fix, ublox-8.log ends in a cut RMC and has UBX binary in line 11.
CAPTURES = {
    "ais-nmea.log": (164, 164),
    "beidou-bd.log": (5, 5),
    "beidou-gb.log": (2, 2),
    "bu353s4.log": (25, 25),
    "garmin25lp.log": (10, 10),
    "gp-320fw-2019-04-06-overflow.log": (20, 20),
    "haicom-305N.log": (68, 68),
    "hemi.log": (21, 0),
    "mt3339.log": (30, 30),
    "nmea-rtk.log": (122, 122),
    "quectel-l76k-nmea.log": (151, 151),
    "sirfstarv-nmea.log": (59, 59),
    "skytraq-dgps.log": (96, 96),
    "telit-he910.log": (187, 187),
    "ublox-8.log": (72, 72),
    "ublox-neo-m9n-nmea.log": (61, 61),
}

# Where the receivers were (from the captures' headers), to within 0.1 degree.
LOCATIONS = {
    "ublox-8.log": (44.07, -121.31),
    "bu353s4.log": (-37.78, 175.31),
    "quectel-l76k-nmea.log": (47.66, -122.33),
    "telit-he910.log": (50.84, 4.35),
    "ais-nmea.log": (52.84, 5.71),
    "beidou-bd.log": (31.25, 121.59),
}


def decode_capture(path) -> tuple[list[Position], NmeaParser]:
    parser = NmeaParser(SpyClock())
    with ReplayTransport(path, speed=0) as replay:
        return list(decode(parser, replay)), parser


def test_shared_captures_cover_the_table(shared_dir):
    assert sorted(p.name for p in (shared_dir / "nmea").glob("*.log")) == sorted(CAPTURES)


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_every_shared_capture_decodes(shared_dir, name):
    positions, parser = decode_capture(shared_dir / "nmea" / name)
    assert (len(positions), sum(p.tsrc == GPS for p in positions)) == CAPTURES[name]
    assert sum(parser.rejects.values()) <= 2
    for p in positions:
        assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180
        assert p.speed_kn is None or 0 <= p.speed_kn < 100
        assert p.tsrc in (GPS, FREE) and p.clock_ms == 1_000_000
        if p.tsrc == GPS:
            assert p.ts_ms >= utc_ms(2020, 1, 1)
    times = [p.ts_ms for p in positions if p.tsrc == GPS]
    assert len(set(times)) == len(times)  # one Position per fix
    # time runs forward (the Telit steps back once, from 10:51:53.71 to 10:51:53.408)
    assert sum(b < a for a, b in zip(times, times[1:], strict=False)) <= (name == "telit-he910.log")
    if name in LOCATIONS:
        lat, lon = LOCATIONS[name]
        assert all(abs(p.lat - lat) < 0.1 and abs(p.lon - lon) < 0.1 for p in positions)


def test_ublox8_figures(shared_dir):
    positions, parser = decode_capture(shared_dir / "nmea" / "ublox-8.log")
    # line 11: UBX binary glued to an RMC (over 164 bytes, the RMC kept); the last RMC is cut
    assert parser.rejects == Counter(too_long=1, no_checksum=1)
    assert parser.ignored == Counter(GSV=504, GSA=144, GLL=72, ZDA=72)
    first = positions[0]
    assert (first.fix, first.sats, first.hdop, first.alt_m, first.speed_kn) == (1, 12, 1.01, 1144.8, 0.029)


def test_ais_is_ignored_not_rejected(shared_dir):
    positions, parser = decode_capture(shared_dir / "nmea" / "ais-nmea.log")
    assert parser.rejects == Counter()
    assert parser.ignored["ais"] == 183
    assert positions[0].ts_ms == utc_ms(2020, 4, 7, 21, 39, 50)


def test_telit_without_fix_never_sets_time(shared_dir):
    text = (shared_dir / "nmea" / "telit-he910.log").read_bytes()
    no_fix_part = text[: text.index(b"$GPGGA,105153.71,")]  # its first fix
    clock = SpyClock()
    positions, parser = parse(no_fix_part, clock)
    assert positions == [] and clock.observed == []
    assert parser.ignored["no_fix"] == 37 * 3  # 37 cycles of RMC status V, GGA quality 0, VTG mode N
    assert clock.now().tsrc == FREE


def test_week_rollover_in_the_gp320fw_capture(shared_dir):
    positions, _ = decode_capture(shared_dir / "nmea" / "gp-320fw-2019-04-06-overflow.log")
    # the receiver says 2019-04-06 23:57:24; before 2020, so 1024 weeks are added
    assert positions[0].ts_ms == utc_ms(2019, 4, 6, 23, 57, 24, 20_000) + 1024 * 7 * 86_400_000
    assert datetime.datetime.fromtimestamp(positions[0].ts_ms / 1000, datetime.UTC).date() == datetime.date(
        2038, 11, 20
    )


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("230324", datetime.date(2024, 3, 23)),  # after 2020: as is
        ("060419", datetime.date(2038, 11, 20)),  # 2019-04-06 + 1024 weeks
        ("220899", datetime.date(2038, 11, 21)),  # 1999-08-22 + 2048 weeks (two rollovers)
        ("010120", datetime.date(2020, 1, 1)),
    ],
)
def test_week_rollover(date, expected):
    positions, _ = parse(nmea(f"GPRMC,000001.00,A,4807.038,N,01131.000,E,,,{date},,,A"))
    (p,) = positions
    assert p.ts_ms == utc_ms(expected.year, expected.month, expected.day, 0, 0, 1)


def test_rmc_gga_vtg_of_one_fix_merge_into_one_position():
    clock = SpyClock()
    positions, parser = parse(RMC + GGA + VTG + RMC2, clock)
    assert positions[0] == FIRST
    assert positions[1] == Position(
        T0 + 1000, GPS, 1_000_000, 48 + 7.040 / 60, 11 + 31.002 / 60, 22.5, 84.5, None, None, None, None
    )
    assert clock.observed == [T0, T0 + 1000]
    assert parser.rejects == Counter() and parser.ignored == Counter()


def test_merge_in_any_order_and_across_chunk_boundaries():
    data = GGA + RMC + VTG + RMC2
    parser = NmeaParser(SpyClock())
    positions = []
    for i in range(len(data)):  # one byte per read
        positions += parser.feed(data[i : i + 1])
    positions += parser.flush()
    assert positions[0] == FIRST
    assert len(positions) == 2


def test_gnss_talkers():
    data = (
        nmea("BDRMC,074155.799,A,3114.8770,N,12135.2463,E,0.30,4.94,250224,,,A")
        + nmea("GBGGA,074155.799,3114.8770,N,12135.2463,E,1,05,1.3,156.9,M,8.4,M,,")
        + nmea("GNRMC,074156.799,A,3114.8950,N,12135.2442,E,0.26,4.94,250224,,,A")
        + nmea("GLGGA,074157.000,3114.8950,N,12135.2442,E,1,05,1.3,156.9,M,8.4,M,,")
        + nmea("GAVTG,10.0,T,,M,1.5,N,2.8,K,A")
        + nmea("GQRMC,074158.000,A,3114.8950,N,12135.2442,S,0.26,4.94,250224,,,A")
    )
    positions, parser = parse(data)
    assert [(p.ts_ms, p.fix, p.sats) for p in positions] == [
        (utc_ms(2024, 2, 25, 7, 41, 55, 799_000), 1, 5),
        (utc_ms(2024, 2, 25, 7, 41, 56, 799_000), None, None),
        (utc_ms(2024, 2, 25, 7, 41, 57), 1, 5),  # GGA-only: the last RMC's date
    ]
    assert (positions[2].speed_kn, positions[2].course_deg) == (1.5, 10.0)  # VTG merged
    assert parser.rejects == Counter(bad_field=1)  # hemisphere S for a longitude


def test_no_fix_never_sets_time_nor_emits():
    clock = SpyClock()
    data = (
        nmea("GPRMC,123519.00,V,4807.038,N,01131.000,E,,,230324,,,N")
        + nmea("GPGGA,123519.00,4807.038,N,01131.000,E,0,00,,,M,,M,,")
        + nmea("GPVTG,,T,,M,,N,,K,N")
        + nmea("GPRMC,,V,,,,,,,,,,N")
        + nmea("GPGGA,,,,,,0,,,,M,,M,,")
    )
    positions, parser = parse(data, clock)
    assert positions == [] and clock.observed == []
    assert parser.ignored == Counter(no_fix=5)
    assert parser.rejects == Counter()


def test_fix_without_date_takes_time_from_the_clock():
    clock = SpyClock()
    positions, _ = parse(GGA, clock)
    assert positions == [FIRST._replace(ts_ms=1_000_000, tsrc=FREE, speed_kn=None, course_deg=None)]
    assert clock.observed == []


def test_date_of_an_invalid_rmc_is_not_trusted():
    data = nmea("GPRMC,123518.00,V,,,,,,,230324,,,N") + GGA
    positions, _ = parse(data)
    assert positions[0].tsrc == FREE


def test_gga_only_fix_after_midnight_moves_to_the_next_day():
    data = nmea("GPRMC,235959.00,A,4807.038,N,01131.000,E,,,230324,,,A") + nmea(
        "GPGGA,000000.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
    )
    positions, _ = parse(data)
    assert [p.ts_ms for p in positions] == [utc_ms(2024, 3, 23, 23, 59, 59), utc_ms(2024, 3, 24)]


def test_clock_takes_gps_time_after_a_fix():
    clock = SpyClock()
    parse(RMC, clock)
    stamp = clock.now()
    assert stamp.tsrc == GPS and T0 <= stamp.ts_ms < T0 + 1000 and stamp.clock_ms == 1_000_000


def test_garbage_counted_by_reason_valid_sentences_kept():
    data = (
        b"1.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"  # the stream starts mid-sentence
        + RMC
        + b"\x00\xff\xfe\x81 noise\r\n"
        + b"hello world\r\n"
        + b"$GPGGA,123519.00,4807.03"
        + GGA  # a sentence cut by the next one
        + RMC2.replace(b"*", b"*0").replace(b"\r\n", b"")[:-1]
        + b"\r\n"  # wrong checksum
        + b"$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00\r\n"  # no checksum
        + b"$"
        + b"A" * 500
        + b"\r\n"  # far too long
        + "$GPRMC,ü\r\n".encode()
        + nmea("GPRMC,123521.00,A,9907.040,N,01131.002,E,,,230324,,,A")  # latitude 99
        + nmea("GPRMC,1235")  # too few fields
        + RMC.replace(b"*22", b"*2g")  # pynmea2 cannot parse it (a checksum that is not hex)
        + nmea("GPGSV,1,1,00")
        + nmea("PGRME,15.0,M,45.0,M,25.0,M")
        + nmea("AIVDM,1,1,,A,13aGmP0P00PD;88MD5MTDww@2<0L,0", start="!")
        + RMC2
    )
    positions, parser = parse(data)
    assert parser.rejects == Counter(
        truncated=2,
        not_ascii=2,
        no_start=1,
        bad_checksum=1,
        no_checksum=1,
        too_long=1,
        bad_field=1,
        parse_error=2,
    )
    assert parser.ignored == Counter(GSV=1, PGRM=1, ais=1)
    assert [p.ts_ms for p in positions] == [T0, T0 + 1000]
    assert positions[0] == FIRST._replace(speed_kn=22.4, course_deg=84.4)


def test_long_garbage_without_newline_is_never_buffered():
    parser = NmeaParser(SpyClock())
    out = parser.feed(RMC)
    for _ in range(100):
        out += parser.feed(b"\x01" * 1000)
        assert len(parser._buf) <= MAX_LINE
    out += parser.feed(b"junk" + RMC2) + parser.flush()
    assert parser.rejects == Counter(too_long=1)
    assert [p.ts_ms for p in out] == [T0, T0 + 1000]


def test_ignored_kinds_are_bounded():
    data = b"".join(nmea(f"GP{i:03d},1") for i in range(200))
    _, parser = parse(data)
    assert len(parser.ignored) <= 65 and sum(parser.ignored.values()) == 200
    assert parser.ignored["other"] == 200 - 64


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=20))
def test_arbitrary_bytes_never_raise(data, cuts):
    parser = NmeaParser(SpyClock())
    pos = 0
    for size in cuts:
        parser.feed(data[pos : pos + size])
        pos += size
    parser.feed(data[pos:])
    parser.flush()
    assert len(parser._buf) <= MAX_LINE


SENTENCES = [RMC, GGA, VTG, RMC2, nmea("GPGGA,123521.00,4807.038,S,01131.000,W,2,05,1.9,5.4,M,46.9,M,,")]
CLEAN = parse(b"".join(SENTENCES))[0]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.binary(max_size=400), min_size=len(SENTENCES), max_size=len(SENTENCES)),
    st.integers(1, 64),
)
def test_valid_sentences_survive_garbage_before_them(garbage, chunk):
    data = b"".join(junk + sentence for junk, sentence in zip(garbage, SENTENCES, strict=True))
    parser = NmeaParser(SpyClock())
    positions = []
    for i in range(0, len(data), chunk):
        positions += parser.feed(data[i : i + chunk])
    positions += parser.flush()
    assert positions == CLEAN


def test_cli_decode_nmea(tmp_path):
    path = tmp_path / "gps.log"
    path.write_bytes(b"# Name: test\n" + RMC + GGA + b"$GPGGA,bad*00\r\n" + nmea("GPGSV,1,1,00") + RMC2)
    result = CliRunner().invoke(main, ["decode", "nmea", str(path)])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(p["ts_ms"], p["tsrc"], p["fix"]) for p in lines] == [(T0, "gps", 1), (T0 + 1000, "gps", None)]
    assert list(lines[0]) == list(Position._fields)
    assert result.stderr == "rejected: bad_checksum=1\nignored: GSV=1\n"


def test_cli_decode_missing_file(tmp_path):
    result = CliRunner().invoke(main, ["decode", "nmea", str(tmp_path / "none.log")])
    assert result.exit_code == 1
    assert result.stderr == f"replay file {tmp_path / 'none.log'} not found: check the path\n"


def test_gps_driver_thread_sends_positions_to_the_sink():
    received: list[tuple[str, list[Position]]] = []
    transport = MemoryTransport(RMC + GGA + VTG + b"junk\r\n" + RMC2, chunk=7)
    gps = NmeaGps("gps", transport, lambda stream, records: received.append((stream, records)), SpyClock())
    gps.start()
    gps.join(5)
    assert not gps.running
    assert [stream for stream, _ in received] == ["position", "position"]
    assert [r for _, records in received for r in records][0] == FIRST
    assert gps.records == 2
    assert gps.rejects == Counter(no_start=1) and gps.rejects is gps.parser.rejects


class FlakyTransport(Transport):
    """Fails twice, then delivers a fix, then ends."""

    def __init__(self) -> None:
        self.name = "flaky"
        self.script: list[bytes | Exception] = [
            TransportError("serial port /dev/ttyUSB0 failed"),
            TransportError("serial port /dev/ttyUSB0 failed"),
            RMC + RMC2,
            EndOfStream("done"),
        ]

    def read(self, timeout: float) -> bytes:
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


def test_driver_retries_transport_errors_logging_once(monkeypatch, caplog):
    monkeypatch.setattr(drivers.base, "RETRY_MIN_S", 0.01)
    caplog.set_level(logging.INFO, logger="drivers.base")
    received: list[Position] = []
    gps = NmeaGps("gps", FlakyTransport(), lambda stream, records: received.extend(records), SpyClock())
    gps.start()
    gps.join(5)
    assert [p.ts_ms for p in received] == [T0, T0 + 1000]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("event=transport_error" in m for m in messages) == 1
    assert sum("event=transport_recovered" in m for m in messages) == 1
    assert sum("event=end_of_stream" in m for m in messages) == 1
    assert (gps.failing, gps.health) == (None, {"transport_lost": 1, "transport_recovered": 1})


def test_driver_stops_on_request():
    gps = NmeaGps("gps", MemoryTransport(eof=False), lambda stream, records: None, SpyClock())
    gps.start()
    assert gps.running
    gps.stop(timeout=2)
    assert not gps.running
