"""``ioc-center node``: the nodes' labels, which ``--select`` picks nodes by."""

from __future__ import annotations

import dataclasses
import json

import click

from common.clikit import Failed
from common.errors import IocEdgeError
from ioc.cli.shared import db_option, operator_name, utc
from ioc.db import Database


@click.group()
def node() -> None:
    """The nodes' labels (district, kind, site, fleet, ...), which `--select` picks nodes by: each
    node reports its own (`[node] labels`, `ioc-edge provision --label`); a label set here wins over
    the node's for the same key.

    Example: ioc-center node label gauge-07 district=phu-vang kind=flood-station --db sqlite:///ioc.db
    """


def _labels_text(labels: dict) -> str:
    """``key=value`` pairs, a centre's label marked ``(centre)``."""
    return " ".join(
        f"{k}={v.value}" + (" (centre)" if v.source == "centre" else "") for k, v in labels.items()
    )


@node.command("label")
@click.argument("device_id", metavar="DEVICE")
@click.argument("labels", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--remove", "removed", multiple=True, metavar="KEY", help="Remove the centre's label KEY (repeatable)."
)
@db_option
def node_label(device_id: str, labels: tuple[str, ...], removed: tuple[str, ...], url: str) -> None:
    """Set labels of DEVICE at the centre (they win over the node's own for the same key), or remove
    them with --remove (the node's own value shows again); print the labels now in force. Each change
    is kept in the audit log.

    Example: ioc-center node label gauge-07 district=phu-vang --remove fleet --db sqlite:///ioc.db
    """
    from ioc.audit import audit
    from ioc.db import now_ms
    from ioc.labels import NodeLabels

    if not labels and not removed:
        raise Failed("give KEY=VALUE labels to set, or --remove KEY")
    pairs = [label.partition("=") for label in labels]
    if bad := [label for label, (_, sep, _) in zip(labels, pairs, strict=True) if not sep]:
        raise Failed(f"{bad[0]!r} is not KEY=VALUE, e.g. district=phu-vang")
    try:
        db = Database(url)
        store, who = NodeLabels(db), operator_name()
        if pairs:
            wanted = {key.strip(): value.strip() for key, _, value in pairs}
            store.set(device_id, wanted, now_ms())
            audit(db, who, "label.set", device_id, wanted, "ok")
        if removed:
            gone = store.remove(device_id, removed)
            audit(db, who, "label.remove", device_id, {"keys": sorted(set(removed))}, f"removed {len(gone)}")
        click.echo(f"{device_id}\t{_labels_text(store.of(device_id))}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@node.command("list")
@click.option(
    "--select", "selector", default=None, metavar="KEY=VALUE[,...]", help="Only the nodes it picks."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per node (JSON lines).")
@db_option
def node_list(selector: str | None, as_json: bool, url: str) -> None:
    """Print every node the centre has heard or labelled: device, when last heard, its labels in force
    (a centre's marked "(centre)").

    Example: ioc-center node list --select district=phu-vang,kind=flood-station --db sqlite:///ioc.db
    """
    from ioc.labels import NodeLabels
    from ioc.selectors import devices_matching

    try:
        db = Database(url)
        nodes = NodeLabels(db).nodes(devices_matching(db, selector) if selector is not None else None)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    for n in nodes:
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(n)))
            continue
        seen = utc(n.last_seen_ms) if n.last_seen_ms is not None else "never heard"
        click.echo(f"{n.device}\t{seen}\t{_labels_text(n.labels)}")
