"""A private mosquitto on a loopback port, for the demo and the tests.

Example::

    with PrivateBroker(workdir) as broker:
        print(broker.port)
        broker.stop()      # a broker restart, as a node sees it
        broker.start()     # same port, no persistence: everything it held is gone
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from common.errors import IocEdgeError


class BrokerError(IocEdgeError, RuntimeError):
    """mosquitto is missing or would not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerError("mosquitto is not installed: `apt-get install mosquitto` (./dev setup does it)")


DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
"""mosquitto's dynamic-security plugin: it checks subscriptions, which its ``acl_file`` does not."""


def find_dynsec_plugin() -> Path:
    """The dynamic-security plugin shipped with mosquitto (Debian: ``/usr/lib/<arch>/``)."""
    for pattern in (
        f"/usr/lib/*/{DYNSEC_PLUGIN}",
        f"/usr/lib/{DYNSEC_PLUGIN}",
        f"/usr/local/lib/{DYNSEC_PLUGIN}",
    ):
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[0]
    raise BrokerError(
        f"{DYNSEC_PLUGIN} not found under /usr/lib: mosquitto 2.0 ships it (Debian: package mosquitto)"
    )


class PrivateBroker:
    """mosquitto listening on ``127.0.0.1:port`` only, without persistence, logging into ``workdir``.

    With ``listeners`` (a file from ``ioc-center broker-config``), the broker runs those listeners
    instead of its plain one, as this user (a root mosquitto would read its keys as ``mosquitto``);
    ``port`` is then the listener it waits for. ``reload()`` is the SIGHUP of ``systemctl reload``.
    """

    def __init__(self, workdir: str | Path, port: int | None = None, listeners: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.log_path = self.workdir / "mosquitto.log"
        self.listeners = listeners
        self._proc: subprocess.Popen | None = None

    def _config(self) -> str:
        common = (
            "persistence false\n"
            "max_queued_messages 100000\n"
            "max_inflight_messages 100\n"
            # As the centre's broker config does (ioc.mosquitto_conf): small messages without delay.
            "set_tcp_nodelay true\n"
            f"log_dest file {self.log_path}\n"
        )
        if self.listeners is None:
            return f"listener {self.port} {self.host}\nallow_anonymous true\n" + common
        return f"user {getpass.getuser()}\n" + common + self.listeners.read_text()

    def start(self, timeout: float = 10.0) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self._config())
        self._proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own session: a Ctrl-C in the terminal must not kill the broker before the nodes stop.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                _, stderr = self._proc.communicate()
                raise BrokerError(f"mosquitto exited at start: {stderr.decode()[-500:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout} s")

    def stop(self) -> None:
        """Kill the broker (SIGKILL: a crash, not a clean shutdown)."""
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def reload(self) -> None:
        """Make mosquitto read its configuration, ACLs and CRLs again (SIGHUP)."""
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
