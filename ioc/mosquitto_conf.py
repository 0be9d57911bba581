"""The centre's mosquitto configuration for mutual TLS (``ioc-center broker-config``).

Two listeners, each with its own rules (``per_listener_settings``):

- **devices** (default ``0.0.0.0:8883``): a client certificate chained to the device CA is required
  and checked against the CRLs; its CN (the device id) is the MQTT username and the client id. The
  rules are mosquitto's dynamic-security plugin's, from ``devices.json``: an enrolled device may
  publish only to ``{prefix}/<its id>/up/+``, subscribe only to ``{prefix}/<its id>/ack`` and
  ``{prefix}/<its id>/cmd`` (not a wildcard, not a ``$share`` group) and read only those. A
  certificate whose CN is not in the file may connect and do nothing. mosquitto 2.0's ``acl_file``
  cannot be used here: it grants every SUBSCRIBE (``security_default.c``: "FIXME - implement ACL
  subscription strings"), so a device could join the receivers' shared subscription and be handed
  other nodes' batches.
- **centre** (default ``127.0.0.1:8884``): only certificates of the centre CA (the receivers'),
  which may read every uplink topic and write every ack and command. No device certificate is
  accepted here.

``devices.json`` is read when mosquitto starts, not on a reload (SIGHUP): after enrolling devices,
``ioc-center broker devices`` writes it again and the broker is restarted. Nobody administers the
plugin over ``$CONTROL``: an administrator on the devices listener would be a certificate CN, which
anyone holding a signer can mint; so the broker never rewrites the file.

Both listeners refuse a packet above :data:`MAX_PACKET_BYTES`: the client is disconnected (reason
0x95, "disconnected due to oversize packet" in the broker's log) before the packet is read. Not
``message_size_limit``: mosquitto 2.0.11 answers it with a PUBACK 0x95, which MQTT 5 does not allow
there, and paho then drops the connection and sends the message again, forever.

No anonymous access on either. The output directory gets ``ioc.conf`` (a ``conf.d``
snippet: Debian's ``/etc/mosquitto/mosquitto.conf`` sets persistence and the log), the devices'
rules and the centre's ACL file, the broker's server certificate and key, and the receivers'
identity (``receiver.crt``, ``receiver.key``, ``ca.crt``: what ``ioc-center run --tls DIR`` reads).
The CA certificates and CRLs are referenced in the CA directory itself, so that ``ioc-center ca
revoke`` then a reload (``systemctl reload mosquitto``, SIGHUP) is all it takes to refuse a
revoked device's next connection (``ioc-center broker disconnect`` ends the current one).

Example::

    settings = BrokerSettings(hosts=("mqtt.ioc.example",))
    ca = CertificateAuthority(Path("/var/lib/ioc/ca"))
    write_broker_config(ca, Path("/etc/mosquitto/conf.d"), settings, devices=["vessel-042"])
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ioc.broker import find_dynsec_plugin
from ioc.ca import CertificateAuthority
from provisioning import pki
from provisioning.pki import PkiError
from sync.commands import command_topic
from sync.wire import DEVICE_RE, MAX_PAYLOAD_BYTES, ack_topic

__all__ = [
    "DEVICE_RULES",
    "MAX_PACKET_BYTES",
    "RECEIVER_CN",
    "BrokerSettings",
    "acl_centre",
    "device_rules",
    "render",
    "write_broker_config",
    "write_device_rules",
]

RECEIVER_CN = "ioc-receiver"
"""The receivers' certificate CN: their MQTT username on the centre listener."""
DEVICE_RULES = "devices.json"
"""The dynamic-security plugin's file for the devices listener, in the output directory."""
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024
"""The largest MQTT packet either listener reads: the largest payload the receiver accepts, plus
room for the topic and properties (ours take a few hundred bytes)."""


@dataclass(frozen=True)
class BrokerSettings:
    """Where the broker listens and the names clients reach it by (its certificate's names)."""

    hosts: tuple[str, ...] = field(default=("127.0.0.1",))
    port: int = 8883
    bind: str = "0.0.0.0"
    centre_port: int = 8884
    centre_bind: str = "127.0.0.1"
    prefix: str = "ioc/v1"
    days: int = 825
    """Validity of the server and receiver certificates."""
    plugin: Path | None = None
    """mosquitto's dynamic-security plugin (``None``: where mosquitto's package installs it)."""


