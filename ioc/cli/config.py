"""``ioc-center config``: the nodes' desired configuration (a device twin)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from common.clikit import Failed
from common.errors import IocEdgeError
from ioc.cli.shared import db_option, operator_name, utc
from ioc.db import Database

if TYPE_CHECKING:
    from ioc.desired import ConfigState


@click.group("config")
def config_group() -> None:
    """The nodes' desired configuration: push a config file to nodes (tried, kept or rolled back on
    the node), show desired vs reported with drift and a diff, adopt what a node runs as desired.

    Example: ioc-center config show --device vessel-042 --db sqlite:///ioc.db
    """


@config_group.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--device", "device_id", default=None, help="The node's device id (or --select).")
@click.option(
    "--select",
    "selector",
    default=None,
    metavar="KEY=VALUE[,...]",
    help="Every node whose labels hold all of these (`ioc-center node list`): one push each.",
)
@click.option(
    "--ttl",
    "ttl_s",
    type=click.IntRange(1, 30 * 86_400),
    default=7 * 86_400,
    show_default=True,
    help="Seconds a node that is away has to take it.",
)
@db_option
def config_push(file: Path, device_id: str | None, selector: str | None, ttl_s: int, url: str) -> None:
    """Make FILE (a node's edge.toml) the desired config of a node, or of each node --select picks,
    and send it: the node validates it with its own models, tries it, and keeps it only if healthy
    within its [commands] trial_s (`ioc-center config show` tells). Prints the command's seq (with
    --select: DEVICE SEQ lines). Kept in the audit log.

    Example: ioc-center config push edge.toml --device vessel-042 --db sqlite:///ioc.db
    """
    from ioc.db import now_ms
    from ioc.desired import DesiredConfigs
    from ioc.selectors import devices_matching

    if (device_id is None) == (selector is None):
        raise Failed("give --device DEVICE or --select KEY=VALUE, one of them")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise Failed(f"{file}: {exc}") from None
    try:
        db = Database(url)
        devices = [device_id] if device_id is not None else devices_matching(db, selector or "")
        if not devices:
            raise Failed(f"no node's labels match {selector!r}: nothing pushed (see `ioc-center node list`)")
        configs = DesiredConfigs(db)
        for device in devices:
            seq = configs.push(device, text, operator_name(), now_ms(), ttl_s)
            click.echo(seq if selector is None else f"{device}\t{seq}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@config_group.command("show")
@click.option("--device", "device_id", required=True, help="The node's device id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: desired, reported, drift, diff.")
@db_option
def config_show(device_id: str, as_json: bool, url: str) -> None:
    """Show a node's desired config (version, who, when, where its push stands: a refusal's problems
    with their field, line and message), the version it reports, whether they drift apart, and a
    unified diff from desired to reported when the centre knows both texts.

    Example: ioc-center config show --device vessel-042 --db sqlite:///ioc.db
    """
    from ioc.desired import DesiredConfigs

    try:
        state = DesiredConfigs(Database(url)).state(device_id)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    if as_json:
        desired = dataclasses.asdict(state.desired) if state.desired else None
        command = dataclasses.asdict(state.command) if state.command else None
        shown = {"device": device_id, "desired": desired, "reported": state.reported}
        click.echo(json.dumps(shown | {"command": command, "drift": state.drift, "diff": state.diff()}))
        return
    for line in _config_lines(state):
        click.echo(line)


def _config_lines(state: ConfigState) -> list[str]:
    """``ioc-center config show``'s lines for ``state``."""
    desired, command = state.desired, state.command
    if desired is None:
        lines = ["desired: none"]
    else:
        how = f"pushed as command {desired.command_seq}" if desired.command_seq else "adopted"
        lines = [
            f"desired: {desired.version[:12]} by {desired.issuer or '?'} at {utc(desired.issued_ms)}, {how}"
        ]
    if command is not None:
        lines.append(f"push: {command.state}" + (f" ({command.reason})" if command.reason else ""))
        try:
            details = json.loads(command.details) if command.details else {}
        except ValueError:
            details = {}
        lines += [f"  {p}" for p in details.get("problems", [])]
        if command.reason and not details.get("problems") and details.get("message"):
            lines.append(f"  {details['message']}")
    seen = f" (status of {utc(state.reported_ms)})" if state.reported_ms is not None else ""
    lines.append(f"reported: {state.reported[:12] if state.reported else 'none yet'}{seen}")
    lines.append(f"drift: {'yes' if state.drift else 'no'}")
    if diff := state.diff():
        lines.append(diff.rstrip("\n"))
    return lines


@config_group.command("adopt")
@click.option("--device", "device_id", required=True, help="The node's device id.")
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0, 3600),
    default=60,
    show_default=True,
    help="How long to wait for the node's text when the centre lacks it (asked with config.get).",
)
@db_option
def config_adopt(device_id: str, wait_s: float, url: str) -> None:
    """Make the config a node reports (a technician's edit on site, say) its desired config: no
    drift from then on, and nothing sent. When the centre lacks its text, asks the node for it (a
    config.get command, which needs `ioc-center run` dispatching) and waits. Kept in the audit log.

    Example: ioc-center config adopt --device vessel-042 --db sqlite:///ioc.db
    """
    import time

    from ioc.db import now_ms
    from ioc.desired import DesiredConfigs

    try:
        configs = DesiredConfigs(Database(url))
        state = configs.state(device_id)
        if state.reported is not None and state.reported_text is None:
            seq = configs.fetch(device_id, operator_name(), now_ms())
            deadline = time.monotonic() + wait_s
            while configs.state(device_id).reported_text is None:
                if time.monotonic() > deadline:
                    raise Failed(
                        f"asked {device_id} for its config (command {seq}); no answer within {wait_s:g} s: "
                        "run this again once it answered"
                    )
                time.sleep(0.2)
        adopted = configs.adopt(device_id, operator_name(), now_ms())
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"{device_id}\tdesired {adopted.version[:12]} (adopted)")
