"""``ioc-center audit``: the audit log of what was issued, labelled, pushed or adopted."""

from __future__ import annotations

import json

import click

from common.clikit import Failed, iso_time_ms
from common.errors import IocEdgeError
from ioc.cli.shared import db_option, utc
from ioc.db import Database


@click.group("audit")
def audit_group() -> None:
    """The audit log: every command issued, label changed, config pushed or adopted; who, when, what,
    to which node, and the result (a command's, where it stands now).

    Example: ioc-center audit list --device gauge-07 --since 2026-11-01 --db sqlite:///ioc.db
    """


@audit_group.command("list")
@click.option("--device", "device_id", default=None, help="Only the entries about this node.")
@click.option(
    "--since",
    "since_ms",
    default=None,
    callback=iso_time_ms,
    help="From this time on, ISO 8601 (no zone: UTC).",
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV for a spreadsheet (formula-like text neutralised).")
@db_option
def audit_list(device_id: str | None, since_ms: int | None, as_csv: bool, url: str) -> None:
    """Print the audit log, oldest first: id, time (UTC), user, action, node, result, details (JSON).

    Example: ioc-center audit list --since 2026-11-01T00:00+07:00 --csv --db sqlite:///ioc.db > audit.csv
    """
    from ioc.audit import csv_text, entries

    try:
        log = entries(Database(url), device_id, since_ms)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    if as_csv:
        for piece in csv_text(log):
            click.echo(piece, nl=False)
        return
    for e in log:
        seq = f"#{e.command_seq}" if e.command_seq is not None else ""
        click.echo(
            f"{e.id}\t{utc(e.at_ms)}\t{e.user or '?'}\t{e.action}\t{e.target}{seq}\t{e.result}\t"
            f"{json.dumps(e.details, sort_keys=True, ensure_ascii=False)}"
        )
