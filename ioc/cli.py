"""``ioc-center``: the central side's command line (a thin layer over ``ioc``)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import getpass
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from common.clikit import ExtraGroup, Failed, iso_time_ms, log_level_option, wait_for_stop_signal
from common.errors import IocEdgeError
from common.logs import setup_logging
from ioc.db import URL_FORMS, Database
from ioc.track import GAP_S
from sync.warnings import CERTAINTIES, SEVERITIES, STATUSES, URGENCIES

if TYPE_CHECKING:
    from ioc.desired import ConfigState
    from ioc.warnings import Issued
    from ioc.web import WebServer
    from sync.warnings import Alert, Area, Info

DEFAULT_DB = "sqlite:///ioc.db"
DB_HELP = f"Database URL: {URL_FORMS} (the password, if any, from ~/.pgpass or PGPASSWORD)."
db_option = click.option("--db", "url", default=DEFAULT_DB, show_default=True, help=DB_HELP)
"""The database option of every command that reads or writes the centre's database."""
IOC_EXTRA = ("fastapi", "starlette", "uvicorn", "argon2", "psycopg")
"""The top-level modules of setup.cfg's ``ioc`` extra (the dashboard, its users, PostgreSQL): a device
installs ioc-edge without it, so they are imported only inside the commands that need them."""


@click.group(cls=ExtraGroup, distribution="ioc-edge", extra="ioc", modules=IOC_EXTRA)
@log_level_option
def main(log_level: str) -> None:
    """The IOC's receiver and tools.

    Example: ioc-center run --mqtt-port 1883 --db sqlite:///ioc.db
    """
    setup_logging(log_level)


