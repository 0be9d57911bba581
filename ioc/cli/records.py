"""``ioc-center dump`` and ``rejects``: what the centre stored, and what it refused."""

from __future__ import annotations

import base64
import json

import click

from common.clikit import Failed
from common.errors import IocEdgeError
from ioc.cli.shared import db_option
from ioc.db import Database


@click.command()
@click.argument("stream")
@click.option("--device", default=None, help="Only this device's records.")
@db_option
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


@click.command()
@db_option
def rejects(url: str) -> None:
    """Print the payloads refused so far, counted by reason.

    Example: ioc-center rejects --db sqlite:///ioc.db
    """
    try:
        for reason, count in sorted(Database(url).rejects().items()):
            click.echo(f"{reason}: {count}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
