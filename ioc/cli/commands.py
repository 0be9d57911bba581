"""``ioc-center command``: signed commands to the nodes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import click

from common.clikit import Failed
from common.errors import IocEdgeError
from ioc.cli.shared import db_option, operator_name
from ioc.db import Database


@click.group("command")
def command_group() -> None:
    """Signed commands to the nodes: queued in the database, sent by `ioc-center run --command-key K
    --command-cert C` until the node answers or they expire.

    Example: ioc-center command send --device vessel-042 --kind ping --db sqlite:///ioc.db
    """


@command_group.command("send")
@click.option("--device", "device_id", default=None, help="The node's device id (or --select).")
@click.option(
    "--select",
    "selector",
    default=None,
    metavar="KEY=VALUE[,...]",
    help="Every node whose labels hold all of these (`ioc-center node list`): one command each.",
)
@click.option("--kind", required=True, help="What the node is to do: ping, selftest, ...")
@click.option("--body", default="{}", show_default=True, help="The kind's arguments, a JSON object.")
@click.option(
    "--ttl",
    "ttl_s",
    type=click.IntRange(1, 30 * 86_400),
    default=3600,
    show_default=True,
    help="Seconds until it expires: not sent, and refused by the node, from then on.",
)
@click.option("--issuer", default=None, help="Who issues it, signed with it [default: this user].")
@db_option
def command_send(
    device_id: str | None,
    selector: str | None,
    kind: str,
    body: str,
    ttl_s: int,
    issuer: str | None,
    url: str,
) -> None:
    """Queue a command for a node and print its seq (the device's commands are numbered 1, 2, ...);
    with --select, one for each node the labels pick, printed as DEVICE SEQ lines. A node offline,
    or not yet heard of, gets it when it is back, until it expires. Each is kept in the audit log.

    Example: ioc-center command send --select district=phu-vang --kind ping --db sqlite:///ioc.db
    """
    from ioc.audit import COMMAND_SEND, audit
    from ioc.commands import CommandQueue
    from ioc.db import now_ms
    from ioc.selectors import devices_matching

    if (device_id is None) == (selector is None):
        raise Failed("give --device DEVICE or --select KEY=VALUE, one of them")
    try:
        arguments = json.loads(body)
    except ValueError as exc:
        raise Failed(f"--body is not JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise Failed("--body must be a JSON object, e.g. '{\"seconds\": 600}'")
    who = operator_name() if issuer is None else issuer
    try:
        db = Database(url)
        devices = [device_id] if device_id is not None else devices_matching(db, selector or "")
        if not devices:
            raise Failed(f"no node's labels match {selector!r}: nothing sent (see `ioc-center node list`)")
        queue = CommandQueue(db)
        for device in devices:
            details = {"kind": kind, "body": arguments, "ttl_s": ttl_s} | (
                {"select": selector} if selector else {}
            )
            try:
                seq = queue.issue(device, kind, arguments, who, ttl_s, now_ms())
            except IocEdgeError as exc:
                audit(db, who, COMMAND_SEND, device, details, f"not issued: {exc}")
                raise
            audit(db, who, COMMAND_SEND, device, details, "queued", command_seq=seq)
            click.echo(seq if selector is None else f"{device}\t{seq}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@command_group.command("list")
@click.option("--device", "device_id", default=None, help="Only this node's commands.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per command (JSON lines).")
@db_option
def command_list(device_id: str | None, as_json: bool, url: str) -> None:
    """Print the commands by device and seq: seq, kind, state (queued, sent, delivered, applied,
    refused, expired) with its reason, who issued it and when, how often it was sent, and the
    node's details (JSON).

    Example: ioc-center command list --device vessel-042 --db sqlite:///ioc.db
    """
    from ioc.commands import CommandQueue

    try:
        commands = CommandQueue(Database(url)).list(device_id)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    for c in commands:
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(c)))
            continue
        state = f"{c.state} ({c.reason})" if c.reason else c.state
        issued = f"{dt.datetime.fromtimestamp(c.issued_ms / 1000, dt.UTC):%Y-%m-%d %H:%M}Z"
        click.echo(
            f"{c.device}\t{c.seq}\t{c.kind}\t{state}\tissued {issued} by {c.issuer or '?'}\t"
            f"sent {c.sent_count}x\t{c.details}"
        )
