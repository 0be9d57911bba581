"""Commands at the centre (ioc.commands) on both engines: the queue's numbering and rules, the lease, and
the dispatcher against a real mosquitto: signed for the device's epoch, sent again with backoff until the
node answers or the command expires, and sent by one dispatcher at a time, also when the one sending dies."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from helpers import cli, now_ms, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from support_ioc import EPOCH, PREFIX, Node, position_batch

from ioc.broker import PrivateBroker
from ioc.cli import main
from ioc.commands import CommandError, CommandQueue, Dispatcher, Lease, retry_delay_ms
from ioc.db import Database
from ioc.receiver import Receiver
from provisioning import pki
from provisioning.commands import CommandSigner, CommandVerifier, issue_command_signer
from sync.commands import Command, SignedCommand, decode_command
from sync.records import CommandResult, TimeSource
from sync.wire import Ack, Batch, encode_batch, up_topic

T0 = 1_700_000_000_000
OTHER_EPOCH = "00000000000000ff"
FAST = {"tick_s": 0.05, "retry_min_s": 0.2, "retry_max_s": 0.8, "lease_s": 1.5}
"""Dispatcher times for tests: retries after 0.2, 0.4, 0.8, 0.8 ... s; a lease lapses 1.5 s after renewal."""


@dataclass(frozen=True)
class Signer:
    """A CA and a command signer it issued: its files and the loaded signer."""

    ca: x509.Certificate
    key: Path
    cert: Path
    signer: CommandSigner


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    directory = tmp_path_factory.mktemp("command-signer")
    ca_key = pki.new_key()
    ca = pki.make_root(ca_key, "Hue IOC")
    key, cert = issue_command_signer(ca_key, ca, "centre")
    pki.write_private_key(directory / "centre.key", key)
    pki.write_public(directory / "centre.crt", pki.certificate_pem(cert))
    loaded = CommandSigner.load(directory / "centre.key", directory / "centre.crt")
    return Signer(ca, directory / "centre.key", directory / "centre.crt", loaded)


class Listener:
    """A test client reading every command topic: each copy that arrives, decoded, with its arrival time."""

    def __init__(self, broker: PrivateBroker) -> None:
        self._lock = threading.Lock()
        self._copies: list[tuple[float, str, SignedCommand]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="test-listener", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{PREFIX}/+/cmd", qos=1)
        wait_for(subscribed.is_set, what="the command topics' subscription")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self._copies.append((time.monotonic(), message.topic, decode_command(message.payload)))

    def copies(
        self, device: str | None = None, seq: int | None = None
    ) -> list[tuple[float, str, SignedCommand]]:
        with self._lock:
            return [
                c
                for c in self._copies
                if device in (None, c[2].command.device) and seq in (None, c[2].command.seq)
            ]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listener(broker: PrivateBroker) -> Iterator[Listener]:
    made = Listener(broker)
    yield made
    made.close()


@pytest.fixture
def dispatching(
    ioc_db: Database, broker: PrivateBroker, signer: Signer
) -> Iterator[Callable[..., Dispatcher]]:
    """Start a dispatcher over ``ioc_db`` on ``broker`` (test times unless told); stopped at the end."""
    started: list[Dispatcher] = []

    def start(**times: float) -> Dispatcher:
        d = Dispatcher(
            ioc_db,
            signer.signer,
            broker.host,
            broker.port,
            client_id=f"test-dispatcher-{len(started)}",
            **{**FAST, **times},
        )
        d.start()
        started.append(d)
        wait_for(d.connected.is_set, what="the dispatcher's connection")
        return d

    yield start
    for d in started:
        d.stop()


def heard(db: Database, device: str, epoch: str = EPOCH) -> None:
    """The centre stores a batch of ``device`` from ``epoch``: from then on it is that device's latest."""
    db.store(position_batch(device, 1, 1, epoch=epoch))


def answer(node: Node, device: str, seq: int, state: str) -> None:
    """``device`` sends its result for command ``seq`` on the uplink (record 1), as a node does."""
    record = CommandResult(now_ms(), int(TimeSource.NTP), now_ms(), seq, state, "", "{}")
    node.send(Batch(device, EPOCH, "command_result", [1], [record]))


