"""``pip install ioc-edge`` without the ``ioc`` extra (a device): ``ioc-center`` as such an install runs it.

Each test runs the ``ioc-center`` entry point in a process whose interpreter refuses to import the
modules that only the extra brings (its distributions and what they need beyond the base install), the
way a missing package does: a ``sitecustomize`` on ``PYTHONPATH`` puts a refusing finder first.
"""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import sys
import time
import urllib.request
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from helpers import free_port
from packaging.requirements import Requirement

from ioc.broker import PrivateBroker

ROOT = Path(__file__).resolve().parent.parent
IOC_CENTER = Path(sys.executable).with_name("ioc-center")
INSTALL_HINT = "which comes with the ioc extra: pip install 'ioc-edge[ioc]'"

REFUSING_SITECUSTOMIZE = """\
import sys
from importlib.abc import MetaPathFinder

REFUSED = {refused!r}


class Refuse(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Refuse())
"""


def _requirements(section: str, key: str) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return [line for line in parser[section][key].splitlines() if line and not line.startswith("#")]


def _closure(requirements: list[str]) -> set[str]:
    """The installed distributions ``requirements`` bring, with what they require in turn (no extras)."""
    found: set[str] = set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in found or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        found.add(name)
        todo += [Requirement(text) for text in metadata.requires(name) or []]
        todo += [Requirement(f"{name}-binary")] if requirement.extras == {"binary"} else []
    return found


@cache
def extra_only_modules() -> frozenset[str]:
    """The top-level modules a device lacks: those of the ioc extra's closure minus the base install's."""
    lacking = _closure(_requirements("options.extras_require", "ioc")) - _closure(
        _requirements("options", "install_requires")
    )
    return frozenset(
        module
        for module, dists in metadata.packages_distributions().items()
        if {dist.lower().replace("_", "-") for dist in dists} & lacking
    )


@pytest.fixture
def device_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a process that cannot import the extra's modules, running this checkout."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        REFUSING_SITECUSTOMIZE.format(refused=sorted(extra_only_modules()))
    )
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def ioc_center(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IOC_CENTER), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_the_device_lacks_the_web_stack_and_the_centre_lists_its_modules(device_env: dict[str, str]) -> None:
    from ioc.cli import IOC_EXTRA

    assert {"fastapi", "starlette", "uvicorn", "argon2", "psycopg"} <= extra_only_modules()
    assert {"click", "pydantic", "paho", "cryptography"}.isdisjoint(extra_only_modules())
    # ioc.cli names the extra's direct modules; what they import in turn is reached only through them.
    direct = {"fastapi", "uvicorn", "argon2", "psycopg"}
    assert direct <= set(IOC_EXTRA) <= extra_only_modules()
    refused = subprocess.run(
        [sys.executable, "-c", "import fastapi"], env=device_env, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("ModuleNotFoundError: No module named 'fastapi'")


WORK_ON_A_DEVICE = [
    (["--help"], "Usage: ioc-center [OPTIONS] COMMAND [ARGS]..."),
    (["user", "add", "--help"], "Usage: ioc-center user add [OPTIONS] NAME"),
    (["serve", "--help"], "Usage: ioc-center serve [OPTIONS]"),
    (["dump", "position"], ""),
    (["rejects"], ""),
    (["device", "list"], ""),
    (["node", "list"], ""),
    (["audit", "list", "--csv"], "id,ts_ms,time_local,user,action,target,command_seq,result,details"),
    (["ca", "init", "ca", "--org", "Hue IOC"], "CA created in ca; next: ioc-center ca issue-signer NAME"),
    (["track", "verify", "--help"], "Usage: ioc-center track verify [OPTIONS] FILE"),
]
"""Commands and the start of what they print: nothing of the web stack is needed."""


@pytest.mark.parametrize(
    ("args", "stdout_starts"), WORK_ON_A_DEVICE, ids=[" ".join(a) for a, _ in WORK_ON_A_DEVICE]
)
def test_commands_without_the_web_stack_work_on_a_device(
    args: list[str], stdout_starts: str, device_env: dict[str, str], tmp_path: Path
) -> None:
    done = ioc_center(args, device_env, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(stdout_starts)


PSYCOPG = "postgresql://ioc@127.0.0.1/ioc needs psycopg: pip install 'ioc-edge[ioc]' (or psycopg[binary])"
NEED_THE_EXTRA = [
    (["user", "add", "lan", "--role", "operator"], f"ioc-center user needs argon2, {INSTALL_HINT}"),
    (["user", "list"], f"ioc-center user needs argon2, {INSTALL_HINT}"),
    (["token", "list"], f"ioc-center token needs argon2, {INSTALL_HINT}"),
    (["serve", "--http-port", "0"], f"ioc-center serve needs uvicorn, {INSTALL_HINT}"),
    (["run", "--http-port", "0", "--metrics-port", "0"], f"ioc-center run needs uvicorn, {INSTALL_HINT}"),
    (["dump", "position", "--db", "postgresql://ioc@127.0.0.1/ioc"], PSYCOPG),  # ioc/db.py says it itself
]
"""Commands and the one line each says instead of a traceback."""


@pytest.mark.parametrize(
    ("args", "message"), NEED_THE_EXTRA, ids=[" ".join(a[:2]) for a, _ in NEED_THE_EXTRA]
)
def test_commands_that_need_the_extra_say_which_in_one_line(
    args: list[str], message: str, device_env: dict[str, str], tmp_path: Path
) -> None:
    done = ioc_center(args, device_env, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", message + "\n")


def _metric(url: str, line_start: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            text = response.read().decode()
    except OSError:
        return None
    return next((line for line in text.splitlines() if line.startswith(line_start)), None)


def test_run_without_http_port_receives_on_a_device(
    broker: PrivateBroker, device_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(IOC_CENTER), "run", "--mqtt-port", str(broker.port), "--metrics-port", str(port)],
        env=device_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        subscribed = None
        while subscribed != "ioc_center_subscribed 1.0" and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            subscribed = _metric(f"http://127.0.0.1:{port}/metrics", "ioc_center_subscribed ")
            time.sleep(0.1)
        assert subscribed == "ioc_center_subscribed 1.0"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert (process.returncode, out, err) == (0, "", "")
