"""``ioc-center``: the central side's command line (a thin layer over ``ioc``)."""

from __future__ import annotations

import base64
import json
import signal
import threading

import click

from edge.clikit import Failed, log_level_option, wait_for_stop_signal
from edge.errors import IocEdgeError
from edge.logs import setup_logging
from ioc.db import URL_FORMS, Database

DEFAULT_DB = "sqlite:///ioc.db"
DB_HELP = f"Database URL: {URL_FORMS} (the password, if any, from ~/.pgpass or PGPASSWORD)."


@click.group()
@log_level_option
def main(log_level: str) -> None:
    """The IOC's receiver and tools.

    Example: ioc-center run --mqtt-port 1883 --db sqlite:///ioc.db
    """
    setup_logging(log_level)


@main.command()
@click.option("--mqtt-host", default="127.0.0.1", show_default=True, help="Broker host.")
@click.option("--mqtt-port", default=1883, show_default=True, help="Broker port.")
@click.option("--db", "url", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.option("--group", default="ioc-center", show_default=True, help="Shared-subscription group name.")
@click.option("--client-id", default=None, help="MQTT client id (default: ioc-center-<hostname>).")
@click.option("--topic-prefix", default="ioc/v1", show_default=True, help="Root of the topic tree.")
def run(
    mqtt_host: str, mqtt_port: int, url: str, group: str, client_id: str | None, topic_prefix: str
) -> None:
    """Receive, validate, de-duplicate, store and ack what the nodes send, until stopped.

    Run several with the same --group and distinct --client-id to share the load.

    Example: ioc-center run --mqtt-port 1883 --db sqlite:///var/lib/ioc/ioc.db
    """
    from ioc.receiver import Receiver

    try:
        receiver = Receiver(
            Database(url), mqtt_host, mqtt_port, prefix=topic_prefix, group=group, client_id=client_id
        )
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    receiver.start()
    wait_for_stop_signal()
    receiver.stop()


@main.command()
@click.argument("stream")
@click.option("--device", default=None, help="Only this device's records.")
@click.option("--db", "url", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def dump(stream: str, device: str | None, url: str) -> None:
    """Print the stored records of STREAM (position, alarm, summary, count, event ...) as JSON lines.

    Blobs (event snapshots) are printed in base64.

    Example: ioc-center dump position --device vessel-042
    """
    try:
        for record in Database(url).dump(stream, device):
            click.echo(json.dumps(record, default=_base64))
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


def _base64(value: bytes) -> str:
    """Blobs (event snapshots) in JSON: base64, so a dump stays one line per record."""
    return base64.b64encode(value).decode()


@main.command()
@click.option("--db", "url", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def rejects(url: str) -> None:
    """Print the payloads refused so far, counted by reason.

    Example: ioc-center rejects --db sqlite:///ioc.db
    """
    try:
        for reason, count in sorted(Database(url).rejects().items()):
            click.echo(f"{reason}: {count}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@main.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default="demo-state",
    show_default=True,
    help="Where the demo keeps its files (an earlier run's are replaced).",
)
@click.option(
    "--speed",
    type=click.FloatRange(0, 10_000),
    default=4.0,
    show_default=True,
    help="Replay speed: 1 is real time at 4800 baud (ais-nmea.log then takes 3 min), 0 as fast as possible.",
)
@click.option(
    "--capture",
    type=click.Path(dir_okay=False),
    default=None,
    help="NMEA capture to replay [default: $IOC_EDGE_SHARED/nmea/ais-nmea.log].",
)
@click.option(
    "--flood-every",
    "flood_every_s",
    type=click.FloatRange(10, 86_400),
    default=90.0,
    show_default=True,
    help="Seconds between two floods of the demo's river (each raises and clears the flood alarm).",
)
@click.option("--exit-when-done", is_flag=True, help="Stop after the summary instead of waiting for Ctrl-C.")
def demo(workdir: str, speed: float, capture: str | None, flood_every_s: float, exit_when_done: bool) -> None:
    """Run the whole system on this machine: a broker, this centre, and three edge nodes (a vessel
    replaying a GPS capture, a roadside camera replaying a street video through the detector, an
    environment node with particulate sensors, rain gauge and river level), and show what arrives.
    A summary once every node's records are in. Ctrl-C stops all.

    Example: ioc-center demo --speed 10
    """
    from pathlib import Path

    from ioc.demo import Demo, DemoOptions, shared_dir

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        options = DemoOptions(
            Path(workdir),
            shared_dir(),
            Path(capture) if capture else None,
            speed,
            flood_every_s,
            exit_when_done,
        )
        Demo(options, stop, click.echo).run()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