def paced(copies: list[tuple[float, str, SignedCommand]], slack_s: float = 0.15) -> bool:
    """Whether each copy came no sooner after the first than the retry delays add up to (``FAST``), less
    ``slack_s`` for the broker's delivery: a copy sent twice at once, or without backoff, comes sooner.
    Delays from one copy to the next alone would not do: one copy delivered late makes the next gap short.
    """
    due = 0.0
    for n, (arrived, _, _) in enumerate(copies[1:]):
        due += retry_delay_ms(n, 200, 800) / 1000
        if arrived - copies[0][0] < due - slack_s:
            return False
    return True


# -- the queue -------------------------------------------------------------------------------------


def test_each_devices_commands_are_numbered_from_one_and_kept_as_issued(ioc_db):
    queue = CommandQueue(ioc_db)
    seqs = [queue.issue(device, "ping", {"n": i}, "lan", 60, T0 + i) for i, device in enumerate("aabab")]
    assert seqs == [1, 2, 1, 3, 2]
    c = queue.get("a", 3)
    assert c is not None
    assert (c.kind, c.body, c.issuer, c.issued_ms) == ("ping", {"n": 3}, "lan", T0 + 3)
    assert c.expires_ms == T0 + 60_003
    assert (c.state, c.reason, c.details, c.epoch, c.sent_count, c.last_sent_ms) == (
        "queued",
        "",
        "",
        None,
        0,
        None,
    )
    assert [(c.device, c.seq) for c in queue.list()] == [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]
    assert [c.seq for c in queue.list("b")] == [1, 2]


@pytest.mark.parametrize(
    ("device", "kind", "body", "ttl_s", "message"),
    [
        ("Vessel-042", "ping", {}, 60, "device: 'Vessel-042' does not match ^[a-z0-9][a-z0-9_-]{0,63}$"),
        ("vessel-042", "Ping", {}, 60, "kind: 'Ping' does not match ^[a-z][a-z0-9_.-]{0,31}$"),
        ("vessel-042", "ping", {}, 0, "ttl: 0 s is not 1..2592000 s"),
        ("vessel-042", "ping", {"x": "y" * 70_000}, 60, "body: 70008 bytes of JSON, more than 65536"),
    ],
)
def test_a_command_that_could_not_be_sent_is_refused_naming_what(ioc_db, device, kind, body, ttl_s, message):
    with pytest.raises(CommandError) as refused:
        CommandQueue(ioc_db).issue(device, kind, body, "lan", ttl_s, T0)
    assert str(refused.value) == message
    assert CommandQueue(ioc_db).list() == []


def test_writers_at_once_each_get_a_seq_of_their_own(ioc_db):
    writers, each = 4, 10
    seqs: list[int] = []

    def write() -> None:
        db = Database(ioc_db.url)  # a connection of its own, as another process would have
        try:
            seqs.extend(CommandQueue(db).issue("vessel-042", "ping", {}, "lan", 60, T0) for _ in range(each))
        finally:
            db.close()

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, writers * each + 1))


def test_results_move_a_command_on_and_a_final_one_stands(ioc_db):
    queue = CommandQueue(ioc_db)
    seq = queue.issue("vessel-042", "ping", {}, "lan", 60, T0)
    assert queue.due(T0, 10) == []  # never heard: no epoch to sign for
    heard(ioc_db, "vessel-042")
    assert [(d.command.seq, d.epoch) for d in queue.due(T0, 10)] == [(seq, EPOCH)]
    assert queue.sent("vessel-042", seq, T0, T0 + 2000, EPOCH)
    assert queue.due(T0 + 1999, 10) == []
    assert [d.command.sent_count for d in queue.due(T0 + 2000, 10)] == [1]

    def result(state: str, epoch: str = EPOCH, reason: str = "") -> bool:
        return queue.result("vessel-042", epoch, seq, state, reason, '{"v": 1}', T0 + 5)

    assert not result("applied", epoch=OTHER_EPOCH)  # not the epoch it was signed for
    assert not result("executed")  # not a result's state
    assert result("delivered")
    assert queue.due(T0 + 60_000, 10) == []  # answered: not sent again
    assert not result("delivered")
    assert result("applied")
    assert not result("refused", reason="failed")
    assert not result("delivered")
    c = queue.get("vessel-042", seq)
    assert c is not None
    assert (c.state, c.reason, c.details, c.result_ms) == ("applied", "", '{"v": 1}', T0 + 5)


