"""``ioc-center demo``: the whole system on this machine (a broker, this centre, three edge nodes)."""

from __future__ import annotations

import signal
import threading

import click

from common.clikit import Failed
from common.errors import IocEdgeError


@click.command()
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
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port of the dashboard on 127.0.0.1 (0: a free one).",
)
@click.option("--exit-when-done", is_flag=True, help="Stop after the summary instead of waiting for Ctrl-C.")
def demo(
    workdir: str,
    speed: float,
    capture: str | None,
    flood_every_s: float,
    http_port: int,
    exit_when_done: bool,
) -> None:
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
            http_port,
            exit_when_done,
        )
        Demo(options, stop, click.echo).run()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
