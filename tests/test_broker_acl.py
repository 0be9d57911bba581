"""What a device may do at the broker, against a real mosquitto running the generated configuration:
subscribe only to its own ack and command topics (never the receivers' shared group, never another's
commands; writing commands is the centre's alone), nothing when it is not
enrolled, no packet above the wire format's limit; and a revoked device's connection and session
ended by ``ioc-center broker disconnect``."""

from __future__ import annotations

import json

from helpers import cli, wait_for
from support_mtls import Centre, Client, files, handshake, wait_until_revoked_at_the_broker

from ioc.cli import main as center_cli
from provisioning.tls import TlsFiles
from sync.commands import command_topic
from sync.records import Position
from sync.wire import MAX_PAYLOAD_BYTES, Batch, ack_topic, encode_batch, up_topic

REFUSED = 135  # 0x87 not authorized
PREFIX = "ioc/v1"


def batch(device: str, start: int) -> bytes:
    t = 1_764_000_000_000 + start * 1000
    records = [Position(t + i, 1, t + i, 16.46, 107.59, 5.0, 45.0) for i in range(5)]
    return encode_batch(
        Batch(device, "0123456789abcdef", "position", list(range(start + 1, start + 6)), records)
    )


def subscribe_all(client: Client, topics: list[str]) -> list[int]:
    """The SUBACK's reason code of each filter, subscribed in one SUBSCRIBE."""
    client.client.subscribe([(t, 1) for t in topics])
    wait_for(lambda: len(client.suback) == len(topics), 10, "the SUBACK")
    return [rc.value for rc in client.suback]


def test_a_device_subscribes_to_its_own_acks_only(centre: Centre) -> None:
    a = centre.provision("vessel-a")
    centre.provision("vessel-b")
    client = Client(centre.broker.port, files(a), "vessel-a")
    try:
        foreign = [
            f"$share/ioc-center/{PREFIX}/+/up/+",  # the receivers' group
            f"$share/x/{PREFIX}/vessel-a/ack",  # its own acks, but as a group
            f"{PREFIX}/#",
            f"{PREFIX}/vessel-b/ack",
            f"{PREFIX}/+/ack",
            f"{PREFIX}/vessel-b/cmd",  # another node's commands
            f"{PREFIX}/+/cmd",
            f"$share/x/{PREFIX}/vessel-a/cmd",
            "#",
            "$CONTROL/dynamic-security/#",
        ]
        own = [ack_topic(PREFIX, "vessel-a"), command_topic(PREFIX, "vessel-a")]
        assert subscribe_all(client, [*foreign, *own]) == [REFUSED] * 10 + [1, 1]
        # Only the centre writes commands, its own included.
        assert client.publish(command_topic(PREFIX, "vessel-a"), b"{}") == REFUSED
        # Nor can it administer the plugin that holds these rules.
        rules = (centre.tls / "devices.json").read_bytes()
        command = {"commands": [{"command": "createRole", "rolename": "all"}]}
        assert client.publish("$CONTROL/dynamic-security/v1", json.dumps(command).encode()) == REFUSED
        # Its own uplink still works, acked on its own topic.
        assert client.publish(up_topic(PREFIX, "vessel-a", "position"), batch("vessel-a", 0)) == 0
        wait_for(lambda: client.received == [ack_topic(PREFIX, "vessel-a")], 10, "its ack")
    finally:
        client.close()
    assert (centre.tls / "devices.json").read_bytes() == rules
    assert "2 device(s)" in centre.outputs[-1]  # ioc-center broker devices, from the register


def test_no_device_takes_the_receivers_batches_connected_or_through_a_kept_session(centre: Centre) -> None:
    a, b, c = centre.provision("vessel-a"), centre.provision("vessel-b"), centre.provision("vessel-c")
    group = f"$share/ioc-center/{PREFIX}/+/up/+"
    # C asks to join the receivers' group in a session the broker keeps for an hour, then goes away.
    kept = Client(centre.broker.port, files(c), "vessel-c", session_expiry=3600)
    asked = [kept.subscribe(group)]
    kept.close()
    attacker = Client(centre.broker.port, files(a), "vessel-a")
    victim = Client(centre.broker.port, files(b), "vessel-b")
    try:
        asked.append(attacker.subscribe(group))
        victim.subscribe(ack_topic(PREFIX, "vessel-b"))
        for n in range(10):
            assert victim.publish(up_topic(PREFIX, "vessel-b", "position"), batch("vessel-b", 5 * n)) == 0
        # Every batch acked at once: none went to a device that dropped it (the node would resend after
        # its ack timeout, 3 s here).
        wait_for(lambda: len(victim.received) == 10, 2, "an ack for each of B's 10 batches")
    finally:
        attacker.close()
        victim.close()
    assert centre.db.count("position") == 50 and attacker.received == []
    assert asked == [REFUSED, REFUSED]


