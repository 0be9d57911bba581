"""Issue 15, point 9: ten receivers share the group, each with its dispatcher; the one that holds the lease
dies, another takes over, and no command is ever sent by two dispatchers at once. Counted at the broker: a
test client reads every command topic, so the node's idempotency cannot hide a copy sent twice."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from helpers import now_ms, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from support_ioc import PREFIX, position_batch

from ioc.broker import PrivateBroker
from ioc.commands import CommandQueue, Dispatcher
from ioc.db import Database
from ioc.receiver import Receiver
from provisioning import pki
from provisioning.commands import CommandSigner, issue_command_signer
from sync.commands import decode_command

RECEIVERS = 10
RETRY_S = 0.5
"""Every copy of a command is sent again after this (the backoff's floor and ceiling): a copy sent by two
dispatchers at once is two copies within a tick of each other (0.05 s), far closer than this."""
DEVICES = [f"vessel-{n:03d}" for n in range(4)]


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> CommandSigner:
    directory = tmp_path_factory.mktemp("command-signer")
    ca_key = pki.new_key()
    key, cert = issue_command_signer(ca_key, pki.make_root(ca_key, "Hue IOC"), "centre")
    pki.write_private_key(directory / "centre.key", key)
    pki.write_public(directory / "centre.crt", pki.certificate_pem(cert))
    return CommandSigner.load(directory / "centre.key", directory / "centre.crt")


class Copies:
    """Every command published on the broker, as (device, seq) -> the times its copies arrived."""

    def __init__(self, broker: PrivateBroker) -> None:
        self._lock = threading.Lock()
        self.arrived: dict[tuple[str, int], list[float]] = defaultdict(list)
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-copies", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{PREFIX}/+/cmd", qos=1)
        wait_for(subscribed.is_set, what="the command topics' subscription")

    def _on_message(self, client, userdata, message) -> None:
        command = decode_command(message.payload).command
        with self._lock:
            self.arrived[(command.device, command.seq)].append(time.monotonic())

    def count(self) -> int:
        with self._lock:
            return sum(map(len, self.arrived.values()))

    def since(self, t: float) -> dict[tuple[str, int], int]:
        """How many copies of each command arrived after ``t`` (``time.monotonic``)."""
        with self._lock:
            return {key: sum(1 for a in times if a > t) for key, times in self.arrived.items()}

    def closest(self) -> float:
        """The shortest time between two copies of one command."""
        with self._lock:
            return min(
                b - a for times in self.arrived.values() for a, b in zip(times, times[1:], strict=False)
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def centre(ioc_db: Database, broker: PrivateBroker, signer: CommandSigner) -> Iterator[list[Dispatcher]]:
    """Ten receivers of one group, as ten ``ioc-center run`` processes make them, each with its dispatcher
    (a lease of 1 s: another takes over 1 to 1.4 s after its holder dies)."""
    receivers = [Receiver(ioc_db, broker.host, broker.port, client_id=f"ioc-{n}") for n in range(RECEIVERS)]
    dispatchers = [
        Dispatcher(
            ioc_db,
            signer,
            broker.host,
            broker.port,
            client_id=f"ioc-{n}.commands",
            lease_s=1,
            retry_min_s=RETRY_S,
            retry_max_s=RETRY_S,
        )
        for n in range(RECEIVERS)
    ]
    for receiver, dispatcher in zip(receivers, dispatchers, strict=True):
        receiver.start()
        dispatcher.start()
    for receiver, dispatcher in zip(receivers, dispatchers, strict=True):
        assert receiver.subscribed.wait(10)
        wait_for(dispatcher.connected.is_set, what="each dispatcher's connection")
    yield dispatchers
    for receiver, dispatcher in zip(receivers, dispatchers, strict=True):
        dispatcher.stop()
        receiver.stop()


def die(dispatcher: Dispatcher) -> None:
    """Stop ``dispatcher`` as if its process were killed: its lease is left to lapse, not released."""
    dispatcher.lease.release = lambda: None  # type: ignore[method-assign]
    dispatcher.stop()


def sending(dispatchers: list[Dispatcher], since: float, copies: Copies) -> Dispatcher:
    """The one dispatcher that sends, once every command has had two copies after ``since``."""
    wait_for(
        lambda: (n := copies.since(since)) and len(n) == len(DEVICES) and min(n.values()) >= 2,
        10,
        "two copies of each command",
    )
    holders = [d for d in dispatchers if d.lease.held(now_ms())]
    assert len(holders) == 1, [d.lease.holder for d in holders]
    return holders[0]


def test_when_the_dispatching_receiver_dies_another_takes_over_and_no_copy_is_sent_twice(
    ioc_db, broker, centre
):
    copies = Copies(broker)
    queue = CommandQueue(ioc_db)
    for device in DEVICES:
        ioc_db.store(position_batch(device, 1, 1))  # heard: the epoch to sign for
        queue.issue(device, "ping", {}, "lan", 60, now_ms())
    first = sending(centre, 0, copies)
    die(first)
    died = time.monotonic()
    second = sending(centre, died, copies)
    die(second)
    died = time.monotonic()
    third = sending(centre, died, copies)
    for d in centre:
        d.stop()  # nothing sent from here on, and every send recorded
    assert len({first.lease.holder, second.lease.holder, third.lease.holder}) == 3
    assert sum(d.stats["published"] for d in centre if d not in (first, second, third)) == 0
    wait_for(lambda: copies.count() == sum(d.stats["published"] for d in centre), what="every copy published")
    sent = {(c.device, c.seq): c.sent_count for c in queue.list()}
    assert sent == {key: len(times) for key, times in copies.arrived.items()}
    assert copies.closest() > RETRY_S / 2, "two copies of a command at once"
    copies.close()