def _web_options(command: Callable) -> Callable:
    """The dashboard's options, shared by ``run`` (which serves it only with --http-port) and ``serve``."""
    options = [
        click.option(
            "--http-host", default="127.0.0.1", show_default=True, help="Address the dashboard listens on."
        ),
        click.option(
            "--web-config",
            type=click.Path(dir_okay=False),
            default=None,
            help="The dashboard's settings file (TOML; see ioc/web/settings.py).",
        ),
        click.option("--timezone", default=None, help="The centre's time zone [default: Asia/Ho_Chi_Minh]."),
        click.option(
            "--tile-url", default=None, help="Map tiles, https://.../{z}/{x}/{y}.png [default: none]."
        ),
        click.option(
            "--online-after", type=int, default=None, help="Seconds a node counts as online [default: 180]."
        ),
        click.option(
            "--signin-allow",
            metavar="CIDR",
            multiple=True,
            help="A network never locked for failed sign-ins, e.g. the operations room 10.20.0.0/24 "
            "(repeatable; replaces the settings file's signin_allow).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _web_server(db: Database, http_host: str, http_port: int, web: dict) -> WebServer:
    """The dashboard over ``db``, listening; library errors become clean failures."""
    from ioc.web import WebServer, create_app, load_web_settings

    settings = load_web_settings(
        web["web_config"],
        timezone=web["timezone"],
        tile_url=web["tile_url"],
        online_after_s=web["online_after"],
        signin_allow=list(web["signin_allow"]) or None,
    )
    server = WebServer(create_app(db, settings), http_host, http_port)
    server.start()
    return server


@main.command()
@click.option("--mqtt-host", default="127.0.0.1", show_default=True, help="Broker host.")
@click.option("--mqtt-port", default=1883, show_default=True, help="Broker port.")
@db_option
@click.option("--group", default="ioc-center", show_default=True, help="Shared-subscription group name.")
@click.option("--client-id", default=None, help="MQTT client id (default: ioc-center-<hostname>).")
@click.option("--topic-prefix", default="ioc/v1", show_default=True, help="Root of the topic tree.")
@click.option(
    "--tls",
    "tls_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Mutual TLS with the identity in this directory (from `ioc-center broker-config`).",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Also serve the dashboard and its API on this port (e.g. 8080); without it, no web server.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address of /metrics.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=9821,
    show_default=True,
    help="Port of the Prometheus endpoint /metrics; 0: none.",
)
@click.option(
    "--track-gap-s",
    type=click.FloatRange(2, 86_400),
    default=GAP_S,
    show_default=True,
    help="A vessel's track without a record for longer is a gap: twice the fleet's track.heartbeat_s.",
)
@click.option(
    "--crl",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The device CRLs (the CA directory's devices-crl.pem, read again when it changes): signatures "
    "made, or received, after their certificate's revocation are bad.",
)
@click.option(
    "--enrolment",
    type=click.Choice(["required", "off"]),
    default=None,
    help="required: refuse the batches of device ids the enrolment register does not hold "
    "(`ioc-center device enrol`); off: take any device the broker admits [default: required with --tls, "
    "off without].",
)
@click.option(
    "--quota-mb-per-hour",
    type=click.FloatRange(0),
    default=64,
    show_default=True,
    help="MiB one device may store an hour (refilled continuously); a device over it is not acked and "
    "sends again later; 0: no quota. Per receiver process.",
)
@click.option(
    "--command-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The command signer's key (`ioc-center ca command-signer`): with --command-cert, this process "
    "sends the queued commands (`ioc-center command send`), one receiver of the centre at a time.",
)
@click.option(
    "--command-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The command signer's certificate, with --command-key.",
)
@click.option(
    "--warning-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The warning signer's key (`ioc-center ca command-signer NAME --warnings`), with --warning-cert "
    "and the command signer's: warnings (`ioc-center warn`) are signed with it, and only with it.",
)
@click.option(
    "--warning-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The warning signer's certificate, with --warning-key.",
)
@click.option(
    "--command-lease-s",
    type=click.FloatRange(1, 600),
    default=10,
    show_default=True,
    help="How long the sending receiver's lease lasts: another takes over at most this long and a "
    "third after it dies.",
)
@_web_options
def run(
    mqtt_host: str,
    mqtt_port: int,
    url: str,
    group: str,
    client_id: str | None,
    topic_prefix: str,
    tls_dir: Path | None,
    http_port: int | None,
    http_host: str,
    metrics_host: str,
    metrics_port: int,
    track_gap_s: float,
    crl: Path | None,
    enrolment: str | None,
    quota_mb_per_hour: float,
    command_key: Path | None,
    command_cert: Path | None,
    warning_key: Path | None,
    warning_cert: Path | None,
    command_lease_s: float,
    **web: Any,
) -> None:
    """Receive, validate, de-duplicate, store and ack what the nodes send, until stopped;
    with --http-port, serve the dashboard from the same process too (the simplest centre).
    Serves Prometheus metrics; run by systemd, it says READY=1 and feeds the watchdog.

    Run several with the same --group and distinct --client-id and --metrics-port to share the load.
    With --command-key and --command-cert it also sends the nodes their commands (docs/centre.md).

    Example: ioc-center run --mqtt-port 1883 --db sqlite:///var/lib/ioc/ioc.db --http-port 8080
    """
    from ioc.admission import Limits
    from ioc.commands import Dispatcher
    from ioc.enrolment import Register
    from ioc.metrics import CenterService, DispatcherCollector, SignInCollector
    from ioc.receiver import Receiver
    from provisioning.commands import CommandSigner
    from provisioning.revocation import CrlFile
    from provisioning.tls import TlsFiles

    if (command_key is None) != (command_cert is None):
        raise Failed("give both --command-key and --command-cert, or neither (then no command is sent)")
    if (warning_key is None) != (warning_cert is None) or (warning_key and not command_key):
        raise Failed("give both --warning-key and --warning-cert, with --command-key and --command-cert")
    # Device ids are proven only over mutual TLS: there the register is enforced unless told otherwise.
    required = enrolment == "required" or (enrolment is None and tls_dir is not None)
    try:
        db = Database(url)
        tls = TlsFiles.receiver(tls_dir) if tls_dir else None
        register = Register(db) if required else None
        if register is not None and not register.active():
            click.echo(
                "the enrolment register is empty: every device's batches are refused until enrolled "
                "(ioc-center device enrol CA/signers/*/issued CA/issued --ca CA)",
                err=True,
            )
        if tls is not None and crl is None:
            click.echo(
                "signatures are not checked against the revocation lists: give --crl CA/devices-crl.pem",
                err=True,
            )
        receiver = Receiver(
            db,
            mqtt_host,
            mqtt_port,
            prefix=topic_prefix,
            group=group,
            client_id=client_id,
            tls=tls,
            track_gap_s=track_gap_s,
            crls=CrlFile(crl) if crl is not None else None,
            register=register,
            limits=Limits(quota_bytes_per_hour=int(quota_mb_per_hour * 2**20)),
        )
        dispatcher = None
        if command_key is not None and command_cert is not None:
            dispatcher = Dispatcher(
                db,
                CommandSigner.load(command_key, command_cert),
                mqtt_host,
                mqtt_port,
                warning_signer=CommandSigner.load(warning_key, warning_cert)
                if warning_key and warning_cert
                else None,
                prefix=topic_prefix,
                client_id=f"{receiver.client_id}.commands",  # a dot: no device id takes it
                tls=tls,
                lease_s=command_lease_s,
            )
        server = _web_server(db, http_host, http_port, web) if http_port is not None else None
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    receiver.start()
    if dispatcher:
        dispatcher.start()
    if server:
        click.echo(f"dashboard: {server.url}/", err=True)
    signins = [SignInCollector(server.app.state.ctx.signins)] if server else []
    sending = [DispatcherCollector(dispatcher)] if dispatcher else []
    service = CenterService(receiver, metrics_host, metrics_port, [*signins, *sending])
    service.start()
    wait_for_stop_signal()
    service.stop()
    if dispatcher:
        dispatcher.stop()  # its lease released: another receiver's dispatcher takes over at once
    receiver.stop()
    if server:
        server.stop()


@main.command()
@db_option
@click.option(
    "--http-port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on."
)
@_web_options
def serve(url: str, http_port: int, http_host: str, **web: Any) -> None:
    """Serve the dashboard and its API (/api/v1, OpenAPI at /api/v1/docs) until stopped,
    without a receiver: for a web process of its own beside `ioc-center run`.

    Sign-in needs a user: `ioc-center user add NAME --role operator`.

    Example: ioc-center serve --db sqlite:///var/lib/ioc/ioc.db --http-port 8080
    """
    try:
        server = _web_server(Database(url), http_host, http_port, web)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"dashboard: {server.url}/", err=True)
    wait_for_stop_signal()
    server.stop()


@main.command()
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


@main.command()
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


@main.command()
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


# -- dashboard users and API tokens ----------------------------------------------------------------


def _password(password_file: str | None) -> str:
    """The first line of ``password_file``, else asked twice without echo."""
    if password_file is None:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with open(password_file, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as exc:
        raise Failed(f"{password_file}: cannot read the password: {exc.strerror or exc}") from None


_password_file = click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the password from the first line of this file instead of asking.",
)


@main.group()
def user() -> None:
    """The dashboard's users: viewers read, operators also acknowledge alarms.

    Example: ioc-center user add lan --role operator --db sqlite:///ioc.db
    """


def _role(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """The --role choice, checked once the command runs: the roles' module needs the ioc extra."""
    from ioc.web.auth import ROLES

    return click.Choice(ROLES).convert(value, param, ctx)


@user.command("add")
@click.argument("name")
@click.option(
    "--role", metavar="ROLE", callback=_role, required=True, help="viewer (reads) or operator (also acks)."
)
@_password_file
@db_option
def user_add(name: str, role: str, password_file: str | None, url: str) -> None:
    """Add user NAME with a password (asked, or from --password-file; at least 8 characters).

    Example: ioc-center user add lan --role viewer
    """
    from ioc.web.auth import Users

    try:
        Users(Database(url)).add(name, role, _password(password_file))
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"added {role} {name}")


@user.command("passwd")
@click.argument("name")
@_password_file
@db_option
def user_passwd(name: str, password_file: str | None, url: str) -> None:
    """Set a new password for NAME; their open sessions end.

    Example: ioc-center user passwd lan
    """
    from ioc.web.auth import Users

    try:
        Users(Database(url)).set_password(name, _password(password_file))
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"new password for {name}")


@user.command("list")
@db_option
def user_list(url: str) -> None:
    """Print the users and their roles, and how long each user locked by failed sign-ins stays locked.

    Example: ioc-center user list
    """
    from ioc.web.auth import Users
    from ioc.web.lockout import SignInLimiter

    try:
        db = Database(url)
        locked = SignInLimiter(db).locked("user")
        for row in Users(db).list():
            lock = locked.get(row["username"])
            note = f"\tlocked for {lock} s (`ioc-center user unlock {row['username']}`)" if lock else ""
            click.echo(f"{row['username']}\t{row['role']}{note}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@user.command("unlock")
@click.argument("name", required=False)
@click.option("--address", default=None, help="Unlock this client address instead (IP, as in the message).")
@db_option
def user_unlock(name: str | None, address: str | None, url: str) -> None:
    """Forget the failed sign-ins of user NAME (or of a client address), ending its lock at once.

    Example: ioc-center user unlock lan; ioc-center user unlock --address 10.0.0.7
    """
    from ioc.web.auth import Users
    from ioc.web.lockout import SignInLimiter

    if (name is None) == (address is None):
        raise Failed("give a user NAME or --address ADDRESS (one of them)")
    try:
        db = Database(url)
        limiter = SignInLimiter(db)
        if address is not None:
            had = limiter.unlock_address(address)
            click.echo(f"unlocked address {address}" if had else f"no failed sign-ins from {address}")
            return
        assert name is not None, "one of NAME and --address, checked above"
        if not limiter.unlock_user(name) and Users(db).get(name) is None:
            raise Failed(f"no user {name!r}: see `ioc-center user list`")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"unlocked {name}")


@user.command("remove")
@click.argument("name")
@db_option
def user_remove(name: str, url: str) -> None:
    """Remove user NAME with their sessions and API tokens (their acknowledgements stay on record).

    Example: ioc-center user remove lan
    """
    from ioc.web.auth import Users

    try:
        Users(Database(url)).remove(name)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"removed {name}")


