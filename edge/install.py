"""Putting the systemd units of ``systemd/`` in place on Debian or Raspberry Pi OS.

The units name ``/usr/local/bin/ioc-edge`` (or ``ioc-center``); the installer writes them with
the path of the command actually installed, writes the sysusers.d file that creates the
service's user, runs ``systemd-sysusers`` and enables the unit. With ``root`` other than ``/``
it prepares that tree instead (an SD card image being built, a test) and talks to no running
systemd.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common.errors import IocEdgeError

__all__ = ["InstallError", "InstallReport", "ServiceInstaller", "state_dir_problem", "units_dir"]

log = logging.getLogger(__name__)

SHIPPED_BIN = Path("/usr/local/bin")
"""Where the unit files as shipped expect the commands."""
HIDDEN = (Path("/home"), Path("/root"), Path("/run/user"))
"""What ProtectHome=yes hides from the service."""


class InstallError(IocEdgeError, OSError):
    """The units cannot be installed; the message says why and what to do."""


def units_dir() -> Path:
    """The ``systemd/`` folder: beside the package in a checkout, else under ``sys.prefix/share``."""
    for candidate in (
        Path(__file__).resolve().parents[1] / "systemd",
        Path(sys.prefix) / "share" / "ioc-edge" / "systemd",
    ):
        if candidate.is_dir():
            return candidate
    raise InstallError("the unit files (systemd/) are not installed with this package: reinstall ioc-edge")


SERVICE_STATE_DIR = Path("/var/lib/ioc-edge")
"""The node's StateDirectory=: the one place ioc-edge.service may write."""


def state_dir_problem(config_path: Path) -> str | None:
    """What keeps the node's config at ``config_path`` from running as the service, or None."""
    from edge.config import ConfigError, load_config

    if not config_path.exists():
        return f"{config_path} does not exist yet: write it (ioc-edge provision) before starting the node"
    try:
        state_dir = load_config(config_path).node.state_dir
    except ConfigError as exc:
        return f"{config_path} is not valid (ioc-edge config check {config_path}):\n{exc}"
    if state_dir != SERVICE_STATE_DIR:
        return (
            f"node.state_dir is {state_dir} in {config_path}: the service may write only "
            f'{SERVICE_STATE_DIR}; set state_dir = "{SERVICE_STATE_DIR}" (the default)'
        )
    return None


@dataclass(frozen=True)
class InstallReport:
    """What :meth:`ServiceInstaller.install` wrote and ran."""

    written: list[Path]
    ran: list[str]


class ServiceInstaller:
    """Installs ``units`` (file names in :func:`units_dir`) and ``name``'s sysusers.d file under ``root``.

    ``command`` is the console script the units run (``ioc-edge``); it must lie outside what
    ProtectHome=yes hides. Raises :class:`InstallError` with what to do.

    Example::

        report = ServiceInstaller("ioc-edge", ["ioc-edge.service"]).install(enable=True, start=False)
        report.ran   # ['systemd-sysusers /etc/sysusers.d/ioc-edge.conf', 'systemctl daemon-reload', ...]
    """

    def __init__(
        self, name: str, units: list[str], root: Path = Path("/"), command: Path | None = None
    ) -> None:
        self.name, self.units, self.root = name, units, root
        self.command = command or Path(sys.executable).parent / name

    def _check_command(self) -> None:
        for hidden in HIDDEN:
            if self.command.is_relative_to(hidden):
                raise InstallError(
                    f"{self.command} is under {hidden}, which the service cannot see (ProtectHome=yes): "
                    "install into /opt, e.g. python3 -m venv /opt/ioc-edge; /opt/ioc-edge/bin/pip install ..."
                )
        if not self.command.exists():
            raise InstallError(f"{self.command} not found: install ioc-edge into a venv under /opt first")

    def _under_root(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def install(self, enable: bool = True, start: bool = False) -> InstallReport:
        """Write the units and the sysusers.d file, create the user, enable (and start) the units."""
        self._check_command()
        source = units_dir()
        written = []
        for unit in self.units:
            text = (source / unit).read_text()
            text = text.replace(f"{SHIPPED_BIN}/{self.name} ", f"{self.command} ")
            written.append(self._write(f"/etc/systemd/system/{unit}", text))
        sysusers = self._write(
            f"/etc/sysusers.d/{self.name}.conf", (source / f"{self.name}.sysusers.conf").read_text()
        )
        written.append(sysusers)
        live = self.root == Path("/")
        rooted = [] if live else [f"--root={self.root}"]
        commands = [["systemd-sysusers", *rooted, str(sysusers)]]
        if live:
            commands.append(["systemctl", "daemon-reload"])
        enabling = [u for u in self.units if not u.endswith("@.service")]  # templates: per instance
        if enable and enabling:
            commands.append(
                ["systemctl", *rooted, "enable", *(["--now"] if start and live else []), *enabling]
            )
        return InstallReport(written, [self._run(c) for c in commands])

    def _write(self, path: str, text: str) -> Path:
        target = self._under_root(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(0o644)
        except OSError as exc:
            raise InstallError(f"cannot write {target}: {exc.strerror or exc} (run as root)") from None
        log.info("event=installed path=%s", target)
        return target

    def _run(self, command: list[str]) -> str:
        line = " ".join(command)
        if shutil.which(command[0]) is None:
            raise InstallError(f"{command[0]} not found: this needs systemd (apt-get install systemd)")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise InstallError(f"{line} failed (exit {done.returncode}): {done.stderr.strip()}")
        return line
