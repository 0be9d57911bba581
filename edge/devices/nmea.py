"""``type = "nmea"``: an NMEA 0183 GPS receiver (``drivers.nmea``) on a byte transport."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.clock import Clock
from common.config import Section
from drivers.base import RecordSource
from drivers.nmea import NmeaGps, NmeaParser
from drivers.transport import TransportError
from edge.devices.base import (
    FAIL,
    GPS,
    PASS,
    BuildContext,
    CheckContext,
    CheckResult,
    Decoder,
    DeviceType,
    first_records,
)
from edge.devices.transport import TransportConfig, ends_by_itself, open_transport
from edge.health import Watched
from edge.status import counts_text
from sync.records import Position

__all__ = ["DEVICE", "GpsProbe", "NmeaDriverConfig"]


class NmeaDriverConfig(Section):
    """An NMEA 0183 GPS receiver."""

    type: Literal["nmea"] = Field(description="Driver kind.")
    transport: TransportConfig = Field(description="Where the receiver's bytes come from.")
    ais_per_s: float = Field(
        20,
        description="Most AIS sentences (!AIVDM) a second passed on to the IOC; the rest counted; 0: none.",
        ge=0,
        le=1000,
    )


def build(name: str, cfg: NmeaDriverConfig, ctx: BuildContext) -> Watched:
    gps = NmeaGps(name, ctx.transport(name, cfg.transport), ctx.sink, ctx.clock, ais_per_s=cfg.ais_per_s)
    return Watched(gps, cfg.type, 0.0, finite=ends_by_itself(cfg.transport))


class GpsProbe:
    """Reads an NMEA receiver until its first valid fix (once; the clock and GPS checks share it)."""

    def __init__(self, name: str, cfg: NmeaDriverConfig, clock: Clock, seconds: float) -> None:
        self.name, self.cfg, self.clock, self.seconds = name, cfg, clock, seconds
        self.error: str | None = None
        self.fix: Position | None = None
        self.read = 0
        self.parser = NmeaParser(clock)

    def run(self) -> GpsProbe:
        try:
            transport = open_transport(self.cfg.transport)
        except TransportError as exc:
            self.error = str(exc)
            return self
        with transport:
            self.read, fixes = first_records(transport, self.parser, self.seconds)
        self.fix = fixes[0] if fixes else None
        return self


def _probe(name: str, cfg: NmeaDriverConfig, ctx: CheckContext) -> GpsProbe:
    return ctx.once(f"gps.{name}", lambda: GpsProbe(name, cfg, ctx.clock, ctx.seconds).run())


def gps_time(name: str, cfg: NmeaDriverConfig, ctx: CheckContext) -> Position | None:
    return _probe(name, cfg, ctx).fix


def last_fix(source: RecordSource) -> Position | None:
    """The running receiver's newest fix, for the live self-test's clock check."""
    return source.last_fix if isinstance(source, NmeaGps) else None


def check(name: str, cfg: NmeaDriverConfig, ctx: CheckContext) -> list[CheckResult]:
    """The GPS receiver reports a valid fix within the probe's time."""
    probe = _probe(name, cfg, ctx)
    label = f"gps {probe.name}"
    if probe.error:
        return [CheckResult(label, FAIL, probe.error, f"check drivers.{probe.name}.transport and the cable")]
    if probe.fix is not None:
        fix = probe.fix
        return [
            CheckResult(label, PASS, f"fix at {fix.lat:.5f}, {fix.lon:.5f} ({fix.sats or '?'} satellites)")
        ]
    parser = probe.parser
    if not probe.read:
        hint = "silent: check the receiver's power and that its TX goes to the node's RX on this port"
        return [CheckResult(label, FAIL, f"no byte in {probe.seconds:g} s", hint)]
    if parser.sentences <= parser.rejects.total():
        hint = "garbage: wrong baud rate? most receivers speak 4800 or 9600; check the port's settings"
        rejects = counts_text(parser.rejects, ", ")
        return [CheckResult(label, FAIL, f"no valid sentence (rejects: {rejects})", hint)]
    hint = "put the antenna under open sky (a cold start can take minutes), then run the self-test again"
    return [CheckResult(label, FAIL, f"no fix in {probe.seconds:g} s ({parser.sentences} sentences)", hint)]


DEVICE = DeviceType(
    NmeaDriverConfig,
    build,
    check,
    GPS,
    decoder=Decoder(
        lambda sensor, clock: NmeaParser(clock),
        """Replay the NMEA capture FILE through the GPS parser: one JSON Position a line on stdout,
    then the rejected and ignored sentences by reason on stderr.

    Example: ioc-edge decode nmea ../shared/nmea/ublox-8.log | head
    """,
        baudrate=4800,
    ),
    gps_time=gps_time,
    last_fix=last_fix,
)