@main.group()
def token() -> None:
    """API tokens for scripts: each acts as the user it was made for (send Authorization: Bearer TOKEN).

    Example: ioc-center token create lan --label "weekly report"
    """


@token.command("create")
@click.argument("name")
@click.option("--label", default="", help="What the token is for, shown by `token list`.")
@db_option
def token_create(name: str, label: str, url: str) -> None:
    """Create a token acting as user NAME and print it (only this once; the centre keeps a hash).

    Example: ioc-center token create lan --label "weekly report"
    """
    from ioc.web.auth import Tokens

    try:
        token_id, secret = Tokens(Database(url)).create(name, label)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"token {token_id} for {name} (keep it secret; it is not shown again):", err=True)
    click.echo(secret)


@token.command("list")
@db_option
def token_list(url: str) -> None:
    """Print the tokens: id, user, label.

    Example: ioc-center token list
    """
    from ioc.web.auth import Tokens

    try:
        for row in Tokens(Database(url)).list():
            click.echo(f"{row['token_id']}\t{row['username']}\t{row['label']}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@token.command("revoke")
@click.argument("token_id")
@db_option
def token_revoke(token_id: str, url: str) -> None:
    """Revoke the token with id TOKEN_ID (from `token list`).

    Example: ioc-center token revoke 3f2a9c0d1e4b
    """
    from ioc.web.auth import Tokens

    try:
        Tokens(Database(url)).revoke(token_id)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"revoked {token_id}")


