"""The examples in the docstrings are documentation: they must run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "drivers.gpio",
    "drivers.gpiomock",
    "drivers.capture",
    "drivers.nmea",
    "drivers.particulate",
    "drivers.pms5003",
    "drivers.sds011",
    "drivers.transport",
    "common.backoff",
    "common.clock",
    "common.component",
    "common.fields",
    "edge.config",
    "edge.thinning",
    "inference.counting",
    "inference.motion",
    "inference.snapshot",
    "inference.tracker",
    "drivers.camera",
    "ioc.db",
    "ioc.demo_field",
    "ioc.web.aqi",
    "ioc.web.auth",
    "ioc.web.csvout",
    "ioc.web.lockout",
    "ioc.web.params",
    "ioc.web.queries",
    "ioc.web.settings",
    "provisioning.pki",
    "provisioning.tomlout",
    "sync.store",
    "sync.wire",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example to run"
    assert result.failed == 0
