"""``ioc-center broker-config`` and ``broker``: the broker's mutual TLS and the devices it admits."""

from __future__ import annotations

from pathlib import Path

import click

from common.clikit import Failed
from common.errors import IocEdgeError
from ioc.cli.shared import ca_option, db_option
from ioc.db import Database


@click.command("broker-config")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@ca_option
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


@click.group()
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