def test_the_receiver_stores_a_nodes_answers_then_moves_its_command_on(ioc_db):
    queue = CommandQueue(ioc_db)
    heard(ioc_db, "vessel-042")
    seq = queue.issue("vessel-042", "status", {}, "lan", 60, T0)
    queue.sent("vessel-042", seq, T0, T0 + 2000, EPOCH)
    details = json.dumps({"status": "x" * 20_000})  # a node's whole status: more than a name's 1 KiB
    stamp = (now_ms(), int(TimeSource.NTP), now_ms())
    answers = [
        CommandResult(*stamp, seq, "delivered", "", ""),
        CommandResult(*stamp, seq, "applied", "", details),
    ]
    payload = encode_batch(Batch("vessel-042", EPOCH, "command_result", [1, 2], answers))
    ack = Receiver(ioc_db, "127.0.0.1", 1).handle(up_topic(PREFIX, "vessel-042", "command_result"), payload)
    assert ack == Ack(EPOCH, "command_result", 1, 2)
    assert ioc_db.count("command_result") == 2
    c = queue.get("vessel-042", seq)
    assert c is not None and (c.state, c.details) == ("applied", details)


def test_commands_unanswered_at_their_expiry_expire_and_a_late_final_result_still_counts(ioc_db):
    queue = CommandQueue(ioc_db)
    heard(ioc_db, "vessel-042")
    for _ in range(3):
        queue.issue("vessel-042", "ping", {}, "lan", 10, T0)
    queue.sent("vessel-042", 2, T0, T0 + 2000, EPOCH)
    queue.sent("vessel-042", 3, T0, T0 + 2000, EPOCH)
    queue.result("vessel-042", EPOCH, 3, "delivered", "", "{}", T0 + 1)
    assert queue.expire(T0 + 9_999) == 0
    assert queue.expire(T0 + 10_000) == 3
    assert [(c.state, c.reason) for c in queue.list()] == [
        ("expired", "not_sent"),
        ("expired", "no_answer"),
        ("expired", "no_result"),
    ]
    assert queue.due(T0 + 10_000, 10) == []
    assert queue.result("vessel-042", EPOCH, 3, "refused", "failed", '{"message": "x"}', T0 + 11_000)
    assert [c.state for c in queue.list()] == ["expired", "expired", "refused"]


def test_commands_are_signed_for_the_devices_latest_epoch(ioc_db):
    queue = CommandQueue(ioc_db)
    seq = queue.issue("vessel-042", "ping", {}, "lan", 60, T0)
    heard(ioc_db, "vessel-042")
    queue.sent("vessel-042", seq, T0, T0, EPOCH)
    time.sleep(0.002)  # first seen a moment later: the re-flashed node's
    heard(ioc_db, "vessel-042", OTHER_EPOCH)
    assert [d.epoch for d in queue.due(T0, 10)] == [OTHER_EPOCH]
    queue.sent("vessel-042", seq, T0, T0 + 2000, OTHER_EPOCH)
    assert not queue.result("vessel-042", EPOCH, seq, "applied", "", "{}", T0)  # the old store's answer
    assert queue.result("vessel-042", OTHER_EPOCH, seq, "applied", "", "{}", T0)


def test_one_holder_at_a_time_until_its_lease_lapses_or_is_released(ioc_db):
    a, b = Lease(ioc_db, "dispatcher", "a", 3000), Lease(ioc_db, "dispatcher", "b", 3000)
    assert a.hold(T0) and not b.hold(T0)
    assert a.held(T0 + 1999) and not a.held(T0 + 2000)  # the last third is the margin
    assert a.hold(T0 + 1000)  # renewed: until T0 + 4000
    assert not b.hold(T0 + 3999)
    assert b.hold(T0 + 5500)  # a stopped renewing: b takes it once it lapsed
    assert not a.hold(T0 + 5600) and not a.held(T0 + 5600)
    b.release()
    assert a.hold(T0 + 6700)


