"""Commands, centre -> node -> centre: the round trip and a command to 100 nodes, over mutual TLS on loopback.

A private mosquitto with mutual TLS against a fresh device CA (no ACL), the centre's receiver and
dispatcher (``ioc.receiver.Receiver``, ``ioc.commands.Dispatcher``, as ``ioc-center run`` makes them)
on a SQLite database, and real nodes (``edge.runtime.Node`` with ``[uplink.tls]`` and ``[commands]``,
no drivers): the whole path, queue -> dispatcher (signs) -> broker -> the node's uplink -> inbox
(verifies, records, runs) -> the node's store -> uplink -> receiver -> the result stored.

- Round trip: ``--commands`` pings to one node, one at a time, each timed from ``CommandQueue.issue``
  to its ``applied`` result in the centre's database (polled every 2 ms): ``round_trip_median_ms``,
  ``round_trip_p99_ms`` (targets < 300 ms and < 1 s). The node's ``delivered`` answer comes in the
  same batch as its ``applied`` one: a ping runs in well under the uplink's wait.
- Fan-out: ``--nodes`` nodes in ``--node-processes`` processes, each with its own device id, identity
  and store, each run as ``ioc-edge run`` runs it (``edge.reconfig.Supervisor``); one ping to each,
  issued at once (``fanout_all_applied_s``: until every result is stored), then a pushed config to each
  (kind ``config``: its own file with another status interval; validated, written, the node rebuilt,
  kept once healthy with an ack from the centre): ``fanout_config_all_applied_s`` (target < 10 s), and
  the median node's time from issue to result (``*_median_node_s``).
- Baseline, same broker and run: a bare paho QoS 1 publish over mutual TLS and a reply from another
  client subscribed to it (``raw_round_trip_median_ms``, ``raw_round_trip_p99_ms``).

What the round trip is made of: the dispatcher looks at the queue every ``--tick-s`` (by default
0.05 s, as in ``ioc-center run``; on average half of it waits: at the former 0.2 s, half the round
trip); the node commits two transactions (begun with ``delivered``, finished with ``applied``;
synchronous=FULL); its uplink looks at the store after each network wait of up to 50 ms (the
recorder's ``flush_interval_s`` does not apply: the inbox writes results itself); the receiver
commits the batch, then the result. Most of the rest is TCP on loopback: neither paho nor mosquitto
(by default) sets TCP_NODELAY, so a small publish written just after another packet waits for the
peer's delayed ACK (about 40 ms), as the raw baseline shows (two such waits per round trip).

Example: ``.venv/bin/python bench/commands.py --commands 200 --nodes 100``
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from _common import figure
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import load_config
from edge.reconfig import Supervisor, config_version
from edge.runtime import Node
from ioc.broker import PrivateBroker, free_port
from ioc.ca import CertificateAuthority
from ioc.commands import CommandQueue, Dispatcher
from ioc.db import Database, now_ms
from ioc.receiver import Receiver
from provisioning import pki
from provisioning.commands import CommandSigner
from provisioning.credential import SigningCredential
from provisioning.identity import NodeIdentity
from provisioning.tls import TlsFiles, client_context

FINAL = ("applied", "refused", "expired")


class Pki:
    """A fresh device CA in ``tmp/ca``, a technician's signer, the centre's command signer and the
    broker's server certificate; :meth:`identity` provisions a node as ``ioc-edge provision`` does."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ca = CertificateAuthority.create(tmp / "ca", "Bench IOC")
        self.credential = SigningCredential.load(self.ca.issue_signer("bench", out=tmp / "signer"))
        key, cert = self.ca.issue_command_signer("dispatcher", tmp)
        self.signer = CommandSigner.load(key, cert)
        issuer = self.ca.device_ca()
        server_key = pki.new_key()
        server_cert = pki.issue_leaf(
            issuer.cert, issuer.key, server_key.public_key(), "127.0.0.1", unit="broker", days=1,
            server_names=["127.0.0.1"],
        )  # fmt: skip
        pki.write_private_key(tmp / "server.key", server_key)
        pki.write_public(tmp / "server.crt", pki.certificate_pem(server_cert))

    def identity(self, device: str) -> TlsFiles:
        home = self.tmp / "nodes" / device
        files = TlsFiles(ca=home / "ca.pem", cert=home / "node.pem", key=home / "node.key")
        NodeIdentity(files).renew(device, "bench", self.credential)
        return files

    def listeners(self, port: int) -> Path:
        """mosquitto's listener: mutual TLS against the device CA, no ACL (any certificate of the CA)."""
        path = self.tmp / "listeners.conf"
        path.write_text(
            f"listener {port} 127.0.0.1\ncertfile {self.tmp / 'server.crt'}\n"
            f"keyfile {self.tmp / 'server.key'}\ncafile {self.ca.ca_cert_path}\n"
            "require_certificate true\nuse_identity_as_username true\n"
        )
        return path


