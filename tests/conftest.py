"""Shared fixtures: the shared data, a pseudo-terminal pair, the broker, the IOC's database, receiver and
web server, the centre over mutual TLS, the browser and the dashboard.

Helpers live in helpers.py and the support_*.py modules (not collected); a test module imports from those
and from here, never from another test module.
"""

from __future__ import annotations

import os
import tty
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
from helpers import free_port
from support_ioc import Api

from edge.config import NodeConfig
from edge.runtime import Node
from ioc.broker import PrivateBroker
from ioc.db import Database
from ioc.postgres import PostgresError, PrivatePostgres, find_bindir
from ioc.receiver import Receiver
from provisioning.tls import TlsFiles

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from support_browser import Dashboard
    from support_mtls import Centre

    from ioc.web import WebServer, WebSettings

HERE = Path(__file__).resolve().parent

SERVICE_FIXTURES = frozenset(
    {
        "broker",  # mosquitto
        "postgres_server",  # PostgreSQL
        "browser",  # Chromium
        "centre",  # mosquitto over mutual TLS and the centre's CLI
        "run_node",  # an edge node's threads, store and uplink
        "web_server",  # uvicorn
        "web",
        "node_process",  # an `ioc-edge run` process (test_systemd)
        "serve_process",  # an `ioc-center serve` process (test_web_live)
    }
)
"""A test that uses one of these (directly or through another fixture) starts a real service."""

SERVICE_MODULES = frozenset({"test_demo.py", "test_provision_bench.py"})
"""Modules whose tests start their services themselves (``ioc-center demo``, ``bench/provision.py``)."""

SLOW_S = 5.0
"""A test that takes longer than this on its own is marked ``slow``."""

SLOW_TESTS = frozenset(
    {
        "tests/test_camera_gate.py::test_counts_per_line_group_and_direction_are_the_same_with_and_without_the_gate",
        # real ioc-edge run processes killed and started again; a trial run out (2 s) and a node rebuilt twice
        "tests/test_desired_config.py::test_a_node_killed_while_it_applies_a_config_runs_old_or_new_and_answers_which",
        "tests/test_desired_config.py::test_a_config_that_cannot_work_is_rolled_back_within_the_trial_and_the_node_is_reachable_again",
        "tests/test_geofence.py::test_48_hours_offline_replayed_fast_every_position_arrives_with_the_geofence_alarms_first",
        "tests/test_link.py::test_on_satellite_the_ioc_gets_the_thinned_track_and_held_streams_follow_on_a_cheap_link",
    }
)
"""The tests over ``SLOW_S`` (``--durations``); the end of a run names any that is missing here."""


