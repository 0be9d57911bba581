"""What the two command lines (``ioc-edge``, ``ioc-center``) share: the log option and clean failures."""

from __future__ import annotations

import signal
import threading
from collections.abc import Collection
from typing import Any

import click

from common.logs import LOG_LEVELS

log_level_option = click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Least severe log messages shown (on stderr, as key=value lines).",
)


def iso_time_ms(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """An option's ISO 8601 time (a bare date or no zone: UTC) as UTC ms (a click callback)."""
    import datetime as dt

    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-11-01T06:00:00+07:00"
        ) from None
    return int((when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp() * 1000)


class Failed(click.ClickException):
    """A library error, shown as its own lines (a config error has one line per problem)."""

    exit_code = 1

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(self.message, err=True)


class ExtraGroup(click.Group):
    """A command group some of whose commands need an optional extra (``pip install 'DIST[EXTRA]'``).

    Those commands import the extra's modules in their bodies, never at module level, so that the
    others (and every ``--help``) work on an install without it. When one of ``modules`` is missing,
    the command stops with one line naming the extra to install, exit code 1, instead of a traceback;
    a missing module that is not the extra's is a bug or a broken install, and keeps its traceback.

    Example::

        @click.group(cls=ExtraGroup, distribution="ioc-edge", extra="ioc", modules=("fastapi",))
        def main() -> None: ...
    """

    def __init__(self, *args: Any, distribution: str, extra: str, modules: Collection[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.distribution = distribution
        self.extra = extra
        self.modules = frozenset(modules)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").partition(".")[0]
            if missing not in self.modules:
                raise
            command = " ".join(filter(None, [ctx.command_path, ctx.invoked_subcommand]))
            raise Failed(
                f"{command} needs {missing}, which comes with the {self.extra} extra: "
                f"pip install '{self.distribution}[{self.extra}]'"
            ) from None


def wait_for_stop_signal() -> None:
    """Block until SIGTERM (systemd, ``kill``) or SIGINT (Ctrl-C) arrives."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