# -- the dispatcher --------------------------------------------------------------------------------


def test_the_dispatcher_sends_signed_commands_with_backoff_until_the_node_answers(
    ioc_db, broker, receiver, listener, dispatching, signer
):
    node = Node(broker, client_id="test-node")
    queue = CommandQueue(ioc_db)
    heard(ioc_db, "vessel-042")
    seq = queue.issue("vessel-042", "ping", {"n": 1}, "lan", 60, now_ms())
    d = dispatching()
    wait_for(lambda: len(listener.copies()) >= 4, what="four copies")
    answer(node, "vessel-042", seq, "delivered")
    wait_for(lambda: queue.get("vessel-042", seq).state == "delivered", what="the node's answer")
    sent = len(listener.copies())
    time.sleep(1.0)  # longer than the longest retry delay
    node.close()
    copies = listener.copies()
    assert len(copies) == sent == d.stats["published"] == queue.get("vessel-042", seq).sent_count
    assert {topic for _, topic, _ in copies} == {f"{PREFIX}/vessel-042/cmd"}
    issued = queue.get("vessel-042", seq)
    expected = Command("vessel-042", EPOCH, seq, "ping", {"n": 1}, "lan", issued.issued_ms, issued.expires_ms)
    verifier = CommandVerifier(signer.ca, "vessel-042")
    assert all(verifier.verify(signed, now_ms()) == expected for _, _, signed in copies)
    assert paced(copies), [t - copies[0][0] for t, _, _ in copies]  # 0, 0.2, 0.6, 1.4, 2.2 ... s
    assert copies[3][0] - copies[0][0] < 1.4 + 0.5  # and not much later


def test_a_command_unanswered_expires_and_is_sent_no_more(ioc_db, listener, dispatching):
    queue = CommandQueue(ioc_db)
    heard(ioc_db, "vessel-042")
    seq = queue.issue("vessel-042", "ping", {}, "lan", 1, now_ms())
    d = dispatching()
    wait_for(lambda: queue.get("vessel-042", seq).state == "expired", what="the expiry")
    sent = len(listener.copies())
    time.sleep(0.5)
    assert 2 <= sent == len(listener.copies()) == d.stats["published"]
    assert (queue.get("vessel-042", seq).reason, d.stats["expired"]) == ("no_answer", 1)


def test_a_warning_without_the_centres_warning_signer_is_refused_at_the_centre_never_sent(
    ioc_db, listener, dispatching
):
    queue = CommandQueue(ioc_db)
    heard(ioc_db, "vessel-042")
    warning = queue.issue("vessel-042", "warning", {"identifier": "storm-9"}, "lan", 60, now_ms())
    ping = queue.issue("vessel-042", "ping", {}, "lan", 60, now_ms())
    d = dispatching()
    wait_for(lambda: listener.copies("vessel-042", ping), what="the ping, signed by the command signer")
    refused = queue.get("vessel-042", warning)
    assert (refused.state, refused.reason, d.stats["no_signer"]) == ("refused", "no_signer", 1)
    assert json.loads(refused.details) == {
        "message": "this centre has no warning signer: run with --warning-key/--warning-cert"
    }
    assert listener.copies("vessel-042", warning) == []


def test_a_device_never_heard_gets_its_command_once_it_is(ioc_db, listener, dispatching):
    queue = CommandQueue(ioc_db)
    seq = queue.issue("vessel-043", "ping", {}, "lan", 60, now_ms())
    dispatching()
    time.sleep(0.3)
    assert listener.copies() == [] and queue.get("vessel-043", seq).state == "queued"
    heard(ioc_db, "vessel-043")
    wait_for(lambda: listener.copies("vessel-043", seq), what="the command")
    assert listener.copies()[0][2].command.epoch == EPOCH