# -- commands to the nodes -------------------------------------------------------------------------


@main.group("command")
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
    who = _operator() if issuer is None else issuer
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


# -- desired configuration (a device twin) ---------------------------------------------------------


@main.group("config")
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
            seq = configs.push(device, text, _operator(), now_ms(), ttl_s)
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
            f"desired: {desired.version[:12]} by {desired.issuer or '?'} at {_utc(desired.issued_ms)}, {how}"
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
    seen = f" (status of {_utc(state.reported_ms)})" if state.reported_ms is not None else ""
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
            seq = configs.fetch(device_id, _operator(), now_ms())
            deadline = time.monotonic() + wait_s
            while configs.state(device_id).reported_text is None:
                if time.monotonic() > deadline:
                    raise Failed(
                        f"asked {device_id} for its config (command {seq}); no answer within {wait_s:g} s: "
                        "run this again once it answered"
                    )
                time.sleep(0.2)
        adopted = configs.adopt(device_id, _operator(), now_ms())
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"{device_id}\tdesired {adopted.version[:12]} (adopted)")


# -- the nodes' labels and the audit log ------------------------------------------------------------


@main.group()
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
        store, who = NodeLabels(db), _operator()
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
        seen = _utc(n.last_seen_ms) if n.last_seen_ms is not None else "never heard"
        click.echo(f"{n.device}\t{seen}\t{_labels_text(n.labels)}")


def _utc(ms: int) -> str:
    return f"{dt.datetime.fromtimestamp(ms / 1000, dt.UTC):%Y-%m-%d %H:%M}Z"


@main.group("audit")
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
            f"{e.id}\t{_utc(e.at_ms)}\t{e.user or '?'}\t{e.action}\t{e.target}{seq}\t{e.result}\t"
            f"{json.dumps(e.details, sort_keys=True, ensure_ascii=False)}"
        )


# -- warnings to the field -------------------------------------------------------------------------

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


@main.group("warn")
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
        issued = warnings.issue(alert, selector, _operator(), now, ack_within_s)
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
        issued = warnings.update(identifier, alert, _operator(), now, ack_within_s)
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
        issued = Warnings(Database(url)).cancel(identifier, _operator(), now_ms(), note)
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
            f"{w.identifier}\t{_utc(w.issued_ms)}\t{w.msg_type}\t{w.state_at(now)}\t{w.event}\t{w.severity}\t"
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


# -- certificate authority and the broker's mutual TLS ---------------------------------------------

_ca_option = click.option(
    "--ca",
    "ca_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="/var/lib/ioc/ca",
    show_default=True,
    envvar="IOC_CA",
    help="The CA directory (from `ca init`); also $IOC_CA.",
)


@main.group()
def ca() -> None:
    """The IOC's certificate authority: signers for technicians, revocation of devices.

    Example: ioc-center ca init /var/lib/ioc/ca --org "Hue IOC"
    """


@ca.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--org", default="IOC", show_default=True, help="Organisation named in every certificate.")
@click.option(
    "--days", type=click.IntRange(365, 36500), default=20 * 365, show_default=True, help="CA validity."
)
def ca_init(directory: Path, org: str, days: int) -> None:
    """Create the CA in DIRECTORY (keys 0600): the device CA, the centre CA, empty CRLs. Never overwrites.

    Example: ioc-center ca init /var/lib/ioc/ca --org "Hue IOC"
    """
    from ioc.ca import CertificateAuthority

    try:
        authority = CertificateAuthority.create(directory, org, days)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"CA created in {authority.path}; next: ioc-center ca issue-signer NAME --ca {authority.path}")


