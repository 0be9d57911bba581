"""What the two command lines (``ioc-edge``, ``ioc-center``) share: the log option and clean failures."""

from __future__ import annotations

import signal
import threading

import click

from common.logs import LOG_LEVELS

log_level_option = click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Least severe log messages shown (on stderr, as key=value lines).",
)


class Failed(click.ClickException):
    """A library error, shown as its own lines (a config error has one line per problem)."""

    exit_code = 1

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(self.message, err=True)


def wait_for_stop_signal() -> None:
    """Block until SIGTERM (systemd, ``kill``) or SIGINT (Ctrl-C) arrives."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
