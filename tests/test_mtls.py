"""Mutual TLS end to end: a real mosquitto running the generated configuration, real certificates
made by the CLI in the test's directory, the node's runtime and the IOC's receiver."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from helpers import capture_logs, cli, wait_for
from support_mtls import Centre, Client, files, handshake, wait_until_revoked_at_the_broker
from support_net import Link

from edge.cli import main as edge_cli
from edge.config import NodeConfig
from edge.runtime import open_store
from ioc.cli import main as center_cli
from provisioning.identity import NodeIdentity
from sync.records import Position
from sync.wire import Batch, ack_topic, encode_batch, up_topic


def positions(n: int, start: int = 0) -> list[Position]:
    t = 1_764_000_000_000
    return [
        Position(t + i * 1000, 1, t + i * 1000, 16.46, 107.59, 5.0, 45.0) for i in range(start, start + n)
    ]


def write_positions(config: NodeConfig, records: list[Position]) -> None:
    store = open_store(config)
    store.write({"position": records})
    store.close()


def backlog(config: NodeConfig) -> int:
    store = open_store(config)
    try:
        return store.backlog()["position"]
    finally:
        store.close()


def batch(device: str, start: int = 0, n: int = 5) -> Batch:
    return Batch(
        device, "0123456789abcdef", "position", list(range(start + 1, start + n + 1)), positions(n, start)
    )


def secrets_of(key_file: Path) -> list[bytes]:
    """What would betray the key: its PEM body (whole and per line), its DER, its private number."""
    pem = key_file.read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return [b"".join(body), *body, der, scalar, base64.b64encode(scalar), scalar.hex().encode()]


def test_provisioned_node_data_reaches_the_ioc_over_mutual_tls_and_no_key_leaks(
    centre: Centre, run_node, caplog
) -> None:
    relay = Link(centre.broker.port, record=True)
    try:
        config = centre.provision("vessel-1", port=relay.port)
        capture_logs(caplog)
        write_positions(config, positions(200))
        run_node(config)
        wait_for(lambda: centre.db.count("position") == 200 and backlog(config) == 0, 30, "the positions")
        wait_for(lambda: centre.db.count("status") > 0, 10, "a status record")
    finally:
        relay.cut()
    stored = list(centre.db.dump("position", "vessel-1"))
    assert [r["seq"] for r in stored] == list(range(1, 201))
    assert centre.db.rejects() == {}
    assert relay.seen and b"vessel-1" not in relay.seen  # encrypted: not even the device id is readable

    keys = {
        config.uplink.tls.key,
        centre.signer / "signer.key",
        centre.ca / "ca.key",
        centre.ca / "centre" / "ca.key",
        centre.ca / "signers" / "alice" / "signer.key",
        centre.tls / "server.key",
        centre.tls / "receiver.key",
    }
    for key in keys:
        assert key.stat().st_mode & 0o777 == 0o600, key
    node_key = secrets_of(config.uplink.tls.key)
    # Everything the node, the IOC and the link produced, and everything the technician carries away.
    haystacks = {
        "logs": caplog.text.encode(),
        "CLI output": "".join(centre.outputs).encode(),
        "broker log": centre.broker.log_path.read_bytes(),
        "IOC database": (centre.tmp / "ioc.db").read_bytes(),
        "the wire": bytes(relay.seen),
        **{str(p): p.read_bytes() for p in centre.signer.rglob("*") if p.is_file()},
        **{str(p): p.read_bytes() for p in centre.ca.rglob("*") if p.is_file()},
    }
    assert "event=uplink_connected" in caplog.text  # the logs captured are the node's
    for name, data in haystacks.items():
        for secret in node_key:
            assert secret not in data, f"the node's private key appears in {name}"
    for key in keys - {config.uplink.tls.key}:
        for secret in secrets_of(key):
            assert secret not in caplog.text.encode() + bytes(relay.seen), f"{key} leaked"


def test_client_without_a_certificate_is_refused(centre: Centre) -> None:
    assert handshake(centre.broker.port, None, centre.ca / "ca.crt") == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    # mosquitto logs the refusal after the alert it sent: it may be a moment behind the client.
    refused = "peer did not return a certificate"
    wait_for(lambda: refused in centre.broker.log_path.read_text(), 5, "the refusal in mosquitto's log")
    assert centre.db.count("position") == 0


def test_certificate_of_another_ca_is_refused(centre: Centre, tmp_path: Path, run_node, caplog) -> None:
    other_ca, other_signer = tmp_path / "other-ca", tmp_path / "other-signer"
    cli(center_cli, ["ca", "init", str(other_ca), "--org", "Hue IOC"])  # same names, another key
    cli(center_cli, ["ca", "issue-signer", "mallory", "--ca", str(other_ca), "--out", str(other_signer)])
    config = centre.provision("vessel-1", signer=other_signer)
    # The impostor trusts the real broker; only its own certificate is foreign.
    (tmp_path / "vessel-1" / "tls" / "ca.crt").write_bytes((centre.ca / "ca.crt").read_bytes())
    assert handshake(centre.broker.port, files(config), centre.ca / "ca.crt") == "TLSV1_ALERT_UNKNOWN_CA"
    # Nor is a device certificate of the right CA accepted on the receivers' listener.
    genuine = centre.provision("vessel-2")
    assert handshake(centre.centre_port, files(genuine), centre.ca / "ca.crt") == "TLSV1_ALERT_UNKNOWN_CA"
    write_positions(config, positions(20))
    capture_logs(caplog)
    node = run_node(config)
    wait_for(lambda: node.uplink.stats["refused"] >= 3, 10, "reconnection attempts")
    assert node.uplink.stats["connects"] == 0
    assert centre.db.count("position") == 0 and backlog(config) == 20
    # Logged once per outage (with OpenSSL's reason when the alert was read before the socket closed).
    assert caplog.text.count("event=uplink_refused host=127.0.0.1") == 1


def test_revoked_certificate_is_refused_from_the_reload_on(centre: Centre, run_node, caplog) -> None:
    config = centre.provision("vessel-1")
    other = centre.provision("vessel-2")
    assert handshake(centre.broker.port, files(config), centre.ca / "ca.crt") == "accepted"
    # The technician's credential kept what it signed; back at the centre, the IOC registers it.
    assert cli(center_cli, ["ca", "import", str(centre.signer / "issued"), "--ca", str(centre.ca)]) == (
        "imported 2 certificate(s)\n"
    )
    output = cli(center_cli, ["ca", "revoke", "vessel-1", "--ca", str(centre.ca)])
    serial = NodeIdentity(config.uplink.tls).certificate().serial_number
    assert output.splitlines()[0] == f"revoked vessel-1: serial {serial:x}"
    centre.broker.reload()
    wait_until_revoked_at_the_broker(centre, config)
    assert handshake(centre.broker.port, files(other), centre.ca / "ca.crt") == "accepted"
    write_positions(config, positions(20))
    capture_logs(caplog)
    node = run_node(config)
    wait_for(lambda: node.uplink.stats["refused"] >= 3, 10, "reconnection attempts")
    assert node.uplink.stats["connects"] == 0
    assert centre.db.count("position") == 0 and backlog(config) == 20
    assert caplog.text.count("event=uplink_refused host=127.0.0.1") == 1
    # Provisioning again with a new key and certificate brings the node back (after the IOC's consent:
    # here, the technician's credential still signs).
    node.stop()
    again = ["provision", "--config", str(centre.tmp / "vessel-1" / "edge.toml"), "--rotate"]
    cli(edge_cli, [*again, "--signer", str(centre.signer)])
    assert handshake(centre.broker.port, files(config), centre.ca / "ca.crt") == "accepted"


def test_device_a_cannot_publish_under_b_nor_read_b_acks(centre: Centre) -> None:
    a, b = centre.provision("vessel-a"), centre.provision("vessel-b")
    client_a = Client(centre.broker.port, files(a), "vessel-a")
    client_b = Client(centre.broker.port, files(b), "vessel-b")
    try:
        refused = client_a.publish(
            up_topic("ioc/v1", "vessel-b", "position"), encode_batch(batch("vessel-b"))
        )
        assert refused == 135  # 0x87: not authorized
        # Nor may A subscribe to B's acks (the broker's rules for devices: tests/test_broker_acl.py).
        assert client_a.subscribe(ack_topic("ioc/v1", "vessel-b")) == 135
        client_b.subscribe(ack_topic("ioc/v1", "vessel-b"))
        own = up_topic("ioc/v1", "vessel-b", "position")
        assert client_b.publish(own, encode_batch(batch("vessel-b", start=100))) == 0
        wait_for(lambda: client_b.received == [ack_topic("ioc/v1", "vessel-b")], 10, "B's ack")
        assert (
            client_a.publish(up_topic("ioc/v1", "vessel-a", "position"), encode_batch(batch("vessel-a"))) == 0
        )
        wait_for(lambda: centre.db.count("position") == 10, 10, "A's and B's own batches")
    finally:
        client_a.close()
        client_b.close()
    assert client_a.received == []
    assert [r["seq"] for r in centre.db.dump("position", "vessel-b")] == [101, 102, 103, 104, 105]
    assert centre.db.rejects() == {}  # the broker dropped A's batch for B: the receiver never saw it


def test_payload_naming_another_device_than_its_topic_is_refused_over_tls(centre: Centre) -> None:
    a = centre.provision("vessel-a")
    client = Client(centre.broker.port, files(a), "vessel-a")
    try:
        assert (
            client.publish(up_topic("ioc/v1", "vessel-a", "position"), encode_batch(batch("vessel-b"))) == 0
        )
        wait_for(lambda: centre.db.rejects() == {"device_mismatch": 1}, 10, "the receiver's verdict")
    finally:
        client.close()
    assert centre.db.count("position") == 0


def test_a_device_cannot_take_over_another_devices_session(centre: Centre) -> None:
    a = centre.provision("vessel-a")
    # Connecting as client id "vessel-b" with A's certificate: the broker makes the id A's own.
    client = Client(centre.broker.port, files(a), "vessel-b")
    try:
        assert (
            client.publish(up_topic("ioc/v1", "vessel-b", "position"), encode_batch(batch("vessel-b"))) == 135
        )
    finally:
        client.close()
    assert "as vessel-a" in centre.broker.log_path.read_text()
