"""``ioc-center run`` and ``serve``: the centre's long-running processes (receiver, dispatcher, dashboard)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from common.clikit import Failed, wait_for_stop_signal
from common.errors import IocEdgeError
from ioc.cli.shared import db_option
from ioc.db import Database
from ioc.track import GAP_S

if TYPE_CHECKING:
    from ioc.web import WebServer


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


@click.command()
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


@click.command()
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