def node_file(pki_: Pki, device: str, port: int) -> Path:
    """``device``'s edge.toml: its store, the uplink over mutual TLS, commands on, defaults but for the
    status interval (1 s: the centre learns a node's epoch from its first batch, needed to sign for it)."""
    tls = pki_.identity(device)
    home = tls.cert.parent
    path = home / "edge.toml"
    path.write_text(
        f'[node]\ndevice_id = "{device}"\nstate_dir = "{home / "state"}"\n\n'
        "[store]\nstatus_interval_s = 1\n\n"
        f"[uplink]\nport = {port}\nbackoff_min_s = 0.1\nbackoff_max_s = 1\n\n"
        f'[uplink.tls]\nca = "{tls.ca}"\ncert = "{tls.cert}"\nkey = "{tls.key}"\n\n'
        "[metrics]\nenabled = false\n"
    )
    return path


def run_nodes(
    files: list[Path], ready: multiprocessing.synchronize.Event, stop: multiprocessing.synchronize.Event
) -> None:
    """A process of nodes, each run as ``ioc-edge run`` runs it (a :class:`Supervisor`, in a thread of its
    own here: it rebuilds the node for a pushed config), until ``stop``."""
    supervisors = [Supervisor(f) for f in files]
    threads = [threading.Thread(target=s.run, daemon=True) for s in supervisors]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while any(s.node is None for s in supervisors) and time.monotonic() < deadline:
        time.sleep(0.05)
    ready.set()
    stop.wait()
    for supervisor in supervisors:
        supervisor.stop()
    for thread in threads:
        thread.join(60)


def wait(condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.002) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def round_trips(queue: CommandQueue, device: str, count: int) -> list[float]:
    """``count`` pings to ``device``, one at a time: ms from issue to the ``applied`` result stored."""
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        seq = queue.issue(device, "ping", {}, "bench", ttl_s=60, now_ms=now_ms())

        def answered(seq: int = seq) -> bool:
            command = queue.get(device, seq)
            return command is not None and command.state in FINAL

        wait(answered, 10, f"ping {seq}'s result")
        times.append((time.perf_counter() - t0) * 1000)
        command = queue.get(device, seq)
        assert command is not None and command.state == "applied", command
    return times


def raw_round_trips(port: int, tls: TlsFiles, count: int) -> list[float]:
    """A bare paho QoS 1 publish over mutual TLS, and the reply of another client: ms each, one at a time."""
    replied = threading.Event()

    def client(name: str) -> tuple[mqtt.Client, threading.Event]:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{name}", protocol=mqtt.MQTTv5)
        c.tls_set_context(client_context(tls, "bench"))
        subscribed = threading.Event()
        c.on_subscribe = lambda *args: subscribed.set()
        c.connect("127.0.0.1", port)
        c.loop_start()
        return c, subscribed

    centre, centre_subscribed = client("centre")
    node, node_subscribed = client("node")
    node.on_message = lambda c, u, m: c.publish("bench/raw/reply", m.payload, qos=1)
    centre.on_message = lambda c, u, m: replied.set()
    node.subscribe("bench/raw/cmd", qos=1)
    centre.subscribe("bench/raw/reply", qos=1)
    wait(
        lambda: node_subscribed.is_set() and centre_subscribed.is_set(), 10, "the raw clients' subscriptions"
    )
    times = []
    for _ in range(count):
        replied.clear()
        t0 = time.perf_counter()
        centre.publish("bench/raw/cmd", b"x" * 1500, qos=1)  # about a signed command's size
        replied.wait(10)
        times.append((time.perf_counter() - t0) * 1000)
    for c in (centre, node):
        c.disconnect()
        c.loop_stop()
    return times