def device_rules(prefix: str, devices: Iterable[str]) -> dict:
    """The dynamic-security plugin's configuration: each device's own topics, nothing by default.

    Raises :class:`PkiError` for a name that is not a device id (it becomes a topic level).
    """
    clients, roles = [], []
    for device in sorted(set(devices)):
        if not DEVICE_RE.fullmatch(device):
            raise PkiError(f"device {device!r} is not a device id ({DEVICE_RE.pattern})")
        allow = [("publishClientSend", f"{prefix}/{device}/up/+")]
        # Its acks and the centre's commands to it: it reads them, only the centre writes them.
        for topic in (ack_topic(prefix, device), command_topic(prefix, device)):
            allow += [
                ("publishClientReceive", topic),
                # Literal: the plugin compares the whole filter, "$share/<group>/" included.
                ("subscribeLiteral", topic),
                ("unsubscribeLiteral", topic),
            ]
        roles.append(
            {"rolename": device, "acls": [{"acltype": t, "topic": f, "allow": True} for t, f in allow]}
        )
        clients.append({"username": device, "roles": [{"rolename": device}]})
    # A username the plugin does not hold, and any topic not allowed above: refused.
    default = dict.fromkeys(["publishClientSend", "publishClientReceive", "subscribe", "unsubscribe"], False)
    return {"defaultACLAccess": default, "clients": clients, "groups": [], "roles": roles}


def write_device_rules(out: Path, prefix: str, devices: Iterable[str]) -> Path:
    """Write ``devices.json`` into ``out`` for ``devices``; the broker reads it when it starts."""
    path = Path(out).resolve() / DEVICE_RULES
    pki.write_public(path, json.dumps(device_rules(prefix, devices), indent=1).encode())
    return path


def acl_centre(prefix: str) -> str:
    return (
        "# The IOC's receivers (centre CA): every device's uplink, every ack, every command.\n"
        f"user {RECEIVER_CN}\n"
        f"topic read {prefix}/+/up/+\n"
        f"topic write {prefix}/+/ack\n"
        f"topic write {prefix}/+/cmd\n"
    )


def render(settings: BrokerSettings, ca: CertificateAuthority, out: Path) -> str:
    """The text of ``ioc.conf`` for files in ``out`` and the CA directory of ``ca``."""
    server = f"certfile {out / 'server.crt'}\nkeyfile {out / 'server.key'}\n"
    common = "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n"
    plugin = settings.plugin or find_dynsec_plugin()
    return (
        "# Generated by `ioc-center broker-config`; run it again rather than editing.\n"
        "per_listener_settings true\n"
        # The packet's size is known from its header: a larger one is refused before it is read.
        f"max_packet_size {MAX_PACKET_BYTES}\n"
        # Commands, acks and alarms are small messages: with Nagle's algorithm each waits for the
        # peer's delayed ACK (~40 ms), which was half of a command's round trip (bench/commands.py).
        "set_tcp_nodelay true\n"
        "\n# Field devices: mutual TLS, certificate CN = device id = username = client id.\n"
        f"listener {settings.port} {settings.bind}\n" + server + f"cafile {ca.ca_cert_path}\n"
        f"crlfile {ca.devices_crl_path}\n"
        + common
        # A device cannot take over another's session (and its queued acks) by using its client id.
        + "use_username_as_clientid true\n"
        f"plugin {plugin}\nplugin_opt_config_file {out / DEVICE_RULES}\n"
        "\n# The centre's receivers: their own CA, so no device certificate is accepted here.\n"
        f"listener {settings.centre_port} {settings.centre_bind}\n"
        + server
        + f"cafile {ca.centre_ca_cert_path}\n"
        f"crlfile {ca.centre_crl_path}\n" + common + f"acl_file {out / 'acl-centre'}\n"
    )


def write_broker_config(
    ca: CertificateAuthority, out: Path, settings: BrokerSettings, devices: Iterable[str] = ()
) -> Path:
    """Issue the broker's and the receivers' certificates and write the configuration into ``out``,
    with ``devices`` (the enrolled device ids) allowed their own topics.

    Returns the path of ``ioc.conf``. Running it again issues new certificates (restart the
    broker and the receivers then). Raises :class:`PkiError` for a name that is not a device id.
    """
    out = Path(out).resolve()
    device_ca, centre_ca = ca.device_ca(), ca.centre_ca()
    key = pki.new_key()
    cert = pki.issue_leaf(
        device_ca.cert, device_ca.key, key.public_key(), settings.hosts[0], unit="broker",
        days=settings.days, server_names=settings.hosts,
    )  # fmt: skip
    pki.write_private_key(out / "server.key", key)
    pki.write_public(out / "server.crt", pki.certificate_pem(cert))
    key = pki.new_key()
    cert = pki.issue_leaf(
        centre_ca.cert, centre_ca.key, key.public_key(), RECEIVER_CN, unit="centre", days=settings.days
    )
    pki.write_private_key(out / "receiver.key", key)
    pki.write_public(out / "receiver.crt", pki.certificate_pem(cert))
    pki.write_public(out / "ca.crt", pki.certificate_pem(device_ca.cert))  # the receivers verify the broker
    write_device_rules(out, settings.prefix, devices)
    pki.write_public(out / "acl-centre", acl_centre(settings.prefix).encode())
    conf = out / "ioc.conf"
    pki.write_public(conf, render(settings, ca, out).encode())
    return conf
