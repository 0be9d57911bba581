"""The ``ioc-edge`` command line: one small function per command, each one library call.

Library errors (:class:`~edge.errors.IocEdgeError`) become clean messages and exit code 1;
usage errors exit with 2 (click's convention).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

import click

from drivers.nmea import NmeaParser
from drivers.transport import ReplayTransport
from edge.clock import Clock
from edge.config import load_config
from edge.errors import IocEdgeError
from sync.records import Position, TimeSource

__all__ = ["main"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Failed(click.ClickException):
    """A library error, shown as its own lines (a config error has one line per problem)."""

    exit_code = 1

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(self.message, err=True)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... event=... key=value``: one greppable line per event.

    Messages are written as ``event=name key=value ...``; a message without ``=`` is quoted
    into ``msg="..."``.
    """

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "=" not in message:
            message = f"msg={json.dumps(message)}"
        line = f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}Z level={record.levelname.lower()} "
        line += f"logger={record.name} {message}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return line


def setup_logging(level: str) -> None:
    """Log to stderr in key=value lines at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Least severe log messages shown (on stderr, as key=value lines).",
)
def main(log_level: str) -> None:
    """Gateway software for the field devices of a city operations centre.

    Example: ioc-edge --log-level INFO config check /etc/ioc-edge/edge.toml
    """
    setup_logging(log_level)


@main.group()
def config() -> None:
    """Check node config files.

    Example: ioc-edge config check edge.toml
    """


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def config_check(file: Path) -> None:
    """Validate FILE and report every problem with its line; exit 1 if there is one.

    Example: ioc-edge config check examples/vessel.toml
    """
    try:
        cfg = load_config(file)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    count = len(cfg.drivers)
    click.echo(f"{file}: ok (device {cfg.node.device_id}, {count} driver{'' if count == 1 else 's'})")


@main.group()
def decode() -> None:
    """Decode device captures into records, like gpsdecode.

    Example: ioc-edge decode nmea ../shared/nmea/ublox-8.log
    """


@decode.command("nmea")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Replay speed; 0 is as fast as possible, 1 is real time at --baudrate.",
)
@click.option(
    "--baudrate", type=click.IntRange(min=1), default=4800, show_default=True, help="Line speed to imitate."
)
def decode_nmea(file: Path, speed: float, baudrate: int) -> None:
    """Replay the NMEA capture FILE through the GPS parser: one JSON Position a line on stdout,
    then the rejected and ignored sentences by reason on stderr.

    Example: ioc-edge decode nmea ../shared/nmea/ublox-8.log | head
    """
    parser = NmeaParser(Clock())
    try:
        with ReplayTransport(file, speed=speed, baudrate=baudrate) as transport:
            for position in parser.decode(transport):
                click.echo(_position_json(position))
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"rejected: {_counts(parser.rejects)}", err=True)
    click.echo(f"ignored: {_counts(parser.ignored)}", err=True)


def _position_json(position: Position) -> str:
    fields = position._asdict()
    fields["tsrc"] = TimeSource(position.tsrc).name.lower()
    return json.dumps(fields)


def _counts(counts: Counter[str]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(counts.items())) or "none"