@ca.command("issue-signer")
@click.argument("name")
@_ca_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Credential directory [default: CA/signers/NAME].",
)
@click.option(
    "--days", type=click.IntRange(1, 365), default=30, show_default=True, help="Days it may sign devices."
)
@click.option(
    "--device-days",
    type=click.IntRange(1, 3650),
    default=3 * 365,
    show_default=True,
    help="Longest device validity.",
)
def ca_issue_signer(name: str, ca_dir: Path, out: Path | None, days: int, device_days: int) -> None:
    """Issue technician NAME a signing credential (a directory to carry to the field; its key 0600).

    It certifies devices for --days; the IOC keeps a copy to sign its revocation list.

    Example: ioc-center ca issue-signer alice --out /media/usb/signer-alice
    """
    from ioc.ca import CertificateAuthority

    try:
        where = CertificateAuthority(ca_dir).issue_signer(name, out, days, device_days)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(
        f"signer {name}: {where} (signs for {days} days); on the device: ioc-edge provision --signer {where}"
    )
    # Its (empty) CRL is new in the broker's file: without it the broker refuses the signer's devices.
    click.echo("reload the broker before its devices connect: systemctl reload mosquitto")


@ca.command("command-signer")
@click.argument("name")
@_ca_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for NAME.key (0600) and NAME.crt.",
)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True, help="Validity.")
@click.option(
    "--warnings",
    is_flag=True,
    help="A warning signer instead: the credential that alone signs warnings (sirens, displays); "
    "a command signer cannot, and it signs nothing else.",
)
def ca_command_signer(name: str, ca_dir: Path, out: Path, days: int, warnings: bool) -> None:
    """Issue the centre's command-signing key and certificate: nodes run only commands it signs.

    Example: ioc-center ca command-signer centre --out /etc/ioc --ca /var/lib/ioc/ca
    (and with --warnings, the warning signer: ioc-center ca command-signer centre-warnings --warnings ...)
    """
    from ioc.ca import CertificateAuthority
    from provisioning.commands import COMMAND_SIGNER, WARNING_SIGNER

    purpose = WARNING_SIGNER if warnings else COMMAND_SIGNER
    try:
        key, cert = CertificateAuthority(ca_dir).issue_command_signer(name, out, days, purpose)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    option = "--warning" if warnings else "--command"
    click.echo(f"{purpose.what.removeprefix('a ')} {name}: {key} (0600), {cert} (valid {days} days)")
    click.echo(f"the dispatcher signs with it: ioc-center run {option}-key {key} {option}-cert {cert} ...")


@ca.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_ca_option
def ca_import(paths: tuple[Path, ...], ca_dir: Path) -> None:
    """Register device certificates signed in the field (files, or a credential's issued/ directory).

    Example: ioc-center ca import /media/usb/signer-alice/issued
    """
    from ioc.ca import CertificateAuthority

    try:
        added = CertificateAuthority(ca_dir).import_certificates(list(paths))
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"imported {len(added)} certificate(s)")


@ca.command("revoke")
@click.argument("device")
@_ca_option
def ca_revoke(device: str, ca_dir: Path) -> None:
    """Revoke every certificate of DEVICE: the broker refuses it once reloaded (SIGHUP).

    Example: ioc-center ca revoke vessel-042 && systemctl reload mosquitto
    """
    from ioc.ca import CertificateAuthority

    try:
        authority = CertificateAuthority(ca_dir)
        revoked = authority.revoke(device)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    for cert in revoked:
        click.echo(f"revoked {device}: serial {cert.serial_number:x}")
    if not revoked:
        click.echo(f"{device}: already revoked")
    click.echo(f"CRL: {authority.devices_crl_path}; reload the broker: systemctl reload mosquitto")


@ca.command("revoke-signer")
@click.argument("name")
@_ca_option
def ca_revoke_signer(name: str, ca_dir: Path) -> None:
    """Revoke signer NAME (a lost or stolen credential): once the broker is reloaded (SIGHUP) it
    refuses every device the credential certified, including any a thief made with it. Prints the
    devices known to need provisioning again with another signer.

    Example: ioc-center ca revoke-signer alice && systemctl reload mosquitto
    """
    from ioc.ca import CertificateAuthority

    try:
        devices = CertificateAuthority(ca_dir).revoke_signer(name)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"revoked signer {name}; reload the broker: systemctl reload mosquitto")
    if devices:
        click.echo(f"provision again with another signer (ioc-edge provision --rotate): {', '.join(devices)}")
    else:
        click.echo(f"no device known to be certified by {name} (ioc-center ca import its issued/ to know)")


