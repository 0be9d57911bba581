"""A node's bench for the centre's signed commands: a real mosquitto over mutual TLS without an ACL (so a test
client may publish anything on the node's command topic), the node's identity and config, and the command
signer and the warning signer of the node's CA.

Example::

    @pytest.fixture
    def bench(tmp_path):
        with command_bench(tmp_path) as b:
            yield b
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import make_identity
from helpers import free_port, now_ms, wait_for
from support_mtls import Client
from support_nodes import node_toml, write_config

from edge.config import NodeConfig
from edge.runtime import Node, open_store
from ioc.broker import PrivateBroker
from ioc.commands import CommandQueue, Dispatcher
from ioc.db import Database
from ioc.receiver import Receiver
from provisioning import pki
from provisioning.commands import COMMAND_SIGNER, WARNING_SIGNER, CommandSigner, issue_command_signer
from provisioning.tls import TlsFiles
from provisioning.trust import Purpose
from sync.commands import Command, SignedCommand, command_topic, encode_command
from sync.records import CommandResult
from sync.store import StoredCommand

DEVICE = "vessel-042"


def command_signer(ca_dir: Path, out: Path, purpose: Purpose = COMMAND_SIGNER) -> CommandSigner:
    """A command signer (or another ``purpose``'s: the warning signer) of the device CA in ``ca_dir``,
    written to ``out``, loaded as the centre does."""
    ca_key, ca_cert = pki.load_private_key(ca_dir / "ca.key"), pki.load_certificates(ca_dir / "ca.crt")[0]
    key, cert = issue_command_signer(ca_key, ca_cert, "dispatcher", purpose=purpose)
    name = "signer" if purpose is COMMAND_SIGNER else purpose.unit
    pki.write_private_key(out / f"{name}.key", key)
    pki.write_public(out / f"{name}.crt", pki.certificate_pem(cert))
    return CommandSigner.load(out / f"{name}.key", out / f"{name}.crt")


@dataclass
class Bench:
    """The broker (mutual TLS against the device CA, no ACL), the node's identity and config, a client of
    the same CA that publishes commands, and the CA's command signer and warning signer."""

    tmp: Path
    broker: PrivateBroker
    identity: TlsFiles
    config: NodeConfig
    publisher: Client
    signer: CommandSigner
    warning_signer: CommandSigner

    def command(self, seq: int, kind: str = "ping", **changes: Any) -> Command:
        """A command for the node's store epoch, issued now for a minute; ``changes`` override fields."""
        fields = {
            "device": DEVICE,
            "epoch": self.epoch(),
            "seq": seq,
            "kind": kind,
            "body": {},
            "issuer": "lan",
            "issued_ms": now_ms(),
            "expires_ms": now_ms() + 60_000,
        }
        return Command(**(fields | changes))

    def publish(self, signed: SignedCommand | bytes) -> None:
        payload = signed if isinstance(signed, bytes) else encode_command(signed)
        self.publisher.publish(command_topic("ioc/v1", DEVICE), payload)

    def epoch(self) -> str:
        store = open_store(self.config)
        try:
            return store.epoch
        finally:
            store.close()

    def results(self) -> list[CommandResult]:
        store = open_store(self.config)
        try:
            return store.read("command_result", 0, 1000)[1]
        finally:
            store.close()

    def taken(self) -> list[StoredCommand]:
        store = open_store(self.config)
        try:
            return store.commands()
        finally:
            store.close()

    def start(self, run_node: Callable[..., Node]) -> Node:
        """The node, once its command subscription is in place: it subscribes before it publishes on a
        connection, and the broker handles one connection's packets in order."""
        self.publisher.received.clear()
        node = run_node(self.config)
        wait_for(lambda: self.publisher.received, 10, "a batch of the node")
        return node


@contextmanager
def command_bench(tmp_path: Path) -> Iterator[Bench]:
    """The broker, identity, config, publisher and signer of a :class:`Bench` in ``tmp_path``."""
    identity = make_identity(tmp_path, DEVICE)
    ca_dir = tmp_path / "ca"
    ca_key, ca_cert = pki.load_private_key(ca_dir / "ca.key"), pki.load_certificates(ca_dir / "ca.crt")[0]
    key = pki.new_key()
    cert = pki.issue_leaf(
        ca_cert, ca_key, key.public_key(), "127.0.0.1", unit="broker", days=1, server_names=["127.0.0.1"]
    )
    pki.write_private_key(tmp_path / "server.key", key)
    pki.write_public(tmp_path / "server.crt", pki.certificate_pem(cert))
    port = free_port()
    listeners = tmp_path / "listeners.conf"
    listeners.write_text(
        f"listener {port} 127.0.0.1\ncertfile {tmp_path / 'server.crt'}\nkeyfile {tmp_path / 'server.key'}\n"
        f"cafile {ca_dir / 'ca.crt'}\nrequire_certificate true\nuse_identity_as_username true\n"
    )
    tls = f'[uplink.tls]\nca = "{identity.ca}"\ncert = "{identity.cert}"\nkey = "{identity.key}"\n'
    config = write_config(tmp_path, node_toml(tmp_path, DEVICE, port) + tls)
    (tmp_path / "signer").mkdir()
    signer = command_signer(ca_dir, tmp_path / "signer")
    warning_signer = command_signer(ca_dir, tmp_path / "signer", WARNING_SIGNER)
    with PrivateBroker(tmp_path / "broker", port, listeners=listeners) as broker:
        publisher = Client(port, make_identity(tmp_path, "ioc-test"), "ioc-test")
        publisher.subscribe(f"ioc/v1/{DEVICE}/up/+")
        yield Bench(tmp_path, broker, identity, config, publisher, signer, warning_signer)
        publisher.close()


@dataclass
class CentreSide:
    """The centre on a bench's broker: its receiver (whose acks end a config's trial), its dispatcher
    (retrying fast; not started) and its command queue, on a SQLite database."""

    db: Database
    queue: CommandQueue
    dispatcher: Dispatcher


@contextmanager
def centre_on(bench: Bench, tmp_path: Path, db: Database | None = None) -> Iterator[CentreSide]:
    """The centre on ``bench``'s broker over ``db`` (None: a SQLite file of its own, closed at the end)."""
    own = db is None
    db = Database(f"sqlite:///{tmp_path / 'ioc.db'}") if db is None else db
    centre = make_identity(tmp_path, "ioc-centre")  # the broker has no ACL: any certificate of the CA
    receiver = Receiver(db, "127.0.0.1", bench.broker.port, client_id="ioc-test-receiver", tls=centre)
    receiver.start()
    assert receiver.subscribed.wait(10)
    dispatcher = Dispatcher(
        db,
        bench.signer,
        "127.0.0.1",
        bench.broker.port,
        warning_signer=bench.warning_signer,
        tls=centre,
        retry_min_s=0.2,
        retry_max_s=1,
        tick_s=0.05,
    )
    try:
        yield CentreSide(db, CommandQueue(db), dispatcher)
    finally:
        dispatcher.stop()
        receiver.stop()
        if own:
            db.close()
