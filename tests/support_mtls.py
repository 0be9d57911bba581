"""The IOC's side over mutual TLS, made by the CLI as an operator would, and clients that talk to its broker.

Example: ``with open_centre(tmp_path, db) as centre: config = centre.provision("vessel-1")``
(the ``centre`` fixture in conftest.py does the same over a SQLite database).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from helpers import cli, free_port, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.cli import main as edge_cli
from edge.config import NodeConfig, load_config
from ioc.broker import PrivateBroker
from ioc.cli import main as center_cli
from ioc.db import Database
from ioc.enrolment import Register
from ioc.receiver import Receiver
from provisioning.tls import TlsFiles, client_context


@dataclass
class Centre:
    """The IOC's side: CA, a signer, the broker on its generated config, the receiver and its database.

    Example: ``handshake(centre.broker.port, files(centre.provision("vessel-1")), centre.ca / "ca.crt")``
    """

    tmp: Path
    ca: Path
    signer: Path
    tls: Path
    broker: PrivateBroker
    centre_port: int
    db: Database
    outputs: list[str]
    restart: Callable[[], None]
    """The broker restarted (it reads its devices' rules only then) and the receiver connected anew."""

    def provision(
        self,
        device: str,
        port: int | None = None,
        signer: Path | None = None,
        site: str = "Thuan An",
        enrol: bool = True,
    ) -> NodeConfig:
        """``ioc-edge provision`` of a node that buffers in ``tmp/<device>`` and reaches this broker;
        then, with ``enrol`` and a signer of this centre's CA, ``ioc-center device enrol`` of its
        certificate, as the operator does with what the technician brings back."""
        signer = signer or self.signer
        config = self.tmp / device / "edge.toml"
        self.outputs.append(
            cli(
                edge_cli,
                ["provision", "--config", str(config), "--device-id", device, "--site", site]
                + ["--broker-host", "127.0.0.1", "--broker-port", str(port or self.broker.port)]
                + ["--signer", str(signer), "--state-dir", str(self.tmp / device / "state")]
                + ["--template", str(self.template())],
            )
        )
        made = load_config(config)
        if enrol and (signer / "ca.crt").read_bytes() == (self.ca / "ca.crt").read_bytes():
            self.enrol(made.uplink.tls.cert)
        return made

    def enrol(self, cert: Path, *options: str) -> str:
        """``ioc-center device enrol CERT`` into this centre's register; its output."""
        args = ["device", "enrol", str(cert), "--ca", str(self.ca), "--db", self.db.url, *options]
        self.outputs.append(cli(center_cli, args))
        enrolled = self.outputs[-1]
        self.admit()
        return enrolled

    def admit(self) -> None:
        """The devices active in the register allowed their topics at the broker, as the operator does
        after enrolling: ``ioc-center broker devices`` and a restart of the broker."""
        self.outputs.append(cli(center_cli, ["broker", "devices", str(self.tls), "--db", self.db.url]))
        self.restart()

    def template(self) -> Path:
        path = self.tmp / "template.toml"
        path.write_text(
            "[store]\nflush_interval_s = 0.2\nstatus_interval_s = 1\n\n"
            "[uplink]\nack_timeout_s = 3\nbackoff_min_s = 0.1\nbackoff_max_s = 0.5\n\n"
            # No metrics endpoint: nodes of other tests running at the same time would contend for its port.
            "[metrics]\nenabled = false\n"
        )
        return path


@contextmanager
def open_centre(tmp_path: Path, db: Database) -> Iterator[Centre]:
    """The centre made by the CLI in ``tmp_path`` (CA, signer alice, broker config), storing into ``db``."""
    ca, signer, tls = tmp_path / "ca", tmp_path / "signer-alice", tmp_path / "broker-tls"
    outputs = [
        cli(center_cli, ["ca", "init", str(ca), "--org", "Hue IOC"]),
        cli(center_cli, ["ca", "issue-signer", "alice", "--ca", str(ca), "--out", str(signer)]),
    ]
    port, centre_port = free_port(), free_port()
    outputs.append(
        cli(
            center_cli,
            ["broker-config", str(tls), "--ca", str(ca), "--host", "127.0.0.1", "--bind", "127.0.0.1"]
            + ["--port", str(port), "--centre-port", str(centre_port)],
        )
    )
    with PrivateBroker(tmp_path / "broker", port, listeners=tls / "ioc.conf") as broker:
        receivers: list[Receiver] = []

        def start_receiver() -> None:
            receiver = Receiver(
                db,
                broker.host,
                centre_port,
                client_id="ioc-test",
                tls=TlsFiles.receiver(tls),
                register=Register(db),  # as `ioc-center run --tls` enforces it
            )
            receivers.append(receiver)
            receiver.start()
            assert receiver.subscribed.wait(10), "the receiver could not subscribe over mutual TLS"

        def restart() -> None:
            # A new receiver rather than paho's reconnection (0.5 s and more): batches sent before its
            # subscription would reach no one until resent.
            receivers.pop().stop()
            broker.stop()
            broker.start()
            start_receiver()

        try:
            start_receiver()
            yield Centre(tmp_path, ca, signer, tls, broker, centre_port, db, outputs, restart)
        finally:
            for receiver in receivers:
                receiver.stop()


def files(config: NodeConfig) -> TlsFiles:
    """The TLS files of a provisioned node's config."""
    return TlsFiles(config.uplink.tls.ca, config.uplink.tls.cert, config.uplink.tls.key)


def handshake(port: int, tls: TlsFiles | None, ca: Path) -> str:
    """Complete a TLS handshake with the broker and wait for its verdict: "accepted" or OpenSSL's reason."""
    context = client_context(tls) if tls else ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                conn.settimeout(1.0)
                conn.recv(
                    1
                )  # TLS 1.3: the broker judges the client's certificate after the client's Finished
        except TimeoutError:
            return "accepted"  # the broker waits for an MQTT CONNECT
        except ssl.SSLError as exc:
            return exc.reason
    return "closed"


def wait_until_revoked_at_the_broker(centre: Centre, config: NodeConfig) -> None:
    """Wait until the broker, reloaded, refuses ``config``'s certificate as revoked at the handshake."""
    wait_for(
        lambda: (
            handshake(centre.broker.port, files(config), centre.ca / "ca.crt")
            == "SSLV3_ALERT_CERTIFICATE_REVOKED"
        ),
        10,
        "the broker to read the new CRL",
    )


class Client:
    """A bare paho client with a device's identity: what a tampered node could send.

    Example: ``Client(centre.broker.port, files(config), "vessel-a").publish(topic, payload)`` (PUBACK code)

    With ``session_expiry`` (seconds) the broker keeps its session after it disconnects, as a node's;
    ``session_present`` is the broker's answer: a session of this client id was there already.
    """

    def __init__(self, port: int, tls: TlsFiles, client_id: str, session_expiry: int = 0) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.tls_set_context(client_context(tls))
        self.puback: dict[int, object] = {}
        self.suback: list[object] = []
        self.done = threading.Event()
        self.client.on_publish = lambda c, u, mid, rc, props: self.puback.__setitem__(mid, rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self.suback.extend(rcs)
        self.received: list[str] = []
        self.client.on_message = lambda c, u, message: self.received.append(message.topic)
        connected = threading.Event()
        self.session_present: bool | None = None

        def on_connect(c, u, flags, rc, props) -> None:
            self.session_present = flags.session_present
            connected.set()

        self.client.on_connect = on_connect
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry
        self.client.connect("127.0.0.1", port, clean_start=session_expiry == 0, properties=props)
        self.client.loop_start()
        assert connected.wait(10)

    def publish(self, topic: str, payload: bytes) -> object:
        info = self.client.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.puback, 10, "the PUBACK")
        return self.puback[info.mid]

    def subscribe(self, topic: str) -> object:
        self.client.subscribe(topic, qos=1)
        wait_for(lambda: self.suback, 10, "the SUBACK")
        return self.suback[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
