"""The node's process caps glibc's malloc arenas (edge.malloc); checked in fresh interpreters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import edge.malloc
from edge.cli import main
from edge.malloc import limit_arenas

# Six threads alive at once, each allocating: glibc gives each an arena unless capped. malloc_stats()
# prints one "Arena N:" block per arena to stderr.
ARENAS = """
import ctypes, sys, threading
from edge.malloc import limit_arenas
print(limit_arenas({count}) if {count} else None)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
barrier = threading.Barrier(6)
def work():
    libc.malloc(1000)
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sys.stdout.flush()
libc.malloc_stats()
"""


def arenas(count: int, env: dict[str, str] | None = None) -> tuple[str, int]:
    result = subprocess.run(
        [sys.executable, "-c", ARENAS.format(count=count)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=30,
        check=True,
    )
    return result.stdout.strip(), sum(line.startswith("Arena ") for line in result.stderr.splitlines())


def test_threads_share_the_capped_arenas():
    assert arenas(2) == ("True", 2)
    assert arenas(1) == ("True", 1)


def test_without_a_cap_each_thread_has_its_own_arena():
    assert arenas(0) == ("None", 7)


def test_malloc_arena_max_in_the_environment_wins():
    assert arenas(2, {"MALLOC_ARENA_MAX": "3"}) == ("False", 3)


def test_count_below_one_is_refused():
    with pytest.raises(ValueError) as info:
        limit_arenas(0)
    assert str(info.value) == "count must be at least 1, not 0"


def test_run_caps_the_arenas_before_the_node_starts(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(edge.malloc, "limit_arenas", lambda: calls.append("capped"))
    result = CliRunner().invoke(main, ["run", str(tmp_path / "missing.toml")])
    assert calls == ["capped"]
    assert result.exit_code == 1
    assert f"{tmp_path / 'missing.toml'}: config file not found" in result.output