@ca.command("crl")
@_ca_option
def ca_crl(ca_dir: Path) -> None:
    """Sign every revocation list again (each is valid a year; the broker refuses all once it expires).

    Example: ioc-center ca crl --ca /var/lib/ioc/ca
    """
    from ioc.ca import CRL_DAYS, CertificateAuthority

    try:
        CertificateAuthority(ca_dir).refresh_crls()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"CRLs signed again, valid {CRL_DAYS} days; reload the broker: systemctl reload mosquitto")


# -- the enrolment register ------------------------------------------------------------------------


@main.group()
def device() -> None:
    """The enrolment register: the device ids this centre holds and the one certificate each may use.
    `ioc-center run --tls` refuses the batches of any other device id (reject reasons not_enrolled
    and revoked), so a signer's credential alone no longer puts a device in service.

    Example: ioc-center device enrol /media/usb/signer-alice/issued --ca /var/lib/ioc/ca
    """


def _certificate_files(paths: tuple[Path, ...]) -> list[Path]:
    """The files of ``paths``: each file, and the ``*.crt`` of each directory."""
    return [f for p in paths for f in (sorted(p.glob("*.crt")) if p.is_dir() else [p])]


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name known (a container without one): recorded as unknown
        return ""


@device.command("enrol")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_ca_option
@db_option
@click.option(
    "--replace",
    is_flag=True,
    help="A device id in service gets this certificate instead of its current one (after ioc-edge "
    "provision --rotate); without it, a second certificate for an enrolled device id is refused.",
)
@click.option("--by", default=None, help="Who enrols, recorded with each certificate [default: this user].")
def device_enrol(paths: tuple[Path, ...], ca_dir: Path, url: str, replace: bool, by: str | None) -> None:
    """Enrol device certificates: files (a node's tls/node.crt) or directories of *.crt (a signer
    credential's issued/ the technician brings back). Each is checked against the CA (a device's, from a
    signer of this CA, its path valid, not revoked) and imported into it, for `ca revoke`. A directory
    holding two certificates of one device enrols the older and refuses the newer; with --replace the
    newer ends active.
    Prints one line per certificate; exits 1 when any was refused, naming its file and why.

    Example: ioc-center device enrol /media/usb/signer-alice/issued --ca /var/lib/ioc/ca --db sqlite:///ioc.db
    """
    from ioc.ca import CertificateAuthority
    from ioc.enrolment import Register
    from provisioning import pki

    try:
        authority, register = CertificateAuthority(ca_dir), Register(Database(url))
        certs = [(f, pki.load_certificates(f)[0]) for f in _certificate_files(paths)]
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    if not certs:
        raise Failed(
            f"no certificate (*.crt) in {', '.join(map(str, paths))}: give a signer's issued/ or a node.crt"
        )
    refused = []
    # Per device, oldest first: with --replace, the newest certificate of a device is the one left active.
    for file, cert in sorted(
        certs, key=lambda fc: (pki.common_name(fc[1].subject), fc[1].not_valid_before_utc)
    ):
        device_id, serial = pki.common_name(cert.subject), f"{cert.serial_number:x}"
        try:
            before = register.serial_of(device_id)
            new = register.enrol(cert, authority, replace=replace, by=_operator() if by is None else by)
            authority.import_certificates([file])
        except IocEdgeError as exc:
            refused.append(f"{file}: {exc}")
            continue
        if not new:
            click.echo(f"{device_id}: serial {serial} enrolled already")
            continue
        instead = f", replacing serial {before:x}" if before is not None else ""
        click.echo(
            f"enrolled {device_id}: serial {serial}, valid until {cert.not_valid_after_utc:%Y-%m-%d}{instead}"
        )
    if refused:
        raise Failed(f"refused {len(refused)} certificate(s):\n" + "\n".join(refused))


@device.command("list")
@db_option
@click.option("--all", "history", is_flag=True, help="Every certificate ever enrolled, not only the latest.")
def device_list(url: str, history: bool) -> None:
    """Print each enrolled device: id, status (active, revoked), serial, signer, valid until, enrolled
    (when, by whom); with --all, its replaced and revoked certificates too, the latest first.

    Example: ioc-center device list --db sqlite:///ioc.db
    """
    from ioc.enrolment import Register

    try:
        entries = Register(Database(url)).entries()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    shown = set()
    for e in entries:
        if e.device in shown and not history:
            continue
        shown.add(e.device)
        until = f"{dt.datetime.fromtimestamp(e.not_after_ms / 1000, dt.UTC):%Y-%m-%d}"
        when = f"{dt.datetime.fromtimestamp(e.enrolled_ms / 1000, dt.UTC):%Y-%m-%d %H:%M}Z"
        click.echo(
            f"{e.device}\t{e.status}\t{e.serial:x}\t{e.signer}\tuntil {until}\t"
            f"enrolled {when} by {e.enrolled_by or '?'}"
        )


