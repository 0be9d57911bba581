"""``ioc-center warn``: warnings to the field (CAP 1.2), their updates, cancels and receipts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from common.clikit import Failed, iso_time_ms
from common.errors import IocEdgeError
from ioc.cli.shared import db_option, operator_name, utc
from ioc.db import Database
from sync.warnings import CERTAINTIES, SEVERITIES, STATUSES, URGENCIES

if TYPE_CHECKING:
    from ioc.warnings import Issued
    from sync.warnings import Alert, Area, Info


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _duration_s(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A duration such as ``6h``, ``10m``, ``90s``, ``2d`` or plain seconds, in seconds (a click callback)."""
    if value is None:
        return None
    number, unit = (value[:-1], value[-1]) if value[-1:] in _DURATION_UNITS else (value, "s")
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration such as 6h, 10m, 90s or 2d") from None
    if seconds < 0:
        raise click.BadParameter(f"{value!r} is negative")
    return round(seconds)


def _warning_content(command: Callable) -> Callable:
    """The options that make a warning's content, shared by ``warn issue`` and ``warn update``."""
    options = [
        click.option(
            "--cap",
            "cap_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="A CAP 1.2 XML file instead of the options below.",
        ),
        click.option("--event", default=None, help="What happens, in Vietnamese (CAP event), e.g. Bão."),
        click.option("--event-en", default=None, help="The event in English [default: --event]."),
        click.option("--severity", type=click.Choice(SEVERITIES), default=None, help="[default: Severe]"),
        click.option("--urgency", type=click.Choice(URGENCIES), default=None, help="[default: Immediate]"),
        click.option("--certainty", type=click.Choice(CERTAINTIES), default=None, help="[default: Likely]"),
        click.option("--headline-vi", default=None, help="A short headline in Vietnamese."),
        click.option("--headline-en", default=None, help="The headline in English (an English info)."),
        click.option("--message-vi", default=None, help="The description in Vietnamese."),
        click.option("--message-en", default=None, help="The description in English."),
        click.option("--instruction-vi", default=None, help="What people should do, in Vietnamese."),
        click.option("--instruction-en", default=None, help="What people should do, in English."),
        click.option(
            "--pattern",
            default=None,
            help="The signal sirens sound (a node's [patterns] name; none: displayed, not sounded).",
        ),
        click.option("--status", type=click.Choice(STATUSES), default=None, help="[default: Actual]"),
        click.option(
            "--expires-in",
            "expires_s",
            default=None,
            callback=_duration_s,
            metavar="DURATION",
            help="How long it holds from now: 6h, 90m, 2d [default: 6h].",
        ),
        click.option(
            "--circle", "circles", multiple=True, metavar="LAT,LON,KM", help="An area (repeatable)."
        ),
        click.option(
            "--polygon",
            "polygons",
            multiple=True,
            metavar="'LAT,LON LAT,LON ...'",
            help="An area, its points in order (closed for you; repeatable).",
        ),
        click.option("--area-desc", default=None, help="The area's name, with --circle or --polygon."),
        click.option("--sender", default=None, help="CAP sender [default: ioc@<this host>]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _infos(o: dict[str, Any], base: Alert | None) -> list[Info]:
    """The Vietnamese info (and an English one when any English text is given or ``base`` has one)."""
    from sync.warnings import Info

    old = {i.language[:2]: i for i in base.infos} if base else {}
    vi = old.get("vi")
    if o["event"] is None and vi is None:
        raise Failed("--event is required (or --cap FILE)")

    def field(name: str, option: str, default: str, info: Info | None) -> str:
        value = o.get(option)
        return value if value is not None else getattr(info, name) if info is not None else default

    def make(lang: str, info: Info | None, event: str) -> Info:
        return Info(
            info.language if info else lang,
            event,
            field("urgency", "urgency", "Immediate", info),
            field("severity", "severity", "Severe", info),
            field("certainty", "certainty", "Likely", info),
            field("headline", f"headline_{lang[:2]}", "", info),
            field("description", f"message_{lang[:2]}", "", info),
            field("instruction", f"instruction_{lang[:2]}", "", info),
            info.category if info else "Met",
        )

    event = o["event"] if o["event"] is not None else vi.event  # type: ignore[union-attr]
    infos = [make("vi-VN", vi, event)]
    en = old.get("en")
    if en is not None or any(
        o[f"{k}_en"] is not None for k in ("headline", "message", "instruction", "event")
    ):
        infos.append(make("en-US", en, o["event_en"] or (en.event if en else event)))
    return infos


def _areas(o: dict[str, Any], base: Alert | None) -> list[Area]:
    """The area of --circle and --polygon (named --area-desc), else ``base``'s areas."""
    from sync.warnings import Area, Circle

    if not o["circles"] and not o["polygons"]:
        return list(base.areas) if base else []
    if not o["area_desc"]:
        raise Failed("--area-desc: name the area of --circle/--polygon, e.g. 'Biển Huế'")
    try:
        circles = tuple(Circle(*(float(x) for x in c.split(","))) for c in o["circles"])
        rings = [tuple(tuple(float(x) for x in p.split(",")) for p in ring.split()) for ring in o["polygons"]]
    except (TypeError, ValueError):
        raise Failed("--circle is LAT,LON,KM and --polygon 'LAT,LON LAT,LON ...' (decimal degrees)") from None
    if any(len(p) != 2 for ring in rings for p in ring):
        raise Failed("--polygon: each point is LAT,LON, the points separated by spaces")
    closed = tuple(ring if ring[:1] == ring[-1:] else (*ring, ring[0]) for ring in rings)
    return [Area(o["area_desc"], closed, circles)]  # type: ignore[arg-type]


def _alert_from_options(o: dict[str, Any], base: Alert | None, now: int) -> Alert:
    """The alert of ``warn issue``/``update``'s options (their defaults: ``base``'s content), or of --cap."""
    from ioc.warnings import default_sender, new_identifier
    from sync.warnings import Alert

    if o["cap_file"] is not None:
        if any(o[k] is not None for k in ("event", "headline_vi", "message_vi", "expires_s")):
            raise Failed("give --cap FILE or the warning's options, not both")
        from ioc.cap import from_xml

        return from_xml(o["cap_file"].read_bytes(), source=str(o["cap_file"]))
    sender = o["sender"] or (base.sender if base else default_sender())
    if o["expires_s"] is not None:
        expires = now + 1000 * o["expires_s"]
    else:
        expires = base.expires_ms if base else now + 6 * 3_600_000
    return Alert.make(
        new_identifier(sender, now),
        sender,
        now,
        "Alert",
        _infos(o, base),
        _areas(o, base),
        expires,
        status=o["status"] or (base.status if base else "Actual"),
        pattern=o["pattern"] if o["pattern"] is not None else (base.pattern if base else ""),
    )


def _wire_message(exc: IocEdgeError) -> str:
    """A library error's message without a wire error's reason (``bad_field: ``)."""
    reason = getattr(exc, "reason", None)
    return str(exc).removeprefix(f"{reason}: ") if reason else str(exc)


@click.group("warn")
def warn_group() -> None:
    """Warnings to the field (CAP 1.2): issue one to the nodes labels and areas pick, update or cancel
    it, and follow its receipts per node (delivered, sounded, acknowledged); `ioc-center run` sends them
    signed with its warning signer.

    Example: ioc-center warn issue --event Bão --circle 16.8,107.8,50 --area-desc "Biển Huế" --dry-run
    """


@warn_group.command("issue")
@_warning_content
@click.option(
    "--select",
    "selector",
    default=None,
    metavar="KEY=VALUE[,...]",
    help="Only the nodes whose labels hold all of these [default: every node].",
)
@click.option(
    "--ack-within",
    "ack_within_s",
    default="10m",
    show_default=True,
    callback=_duration_s,
    metavar="DURATION",
    help="Flag a target that has not acknowledged this long after issue.",
)
@click.option("--dry-run", is_flag=True, help="Print which nodes it would reach, and why; issue nothing.")
@db_option
def warn_issue(selector: str | None, ack_within_s: int, dry_run: bool, url: str, **content: Any) -> None:
    """Issue a warning (from the options or a CAP file) to the nodes --select picks, and of those, when
    it has areas, to the stations whose place is inside and to every vessel (which decides on board).
    Prints its identifier and one line per target (device, why, command seq); kept in the audit log.

    Example: ioc-center warn issue --event Bão --circle 16.8,107.8,50 --area-desc "Biển Huế" --pattern storm
    """
    from ioc.db import now_ms
    from ioc.warnings import Warnings

    now = now_ms()
    try:
        alert = _alert_from_options(content, None, now)
        warnings = Warnings(Database(url))
        if dry_run:
            targets = warnings.reach(alert, selector)
            click.echo(f"would reach {len(targets)} node(s) (dry run: nothing issued)")
            for t in targets:
                click.echo(f"{t.device}\t{t.why}")
            return
        issued = warnings.issue(alert, selector, operator_name(), now, ack_within_s)
    except IocEdgeError as exc:
        raise Failed(_wire_message(exc)) from None
    _echo_issued(issued)


def _echo_issued(issued: Issued) -> None:
    click.echo(f"{issued.alert.identifier}\t{issued.alert.msg_type}\tto {len(issued.targets)} node(s)")
    for t in issued.targets:
        click.echo(f"{t.device}\t{t.why}\tcommand {issued.commands[t.device]}")


@warn_group.command("update")
@click.argument("identifier")
@_warning_content
@click.option(
    "--ack-within",
    "ack_within_s",
    default=None,
    callback=_duration_s,
    metavar="DURATION",
    help="Flag a target not acknowledged this long after the update [default: the original's].",
)
@db_option
def warn_update(identifier: str, ack_within_s: int | None, url: str, **content: Any) -> None:
    """Send an Update of warning IDENTIFIER to its targets: what the options give replaces the
    original's (its text, areas, pattern, expiry), the rest is kept. Prints the Update's identifier
    and its targets; kept in the audit log.

    Example: ioc-center warn update ioc-hue-20261028070000-3fa2c1 --severity Extreme --pattern storm --db sqlite:///ioc.db
    """
    from ioc.db import now_ms
    from ioc.warnings import Warnings

    now = now_ms()
    try:
        warnings = Warnings(Database(url))
        base = warnings.in_force(identifier, now).alert()
        alert = _alert_from_options(content, base, now)
        issued = warnings.update(identifier, alert, operator_name(), now, ack_within_s)
    except IocEdgeError as exc:
        raise Failed(_wire_message(exc)) from None
    _echo_issued(issued)


@warn_group.command("cancel")
@click.argument("identifier")
@click.option("--note", default="", help="Why it is cancelled (CAP note).")
@db_option
def warn_cancel(identifier: str, note: str, url: str) -> None:
    """Cancel warning IDENTIFIER: a Cancel referring to it goes to each of its targets, whose sirens
    stop. Prints the Cancel's identifier and its targets; kept in the audit log.

    Example: ioc-center warn cancel ioc-hue-20261028070000-3fa2c1 --note "Bão đã suy yếu" --db sqlite:///ioc.db
    """
    from ioc.db import now_ms
    from ioc.warnings import Warnings

    try:
        issued = Warnings(Database(url)).cancel(identifier, operator_name(), now_ms(), note)
    except IocEdgeError as exc:
        raise Failed(_wire_message(exc)) from None
    _echo_issued(issued)


@warn_group.command("list")
@click.option(
    "--since", "since_ms", default=None, callback=iso_time_ms, help="Issued from then on (ISO 8601)."
)
@click.option("--local", "origin", flag_value="local", default=None, help="Only the nodes' own soundings.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for a spreadsheet (formula-like text neutralised).")
@db_option
def warn_list(since_ms: int | None, origin: str | None, as_csv: bool, url: str) -> None:
    """Print the warnings newest first: identifier, issued (UTC), type, state, event, severity, headline,
    targets, and how many reported delivered, sounded and acknowledged. A node's own sounding (a local
    alarm, by hand) is listed as local.

    Example: ioc-center warn list --since 2026-10-28 --db sqlite:///ioc.db
    """
    from ioc.db import now_ms
    from ioc.warnings import Warnings, warnings_csv

    try:
        found = Warnings(Database(url)).list(since_ms, origin)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    now = now_ms()
    if as_csv:
        for piece in warnings_csv(found, now):
            click.echo(piece, nl=False)
        return
    for w in found:
        click.echo(
            f"{w.identifier}\t{utc(w.issued_ms)}\t{w.msg_type}\t{w.state_at(now)}\t{w.event}\t{w.severity}\t"
            f"{w.headline}\t{w.targets} targets: {w.delivered} delivered, {w.sounded} sounded, "
            f"{w.acknowledged} acknowledged"
        )


def _hms(ms: int | None) -> str:
    return f"{dt.datetime.fromtimestamp(ms / 1000, dt.UTC):%m-%d %H:%M:%S}Z" if ms is not None else "-"


@warn_group.command("show")
@click.argument("identifier")
@click.option("--unacked", is_flag=True, help="Only the targets flagged: not acknowledged when due.")
@db_option
def warn_show(identifier: str, unacked: bool, url: str) -> None:
    """Show warning IDENTIFIER and its receipts, one line per target: device, why it was targeted, its
    command's state, when delivered, sounded, silenced, acknowledged (by whom), inside or outside the
    area; UNACKED marks a target that has not acknowledged --ack-within after issue.

    Example: ioc-center warn show ioc-hue-20261028070000-3fa2c1 --unacked --db sqlite:///ioc.db
    """
    from ioc.db import now_ms
    from ioc.warnings import Warnings

    now = now_ms()
    try:
        warnings = Warnings(Database(url))
        w = warnings.get(identifier)
        if w is None:
            raise Failed(f"identifier: no warning {identifier!r} here (see `ioc-center warn list`)")
        receipts = warnings.receipts(identifier)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    refers = f" of {w.refers_to}" if w.refers_to else ""
    click.echo(f"{w.identifier}\t{w.msg_type}{refers}\t{w.status}\t{w.state_at(now)}\t{w.origin}")
    click.echo(f"{w.event}\t{w.severity}\t{w.urgency}\t{w.certainty}\t{w.headline}")
    expires = _hms(w.expires_ms) if w.expires_ms is not None else "never"
    click.echo(
        f"issued {_hms(w.issued_ms)} by {w.issuer or '?'}\texpires {expires}\tarea {w.area_desc or '-'}"
    )
    if w.superseded_by:
        click.echo(f"{w.state} by {w.superseded_by} at {_hms(w.changed_ms)} ({w.changed_by or '?'})")
    for r in receipts:
        if unacked and not r.flagged(now):
            continue
        inside = {1: "inside", 0: "outside"}.get(r.inside, "inside?")  # type: ignore[arg-type]
        ack = f"{_hms(r.acknowledged_ms)} by {r.acknowledged_by}" if r.acknowledged_ms else "-"
        refused = f"\trefused {_hms(r.refused_ms)} {r.refused_why}" if r.refused_ms else ""
        flag = "\tUNACKED" if r.flagged(now) else ""
        click.echo(
            f"{r.device}\t{r.why}\t{r.command_state or '-'}\tdelivered {_hms(r.delivered_ms)}\t"
            f"sounded {_hms(r.sounded_ms)}\tsilenced {_hms(r.silenced_ms)}\tacknowledged {ack}\t{inside}"
            f"{refused}{flag}"
        )


@warn_group.command("export")
@click.argument("identifier")
@db_option
def warn_export(identifier: str, url: str) -> None:
    """Print warning IDENTIFIER as CAP 1.2 XML, as it was sent.

    Example: ioc-center warn export ioc-hue-20261028070000-3fa2c1 --db sqlite:///ioc.db > storm.cap.xml
    """
    from ioc.cap import to_xml
    from ioc.warnings import Warnings

    try:
        w = Warnings(Database(url)).get(identifier)
        alert = w.alert() if w else None
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    if alert is None:
        why = "is a node's own sounding: no CAP alert" if w else "is not here (see `ioc-center warn list`)"
        raise Failed(f"identifier: {identifier} {why}")
    click.echo(to_xml(alert), nl=False)


@warn_group.command("receipts")
@click.argument("identifier")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for a spreadsheet (formula-like text neutralised).")
@db_option
def warn_receipts(identifier: str, as_csv: bool, url: str) -> None:
    """Print the receipts of warning IDENTIFIER, one per target: as JSON lines, or CSV with --csv
    (times ISO 8601 UTC, flagged 1 when not acknowledged when due).

    Example: ioc-center warn receipts ioc-hue-20261028070000-3fa2c1 --csv --db sqlite:///ioc.db > receipts.csv
    """
    from ioc.db import now_ms
    from ioc.warnings import Warnings, receipts_csv

    try:
        receipts = Warnings(Database(url)).receipts(identifier)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    if as_csv:
        for piece in receipts_csv(receipts, now_ms()):
            click.echo(piece, nl=False)
        return
    for r in receipts:
        click.echo(json.dumps(dataclasses.asdict(r), ensure_ascii=False))