def fanout(queue: CommandQueue, db: Database, bodies: dict[str, tuple[str, dict]]) -> tuple[float, float]:
    """A command to each device (``device -> (kind, body)``), issued at once; seconds until every
    result is stored, and the median node's; exits naming the first that was not applied."""
    t0 = time.perf_counter()
    seqs = {
        d: queue.issue(d, kind, body, "bench", ttl_s=300, now_ms=now_ms())
        for d, (kind, body) in bodies.items()
    }

    def final() -> list[dict]:
        rows = db.fetch(
            "SELECT device, seq, state, reason, details, issued_ms, result_ms FROM commands "
            "WHERE state IN ('applied', 'refused', 'expired')"
        )
        return [r for r in rows if seqs.get(r["device"]) == r["seq"]]

    wait(lambda: len(final()) == len(bodies), 120, "every node's result", poll_s=0.02)
    elapsed = time.perf_counter() - t0
    rows = final()
    for row in rows:
        if row["state"] != "applied":
            raise SystemExit(f"{row['device']}: {row['state']} {row['reason']} {row['details'][:300]}")
    return elapsed, statistics.median(r["result_ms"] - r["issued_ms"] for r in rows) / 1000


def pushed(path: Path) -> tuple[str, dict]:
    """A config command for the node of ``path``: its file with another status interval."""
    text = path.read_text().replace("status_interval_s = 1\n", "status_interval_s = 2\n")
    return "config", {"text": text, "version": config_version(text.encode())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=200, help="pings timed one at a time")
    parser.add_argument("--nodes", type=int, default=100, help="nodes of the fan-out")
    parser.add_argument("--node-processes", type=int, default=4, help="processes the fan-out's nodes run in")
    parser.add_argument(
        "--tick-s", type=float, default=None, help="the dispatcher's tick (default: ioc-center run's)"
    )
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        pki_ = Pki(tmp)
        port = free_port()
        with PrivateBroker(tmp / "broker", port, listeners=pki_.listeners(port)):
            centre_tls = pki_.identity("ioc-centre")
            db = Database(f"sqlite:///{tmp / 'ioc.db'}")
            receiver = Receiver(db, "127.0.0.1", port, client_id="bench-receiver", tls=centre_tls)
            tick = {} if args.tick_s is None else {"tick_s": args.tick_s}
            dispatcher = Dispatcher(db, pki_.signer, "127.0.0.1", port, tls=centre_tls, **tick)
            receiver.start()
            dispatcher.start()
            queue = CommandQueue(db)
            assert receiver.subscribed.wait(10)

            raw = raw_round_trips(port, centre_tls, args.commands)

            node = Node(load_config(node_file(pki_, "bench-one", port)))
            node.start()
            wait(
                lambda: bool(db.fetch("SELECT 1 FROM epochs WHERE device = 'bench-one'")),
                20,
                "the node's epoch",
            )
            queue.issue("bench-one", "ping", {}, "bench", ttl_s=60, now_ms=now_ms())  # warm-up, not timed
            wait(lambda: queue.list("bench-one")[-1].state == "applied", 20, "the warm-up ping")
            applied = round_trips(queue, "bench-one", args.commands)
            node.stop()

            devices = [f"bench-{i:03d}" for i in range(args.nodes)]
            files = [node_file(pki_, d, port) for d in devices]
            stop = spawn.Event()
            procs = []
            for k in range(args.node_processes):
                ready = spawn.Event()
                proc = spawn.Process(target=run_nodes, args=(files[k :: args.node_processes], ready, stop))
                proc.start()
                procs.append((proc, ready))
            try:
                for _, ready in procs:
                    ready.wait(120)

                def heard() -> bool:
                    return (
                        db.fetch("SELECT COUNT(DISTINCT device) AS n FROM epochs")[0]["n"] >= args.nodes + 1
                    )

                wait(heard, 60, "every node's epoch", poll_s=0.05)
                fanout_s = fanout(queue, db, {d: ("ping", {}) for d in devices})
                config_s = fanout(queue, db, {d: pushed(f) for d, f in zip(devices, files, strict=True)})
            finally:
                stop.set()
                for proc, _ in procs:
                    proc.join(60)
            dispatcher.stop()
            receiver.stop()
            db.close()

    figure("commands", args.commands)
    figure("dispatcher_tick_s", dispatcher.tick_s, "s")
    figure("round_trip_median_ms", statistics.median(applied), "ms")
    figure("round_trip_p99_ms", p99(applied), "ms")
    figure("round_trip_max_ms", max(applied), "ms")
    figure("raw_round_trip_median_ms", statistics.median(raw), "ms")
    figure("raw_round_trip_p99_ms", p99(raw), "ms")
    figure("ratio_vs_raw", statistics.median(raw) / statistics.median(applied))
    figure("fanout_nodes", args.nodes)
    figure("fanout_all_applied_s", fanout_s[0], "s")
    figure("fanout_median_node_s", fanout_s[1], "s")
    figure("fanout_config_all_applied_s", config_s[0], "s")
    figure("fanout_config_median_node_s", config_s[1], "s")


if __name__ == "__main__":
    main()