@device.command("revoke")
@click.argument("device_id", metavar="DEVICE")
@_ca_option
@db_option
def device_revoke(device_id: str, ca_dir: Path, url: str) -> None:
    """Revoke DEVICE (stolen, resold, misbehaving): in the enrolment register, so every receiver refuses
    its batches within 5 s (reject reason revoked) even over a connection already open, and in its
    signer's CRL, so the broker refuses its next handshake once reloaded. Then end the connection it
    may have open: reload the broker, then `ioc-center broker disconnect DEVICE` (in that order, or it
    connects again at once).

    Example: ioc-center device revoke vessel-042 --ca /var/lib/ioc/ca --db sqlite:///ioc.db
    """
    from ioc.ca import CertificateAuthority
    from ioc.enrolment import Register

    try:
        authority = CertificateAuthority(ca_dir)
        revoked = Register(Database(url)).revoke(device_id)
        click.echo(f"revoked {device_id} in the register: serial {revoked.serial:x}")
        in_crl = authority.revoke(device_id)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    serials = ", ".join(f"{c.serial_number:x}" for c in in_crl) or "listed already"
    click.echo(f"revoked {device_id} in its signer's CRL: {serials}")
    click.echo(
        "then: systemctl reload mosquitto && "
        f"ioc-center broker disconnect {device_id} --tls /etc/mosquitto/conf.d --mqtt-port 8884"
    )


@main.command("broker-config")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@_ca_option
@click.option(
    "--host",
    "hosts",
    multiple=True,
    required=True,
    help="Name or address devices reach the broker by (repeat).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8883, show_default=True, help="Devices' TLS port."
)
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address of the devices' listener.")
@click.option(
    "--centre-port", type=click.IntRange(1, 65535), default=8884, show_default=True, help="Receivers' port."
)
@click.option(
    "--centre-bind", default="127.0.0.1", show_default=True, help="Address of the receivers' listener."
)
@click.option("--topic-prefix", default="ioc/v1", show_default=True, help="Root of the topic tree.")
@click.option(
    "--db",
    "url",
    default=None,
    help="The centre's database: its enrolled devices get their topics [default: none yet; add them "
    "later with `ioc-center broker devices`].",
)
def broker_config(
    out: Path,
    ca_dir: Path,
    hosts: tuple[str, ...],
    port: int,
    bind: str,
    centre_port: int,
    centre_bind: str,
    topic_prefix: str,
    url: str | None,
) -> None:
    """Write the broker's mutual-TLS configuration into OUT: ioc.conf, the devices' rules, its
    certificate and the receivers' identity (for `ioc-center run --tls OUT`). Devices: a certificate
    of the CA, CN = device id = username; an enrolled device publishes only its own uplink and
    subscribes to and reads only its own acks; any other certificate may connect and do nothing.
    No anonymous access.

    Example: ioc-center broker-config /etc/mosquitto/conf.d --host mqtt.ioc.example --ca /var/lib/ioc/ca
    """
    from ioc.ca import CertificateAuthority
    from ioc.mosquitto_conf import BrokerSettings, write_broker_config

    settings = BrokerSettings(hosts, port, bind, centre_port, centre_bind, topic_prefix)
    try:
        devices = _enrolled(url) if url else []
        conf = write_broker_config(CertificateAuthority(ca_dir), out, settings, devices)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"{conf} written; receivers: ioc-center run --tls {out} --mqtt-port {centre_port}")
    click.echo(f"devices allowed: {len(devices)} (after enrolling: ioc-center broker devices {out})")


def _enrolled(url: str) -> list[str]:
    from ioc.enrolment import Register

    return [e.device for e in Register(Database(url)).active()]


@main.group()
def broker() -> None:
    """The broker's side of the devices: which may use their topics, and ending a device's session.

    Example: ioc-center broker devices /etc/mosquitto/conf.d --db sqlite:///ioc.db
    """


@broker.command("devices")
@click.argument("out", type=click.Path(file_okay=False, exists=True, path_type=Path))
@db_option
@click.option("--topic-prefix", default="ioc/v1", show_default=True, help="Root of the topic tree.")
def broker_devices(out: Path, url: str, topic_prefix: str) -> None:
    """Write OUT/devices.json again (OUT: the directory of `ioc-center broker-config`): every device
    enrolled and active in the register may use its own topics. mosquitto reads the file when it
    starts: restart it (a reload does not read it; the nodes reconnect and resend what was not acked).

    Example: ioc-center broker devices /etc/mosquitto/conf.d --db sqlite:///ioc.db
    """
    from ioc.mosquitto_conf import write_device_rules

    try:
        devices = _enrolled(url)
        path = write_device_rules(out, topic_prefix, devices)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"{path} written: {len(devices)} device(s); restart the broker: systemctl restart mosquitto")