def test_a_certificate_named_like_a_receiver_cannot_take_its_session(centre: Centre) -> None:
    # A stolen signer mints any name; client ids are the broker's across listeners, and on the devices
    # listener the id is the certificate's name: "ioc-test" is the test receiver's --client-id.
    thief = centre.provision("ioc-test", enrol=False)
    victim = Client(centre.broker.port, files(centre.provision("vessel-b")), "vessel-b")
    attacker = Client(centre.broker.port, files(thief), "ioc-test")
    try:
        victim.subscribe(ack_topic(PREFIX, "vessel-b"))
        for n in range(5):
            assert victim.publish(up_topic(PREFIX, "vessel-b", "position"), batch("vessel-b", 5 * n)) == 0
        wait_for(lambda: len(victim.received) == 5, 2, "an ack for each of B's 5 batches")
        # Had it taken the receiver's session, the receiver would have taken it back within a second.
        assert attacker.client.is_connected()
    finally:
        attacker.close()
        victim.close()
    assert centre.db.count("position") == 25


def test_a_device_not_enrolled_may_connect_and_do_nothing(centre: Centre) -> None:
    stranger = centre.provision("vessel-x", enrol=False)  # certified by a signer, unknown to the register
    client = Client(centre.broker.port, files(stranger), "vessel-x")
    try:
        assert client.subscribe(ack_topic(PREFIX, "vessel-x")) == REFUSED
        assert client.publish(up_topic(PREFIX, "vessel-x", "position"), batch("vessel-x", 0)) == REFUSED
    finally:
        client.close()
    assert centre.db.rejects() == {}  # the broker refused it: the receiver never saw it


def test_a_packet_above_the_wire_limit_stops_at_the_broker(centre: Centre) -> None:
    a = centre.provision("vessel-a")
    topic = up_topic(PREFIX, "vessel-a", "position")
    client = Client(centre.broker.port, files(a), "vessel-a")
    try:
        # The largest payload the receiver reads gets through (and the receiver judges it).
        assert client.publish(topic, b"\x01" * MAX_PAYLOAD_BYTES) == 0
        wait_for(lambda: centre.db.rejects() == {"bad_compression": 1}, 10, "the receiver's verdict")
        # A packet over the broker's limit (MAX_PACKET_BYTES: 64 KiB more) is not read: it closes the
        # connection.
        client.client.publish(topic, b"\x01" * (MAX_PAYLOAD_BYTES + 128 * 1024), qos=1)
        verdict = "Client vessel-a disconnected due to oversize packet."
        wait_for(lambda: verdict in centre.broker.log_path.read_text(), 10, "the broker's verdict")
    finally:
        client.close()
    client = Client(centre.broker.port, files(a), "vessel-a")
    try:
        assert client.publish(topic, batch("vessel-a", 0)) == 0
        wait_for(lambda: centre.db.count("position") == 5, 10, "a batch of a normal size")
    finally:
        client.close()
    assert centre.db.rejects() == {"bad_compression": 1}  # the receiver never saw the large one


def test_revoked_device_is_disconnected_and_its_session_deleted(centre: Centre) -> None:
    config = centre.provision("vessel-1")
    device = Client(centre.broker.port, files(config), "vessel-1", session_expiry=3600)
    topic = up_topic(PREFIX, "vessel-1", "position")
    try:
        device.subscribe(ack_topic(PREFIX, "vessel-1"))
        # The operator's steps (docs/security.md): the register and the CRL, a reload, the disconnect.
        cli(center_cli, ["device", "revoke", "vessel-1", "--ca", str(centre.ca), "--db", centre.db.url])
        centre.broker.reload()
        wait_until_revoked_at_the_broker(centre, config)
        # The connection open before the revocation still publishes (that is what disconnect ends); the
        # receivers refuse what it sends, as the register says.
        assert device.publish(topic, batch("vessel-1", 0)) == 0
        wait_for(lambda: centre.db.rejects() == {"revoked": 1}, 10, "the receiver to refuse it")
        args = [
            "broker",
            "disconnect",
            "vessel-1",
            "--tls",
            str(centre.tls),
            "--mqtt-port",
            str(centre.centre_port),
        ]
        assert (
            cli(center_cli, args)
            == "disconnected vessel-1: its connection ended and its session is deleted\n"
        )
        wait_for(lambda: not device.client.is_connected(), 10, "the device's connection to end")
    finally:
        device.close()
    # The session (its subscription, acks queued for it) is gone: a client of that id finds none.
    probe = Client(centre.centre_port, TlsFiles.receiver(centre.tls), "vessel-1", session_expiry=1)
    probe.close()
    assert probe.session_present is False
    assert (
        handshake(centre.broker.port, files(config), centre.ca / "ca.crt")
        == "SSLV3_ALERT_CERTIFICATE_REVOKED"
    )
