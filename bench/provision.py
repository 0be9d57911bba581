"""Field provisioning: a fresh device with the package installed to provisioned, self-tested and online.

The centre is made first, in a fresh temporary directory, as an IOC would (not timed as the
technician's): ``ioc-center ca init``, ``ca issue-signer``, ``broker-config``, a real mosquitto on
that mutual-TLS configuration and ``ioc-center run --tls`` as the receiver, both of which refuse
devices the enrolment register does not hold. Then, as the technician, each step a process of its own with
the prompts answered through stdin by a script:

- ``ioc-edge provision`` (device id, site, broker host and port typed on stdin; the signer and
  a template with a GPS on a pseudo-terminal given as options); the operator then enrols the
  certificate the credential's ``issued/`` holds (``ioc-center device enrol``) and writes the
  broker's device rules (``ioc-center broker devices``), timed with the centre's steps in
  centre_setup_s; the broker and the receiver start then (the broker reads its rules as it starts);
- ``ioc-edge selftest`` (the GPS sends live RMC/GGA sentences on the pty: a fix, and GPS time
  that agrees with the system clock; the broker check gets the IOC's ack over mutual TLS);
- ``ioc-edge run`` until the IOC holds its first record from the node ("online"): the signed
  commissioning record, which must arrive with the verdict ``valid``.

Figures, one a line: provision_s, selftest_s, online_s, total_s (target < 60 s), and the baseline:
starting the interpreter and importing the package (``python -c "import edge.cli"``, the least any
``ioc-edge`` command costs), timed in the same run; total_vs_baseline is total_s over three of them
(the floor of the three commands). Every process started is stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

import pynmea2
from _common import figure

from ioc.broker import PrivateBroker, free_port
from ioc.db import Database

DEVICE = "vessel-042"
DEADLINE_S = 60.0
"""How long each step may take before the bench gives up on it."""


class LiveGps:
    """A GPS receiver with a fix on a pseudo-terminal: RMC then GGA of the current UTC time, 5 per second."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sentences(self) -> bytes:
        now = dt.datetime.now(dt.UTC)
        tod, date = now.strftime("%H%M%S.%f")[:9], now.strftime("%d%m%y")
        rmc = pynmea2.RMC(
            "GP", "RMC", (tod, "A", "1630.0000", "N", "10736.0000", "E", "5.0", "45.0", date, "", "")
        )
        gga = pynmea2.GGA(
            "GP",
            "GGA",
            (tod, "1630.0000", "N", "10736.0000", "E", "1", "09", "0.9", "3.0", "M", "0.0", "M", "", ""),
        )
        return f"{rmc.render()}\r\n{gga.render()}\r\n".encode()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            # Nobody reads between the self-test and the node: a receiver talks on regardless.
            with contextlib.suppress(BlockingIOError):
                os.write(self.master, self.sentences())

    def __enter__(self) -> LiveGps:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self.slave)


def command(*args: str) -> list[str]:
    """``ioc-edge ARGS`` / ``ioc-center ARGS`` as this interpreter runs them (``python -m edge|ioc``)."""
    return [sys.executable, "-m", *args]


def timed(args: list[str], stdin: str = "") -> tuple[float, str]:
    """Run a command to its end; its seconds and output; exits with its output when it fails."""
    start = time.perf_counter()
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=DEADLINE_S)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[2:4])} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return took, done.stdout + done.stderr


def baseline_s(runs: int = 3) -> float:
    """The least of ``runs`` interpreter starts importing the CLI: what any command costs at least."""
    return min(timed([sys.executable, "-c", "import edge.cli"])[0] for _ in range(runs))


def wait_until(condition, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {what}")
        time.sleep(0.02)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def template(path: Path, gps: str) -> Path:
    path.write_text(
        "[store]\nflush_interval_s = 0.2\n\n[metrics]\nenabled = false\n\n"
        f'[drivers.gps]\ntype = "nmea"\ntransport = {{ type = "pty", path = "{gps}" }}\n'
    )
    return path


def main() -> None:
    base = baseline_s()
    with tempfile.TemporaryDirectory(prefix="bench-provision-") as tmp_name, LiveGps() as gps:
        tmp = Path(tmp_name)
        ca, signer, tls = tmp / "ca", tmp / "usb" / "signer-alice", tmp / "broker-tls"
        port, centre_port = free_port(), free_port()
        centre_s = sum(
            timed(command("ioc", *args))[0]
            for args in (
                ["ca", "init", str(ca), "--org", "Hue IOC"],
                ["ca", "issue-signer", "alice", "--ca", str(ca), "--out", str(signer)],
                ["broker-config", str(tls), "--ca", str(ca), "--host", "127.0.0.1", "--bind", "127.0.0.1",
                 "--port", str(port), "--centre-port", str(centre_port)],
            )
        )  # fmt: skip
        db_url = f"sqlite:///{tmp / 'ioc.db'}"
        db = Database(db_url)  # migrated before the receiver starts: the bench reads it
        config = tmp / "etc" / "edge.toml"
        provision_s, _ = timed(
            command("edge", "provision", "--config", str(config), "--signer", str(signer),
                    "--template", str(template(tmp / "river.toml", gps.path)),
                    "--state-dir", str(tmp / "var")),
            stdin=f"{DEVICE}\nThuan An\n127.0.0.1\n{port}\n",
        )  # fmt: skip
        # The operator's steps: what the credential signed enters the register (and the CA), then the
        # broker's rules (it reads them as it starts: here, it starts after them).
        centre_s += sum(
            timed(command("ioc", *args))[0]
            for args in (
                ["device", "enrol", str(signer / "issued"), "--ca", str(ca), "--db", db_url],
                ["broker", "devices", str(tls), "--db", db_url],
            )
        )
        with PrivateBroker(tmp / "broker", port, listeners=tls / "ioc.conf"):
            receiver = subprocess.Popen(
                command("ioc", "run", "--tls", str(tls), "--mqtt-port", str(centre_port), "--db", db_url,
                        "--crl", str(ca / "devices-crl.pem"), "--metrics-port", "0"),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            node = None
            try:
                time.sleep(1.0)  # the receiver subscribes (not the technician's time)
                selftest_s, report = timed(command("edge", "selftest", "--seconds", "10", str(config)))
                started = time.perf_counter()
                node = subprocess.Popen(
                    command("edge", "run", str(config)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                verdict = "SELECT c.verdict FROM rec_commissioning r JOIN commissioning_checks c ON "
                verdict += "c.device = r.device AND c.epoch = r.epoch AND c.seq = r.seq WHERE r.device = ?"
                wait_until(lambda: db.fetch(verdict, [DEVICE]), "the node's first record at the IOC", node)
                online_s = time.perf_counter() - started
            finally:
                for proc in (node, receiver):
                    if proc is not None:
                        stop(proc)
            verdicts = [row["verdict"] for row in db.fetch(verdict, [DEVICE])]
            db.close()
    print(report.rstrip().splitlines()[-1], file=sys.stderr)
    if verdicts != ["valid"]:
        sys.exit(f"the commissioning record arrived with verdict {verdicts}, not valid")
    total = provision_s + selftest_s + online_s
    figure("centre_setup_s", centre_s, "s")
    figure("provision_s", provision_s, "s")
    figure("selftest_s", selftest_s, "s")
    figure("online_s", online_s, "s")
    figure("total_s", total, "s")
    figure("baseline_python_import_s", base, "s")
    figure("total_vs_baseline", total / (3 * base), "x")
    figure("target_total_s", DEADLINE_S, "s")


if __name__ == "__main__":
    main()