@broker.command("disconnect")
@click.argument("device_id", metavar="DEVICE")
@click.option(
    "--tls",
    "tls_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The receivers' identity (the directory of `ioc-center broker-config`).",
)
@click.option("--mqtt-host", default="127.0.0.1", show_default=True, help="The broker's centre listener.")
@click.option("--mqtt-port", default=8884, show_default=True, help="Its port.")
def broker_disconnect(device_id: str, tls_dir: Path, mqtt_host: str, mqtt_port: int) -> None:
    """End DEVICE's connection to the broker and delete its session (subscriptions, queued acks).
    Run it after `ioc-center ca revoke DEVICE` and a reload, so that it cannot connect again.

    Example: ioc-center broker disconnect vessel-042 --tls /etc/mosquitto/conf.d --mqtt-port 8884
    """
    from ioc.disconnect import disconnect

    try:
        disconnect(device_id, tls_dir, mqtt_host, mqtt_port)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"disconnected {device_id}: its connection ended and its session is deleted")


@main.group()
def track() -> None:
    """The vessels' signed track logs.

    Example: ioc-center track verify vessel-042.track --ca /etc/ioc/ca/ca.pem
    """


@track.command("export")
@click.argument("device")
@click.option(
    "--from", "from_ms", required=True, callback=iso_time_ms, help="Start, ISO 8601 (no zone: UTC)."
)
@click.option("--to", "to_ms", required=True, callback=iso_time_ms, help="End (exclusive), ISO 8601.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option("--chain", default=None, help="The chain (the node's store epoch); default: the newest.")
@db_option
def track_export(device: str, from_ms: int, to_ms: int, out: Path, chain: str | None, url: str) -> None:
    """Write DEVICE's track as the centre stored it, between --from and --to, into one file
    that `ioc-center track verify` checks offline (as `ioc-edge track export` on the node does):
    records, hashes, signatures, the device's certificates and the notes' texts (warnings received
    and acknowledged on board). The range widens to the signatures around it.

    Example: ioc-center track export vessel-042 --from 2026-11-01 --to 2026-11-08 --out week.track
    """
    from ioc.track import export_chain

    if from_ms >= to_ms:
        raise Failed("--from must be before --to")
    try:
        header = export_chain(Database(url), device, from_ms, to_ms, out, chain)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(_exported(out, header))


def _exported(out: Path, header: dict[str, Any]) -> str:
    last = header["first_idx"] + header["records"] - 1
    lines = [
        f"{out}: {header['records']} records ({header['first_idx']}..{last}) of chain {header['chain']}, "
        f"{len(header['signatures'])} signatures"
        + (f", {len(header['notes'])} notes" if header["notes"] else "")
    ]
    if header["unsigned"]:
        lines.append(f"note: the newest {header['unsigned']} records of the range are not signed yet")
    return "\n".join(lines)


@track.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--ca",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The IOC's CA certificate (PEM) the device's certificate must chain to.",
)
@click.option(
    "--crl",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The CRLs (the CA directory's devices-crl.pem): a signature made at or after its "
    "certificate's revocation, by the time it claims, does not verify.",
)
@click.option(
    "--gap-s",
    type=click.FloatRange(2, 86_400),
    default=GAP_S,
    show_default=True,
    help="Longer between two records is a gap, as `ioc-center run --track-gap-s` flags it.",
)
@click.option("--strict", is_flag=True, help="Exit 3 when the track has gaps (it verifies otherwise).")
def track_verify(file: Path, ca: Path, crl: Path | None, gap_s: float, strict: bool) -> None:
    """Check an export of `ioc-edge track export` offline: every record, the chain, the signatures
    (the certificates as a path to the CA, at each signature's time; their revocation with --crl),
    and list the gaps: the node off for longer than --gap-s, or its time going back.

    Prints a summary and exits 0 (gaps are listed: they are not a forgery; with --strict they exit
    3), or names the first record that does not verify and exits 1.

    Example: ioc-center track verify vessel-042.track --ca ca/ca.crt --crl ca/devices-crl.pem
    """
    from provisioning import pki
    from provisioning.revocation import CrlFile
    from sync.trackfile import verify

    try:
        crls = CrlFile(crl) if crl is not None else None
        report = verify(file, pki.load_certificates(ca)[0], crls, gap_s)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(report.summary())
    if strict and report.gaps:
        raise SystemExit(3)  # 2 is click's usage error