def _integration(item: pytest.Item) -> bool:
    """True when ``item`` starts mosquitto, PostgreSQL, Chromium, a web server, a node or a process."""
    if item.path.name in SERVICE_MODULES or SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    # ioc_db_url asks for postgres_server at run time, so only the parameter tells.
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("ioc_db_url") == "postgresql"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` and ``slow`` tests, so ``-m "not integration"`` is the fast lane."""
    for item in items:
        if _integration(item):
            item.add_marker(pytest.mark.integration)
        if item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


_unmarked_slow: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note a test that took longer than ``SLOW_S`` but is not marked ``slow``."""
    if report.when == "call" and report.duration > SLOW_S and "slow" not in report.keywords:
        _unmarked_slow.append(f"{report.nodeid} ({report.duration:.1f} s)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the slow tests SLOW_TESTS lacks: the fast lane's promise depends on the marks."""
    if _unmarked_slow:
        terminalreporter.write_sep("=", f"over {SLOW_S:g} s but not in conftest.SLOW_TESTS")
        for line in _unmarked_slow:
            terminalreporter.write_line(line)


def _shared_dir() -> Path:
    return Path(os.environ.get("IOC_EDGE_SHARED", HERE.parent.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (or ``$IOC_EDGE_SHARED``); tests that need it skip when it is absent."""
    path = _shared_dir()
    if not (path / "nmea").is_dir():
        pytest.skip(f"shared data not found at {path}: set IOC_EDGE_SHARED to the shared/ directory")
    return path


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A pseudo-terminal: the master fd (a test writes the device's bytes there) and the slave's path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        os.close(master)
        os.close(slave)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A private mosquitto on a free loopback port; ``broker.stop()``/``start()`` restart it."""
    with PrivateBroker(tmp_path / "broker", free_port()) as b:
        yield b


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server for the whole session (each xdist worker's own); skips when PostgreSQL
    is not installed."""
    try:
        find_bindir()
    except PostgresError as exc:
        pytest.skip(f"no PostgreSQL for the postgresql variant: {exc}")
    with PrivatePostgres(port=free_port()) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def ioc_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty IOC database: a SQLite file, then a database of its own in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ioc.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"ioc_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def ioc_db(ioc_db_url: str) -> Iterator[Database]:
    """The IOC's database, fresh, once on SQLite and once on PostgreSQL."""
    db = Database(ioc_db_url)
    yield db
    db.close()


@pytest.fixture
def receiver(broker: PrivateBroker, ioc_db: Database) -> Iterator[Receiver]:
    """The IOC's receiver on ``broker``, subscribed before the test goes on."""
    r = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-test")
    r.start()
    assert r.subscribed.wait(10)
    yield r
    r.stop()


@pytest.fixture
def run_node() -> Iterator[Callable[..., Node]]:
    """Start edge nodes in the test's process; all are stopped at the end."""
    nodes: list[Node] = []

    def start(config: NodeConfig, **kwargs) -> Node:
        node = Node(config, **kwargs)
        node.start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture(scope="session")
def frames(shared_dir: Path) -> list[np.ndarray]:
    """Frames 0..215 of bikes.mp4, read in order (seeking in an mp4 is not always frame exact).

    Up to 215 for the bicycle and the pedestrian crossing the middle (frames 185..215).
    """
    capture = cv2.VideoCapture(str(shared_dir / "media" / "bikes.mp4"))
    out = []
    while len(out) < 216:
        ok, frame = capture.read()
        assert ok, f"bikes.mp4 ended after {len(out)} frames"
        out.append(frame)
    capture.release()
    return out


def _serve(db: Database, settings: WebSettings) -> Iterator[WebServer]:
    """The dashboard and its API over ``db`` with ``settings`` on a free loopback port, in a thread."""
    # Imported here: the web's dependencies (the ioc extra) are not needed by the edge's tests.
    from ioc.web import WebServer, create_app

    server = WebServer(create_app(db, settings), "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_server(ioc_db: Database) -> Iterator[WebServer]:
    """The dashboard and its API over ``ioc_db`` on a free loopback port (default settings), in a thread.

    ``web_server.url`` is ``http://127.0.0.1:PORT``; add users with ``ioc.web.auth.Users(ioc_db)``.
    """
    from ioc.web import WebSettings

    yield from _serve(ioc_db, WebSettings())


@pytest.fixture
def users(web_server: WebServer, ioc_db: Database) -> Iterator[tuple[Api, Api]]:
    """The API of ``web_server`` as the operator ``lan`` and as the viewer ``an`` (API tokens)."""
    from ioc.web.auth import Tokens, Users

    Users(ioc_db).add("lan", "operator", "correct horse battery")
    Users(ioc_db).add("an", "viewer", "correct horse battery")
    operator = Api(web_server.url, Tokens(ioc_db).create("lan", "tests")[1])
    viewer = Api(web_server.url, Tokens(ioc_db).create("an", "tests")[1])
    yield operator, viewer
    operator.close()
    viewer.close()


@pytest.fixture
def web_settings() -> WebSettings:
    """Thresholds for the water level sensor ``river``; a test may parametrize other settings."""
    from ioc.web import WebSettings
    from ioc.web.settings import WaterLevelThreshold

    return WebSettings(water_level_thresholds={"river": WaterLevelThreshold(warn=3.0, alarm=3.5)})


@pytest.fixture
def web(ioc_db: Database, web_settings: WebSettings) -> Iterator[WebServer]:
    """The web server over ``ioc_db`` with ``web_settings`` (the dashboard's; ``web_server`` has defaults)."""
    yield from _serve(ioc_db, web_settings)


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium: the browser tests never download one."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session (each xdist worker's own), whichever modules use it
    (Playwright's sync API runs once per thread); each test opens its own contexts (cookie jars)."""
    from playwright.sync_api import sync_playwright  # only for the browser tests

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def dashboard(browser: Browser, web: WebServer, ioc_db: Database) -> Iterator[Dashboard]:
    """The dashboard in ``browser`` with an operator ``lan`` and a viewer ``an`` (password
    ``support_browser.PASSWORD``); a page's JavaScript error or 5xx answer fails the test at the end.

    A module using it is marked ``pytestmark = support_browser.needs_chromium``.
    """
    from support_browser import PASSWORD, Dashboard  # Playwright: only for the browser tests

    from ioc.web.auth import Users

    Users(ioc_db).add("lan", "operator", PASSWORD)
    Users(ioc_db).add("an", "viewer", PASSWORD)
    d = Dashboard(browser, web.url, ioc_db.dialect.name)
    yield d
    d.close()
    assert d.errors == []


def make_identity(directory: Path, device: str = "vessel-042", site: str = "Thuan An") -> TlsFiles:
    """A CA in ``directory/ca``, a signer, and ``device``'s key and certificate chain in ``directory/node``.

    The same steps as ``ioc-center ca init``, ``ca issue-signer`` and ``ioc-edge provision``.
    """
    from ioc.ca import CertificateAuthority
    from provisioning.credential import SigningCredential
    from provisioning.identity import NodeIdentity

    ca_dir = directory / "ca"
    ca = CertificateAuthority(ca_dir) if ca_dir.exists() else CertificateAuthority.create(ca_dir, "Hue IOC")
    signer = directory / "signers" / device
    ca.issue_signer(device, out=signer)
    node = directory / "node" / device
    files = TlsFiles(ca=node / "ca.pem", cert=node / "node.pem", key=node / "node.key")
    NodeIdentity(files).renew(device, site, SigningCredential.load(signer))
    return files


@pytest.fixture
def identity(tmp_path: Path) -> TlsFiles:
    """A provisioned vessel-042 (see :func:`make_identity`); the CA is in ``tmp_path/ca``."""
    return make_identity(tmp_path)


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[Centre]:
    """:func:`support_mtls.open_centre` over a SQLite database: the CLI's CA, a signer alice, mosquitto
    on the generated config (the broker's side is what these tests are about)."""
    from support_mtls import open_centre  # the IOC's CLI: the ioc extra

    db = Database(f"sqlite:///{tmp_path / 'ioc.db'}")
    with open_centre(tmp_path, db) as made:
        yield made
    db.close()
