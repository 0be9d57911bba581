"""What the ``ioc-center`` commands share: the database and CA options, who runs a command, times."""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path

import click

from ioc.db import URL_FORMS

DEFAULT_DB = "sqlite:///ioc.db"
DB_HELP = f"Database URL: {URL_FORMS} (the password, if any, from ~/.pgpass or PGPASSWORD)."
db_option = click.option("--db", "url", default=DEFAULT_DB, show_default=True, help=DB_HELP)
"""The database option of every command that reads or writes the centre's database."""
ca_option = click.option(
    "--ca",
    "ca_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="/var/lib/ioc/ca",
    show_default=True,
    envvar="IOC_CA",
    help="The CA directory (from `ca init`); also $IOC_CA.",
)
"""The CA directory option of ``ca``, ``device`` and ``broker-config``."""


def operator_name() -> str:
    """The login name of who runs the command, recorded with what it does; "" when none is known."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name known (a container without one): recorded as unknown
        return ""


def utc(ms: int) -> str:
    """``ms`` (UTC ms) as ``2026-11-01 06:00Z``, as the commands print times."""
    return f"{dt.datetime.fromtimestamp(ms / 1000, dt.UTC):%Y-%m-%d %H:%M}Z"
