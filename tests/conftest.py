"""Shared fixtures: the shared data directory and a pseudo-terminal pair."""

from __future__ import annotations

import os
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from ioc.broker import PrivateBroker
from ioc.db import Database

HERE = Path(__file__).resolve().parent


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
    with PrivateBroker(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def ioc_db(tmp_path: Path) -> Iterator[Database]:
    """The IOC's database in a fresh SQLite file."""
    db = Database(f"sqlite:///{tmp_path / 'ioc.db'}")
    yield db
    db.close()
