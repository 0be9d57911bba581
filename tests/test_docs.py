"""The examples in the docstrings are documentation: pytest runs them as it collects the packages
(``--doctest-modules`` over every package, see pyproject.toml), so none is left out by a hand-kept list.

The fast lane, ``./dev test -m "not integration"``, leaves out exactly the tests that start a service;
tests/conftest.py marks them by the fixtures they use.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _packages() -> set[str]:
    """The top-level packages setup.cfg ships."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    return {name for name in setup["options.packages.find"]["include"].split() if "." not in name}


def _pytest_options() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]


def test_every_package_is_a_test_path_so_its_examples_run():
    options = _pytest_options()
    assert "--doctest-modules" in options["addopts"].split()
    missing = sorted(_packages() - set(options["testpaths"]))
    assert missing == [], f"pyproject.toml: add {missing} to testpaths, or their examples never run"


def test_the_doctests_compare_with_an_ellipsis():
    assert _pytest_options()["doctest_optionflags"] == ["ELLIPSIS"]


def test_a_test_of_plain_code_is_in_the_fast_lane(request: pytest.FixtureRequest):
    assert request.node.get_closest_marker("integration") is None


def test_a_test_that_starts_mosquitto_is_integration(request: pytest.FixtureRequest, broker):
    assert request.node.get_closest_marker("integration") is not None


def test_only_the_postgresql_variant_of_the_database_is_integration(request: pytest.FixtureRequest, ioc_db):
    marked = request.node.get_closest_marker("integration") is not None
    assert marked == (ioc_db.dialect.name == "postgresql")