def test_of_two_dispatchers_only_the_lease_holder_sends_and_the_other_takes_over_when_it_stops(
    ioc_db, listener, dispatching
):
    queue = CommandQueue(ioc_db)
    heard(ioc_db, "vessel-042")
    first = dispatching()
    wait_for(lambda: first.lease.held(now_ms()), what="the first dispatcher's lease")
    second = dispatching()
    seqs = [queue.issue("vessel-042", "ping", {}, "lan", 60, now_ms()) for _ in range(3)]
    wait_for(lambda: all(len(listener.copies(seq=s)) >= 2 for s in seqs), what="two copies of each")
    assert second.stats["published"] == 0
    first.stop()  # its lease released: the second takes it at its next try
    wait_for(lambda: second.stats["published"] >= 3, what="the second dispatcher's sends")
    # Every copy published arrives (a stopped dispatcher's last copies may be in flight a moment).
    wait_for(
        lambda: len(listener.copies()) == first.stats["published"] + second.stats["published"],
        what="every copy published",
    )
    assert all(paced(listener.copies(seq=seq)) for seq in seqs)  # never two copies at once


def test_when_the_sending_process_is_killed_another_dispatcher_takes_over_after_its_lease(
    ioc_db, broker, listener, dispatching, signer
):
    queue = CommandQueue(ioc_db)
    heard(ioc_db, "vessel-042")
    seq = queue.issue("vessel-042", "ping", {}, "lan", 60, now_ms())
    # ioc-center run's own dispatcher: default retries (2 s, 4 s ...), a lease of 1.5 s.
    args = [
        "--mqtt-port",
        str(broker.port),
        "--db",
        ioc_db.url,
        "--metrics-port",
        "0",
        "--client-id",
        "killed",
    ]
    args += ["--command-key", str(signer.key), "--command-cert", str(signer.cert), "--command-lease-s", "1.5"]
    proc = subprocess.Popen([sys.executable, "-m", "ioc", "run", *args], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: queue.get("vessel-042", seq).sent_count == 1, timeout=20, what="the first send")
        other = dispatching(retry_min_s=2.0, retry_max_s=60.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = time.monotonic()
        assert other.stats["published"] == 0
        wait_for(lambda: len(listener.copies()) == 2, what="the second send, by the other dispatcher")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    first, second = listener.copies()
    assert other.stats["published"] == 1
    assert second[0] - first[0] > 1.6 and second[0] > killed_at  # the retry's time, kept by the database
    assert queue.get("vessel-042", seq).sent_count == 2


# -- the command line ------------------------------------------------------------------------------


def test_command_send_prints_the_seq_and_command_list_shows_it(ioc_db):
    url = ioc_db.url
    assert cli(main, ["command", "send", "--db", url, "--device", "vessel-042", "--kind", "ping"]) == "1\n"
    body = ["--body", '{"seconds": 600}', "--issuer", "lan", "--ttl", "120"]
    assert (
        cli(main, ["command", "send", "--db", url, "--device", "vessel-042", "--kind", "link.pin", *body])
        == "2\n"
    )
    lines = cli(main, ["command", "list", "--db", url, "--device", "vessel-042"]).splitlines()
    assert [line.split("\t")[:4] for line in lines] == [
        ["vessel-042", "1", "ping", "queued"],
        ["vessel-042", "2", "link.pin", "queued"],
    ]
    assert " by lan" in lines[1] and "sent 0x" in lines[1]
    [listed] = [
        c for c in cli(main, ["command", "list", "--db", url, "--json"]).splitlines() if '"seq": 2' in c
    ]
    assert '"body": {"seconds": 600}' in listed and '"issuer": "lan"' in listed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--body", "[1]"], """--body must be a JSON object, e.g. '{"seconds": 600}'"""),
        (["--body", "{"], "--body is not JSON: Expecting property name enclosed in double quotes"),
        (["--body", '{"x": NaN}'], "body: not JSON that can be signed"),
    ],
)
def test_command_send_refuses_a_body_that_is_no_json_object(ioc_db, args, message):
    from click.testing import CliRunner

    result = CliRunner().invoke(
        main, ["command", "send", "--db", ioc_db.url, "--device", "d", "--kind", "k", *args]
    )
    assert result.exit_code == 1
    assert result.output.startswith(message)
