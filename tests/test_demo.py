"""``ioc-center demo``: the whole path on one machine, run as a newcomer runs it (a subprocess)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ioc.demo import format_position
from sync.records import Position

POSITION_LINE = re.compile(r"^\s*\d+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (gps|ntp|free) ")


def demo_command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ioc", "demo", "--workdir", str(workdir), *args]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the running processes that contain ``text`` (the demo's work directory)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended while we looked
        if text in line:
            found.append(line)
    return found


def test_demo_shows_every_position_of_the_capture_and_a_summary(shared_dir: Path, tmp_path: Path) -> None:
    capture = shared_dir / "nmea" / "ais-nmea.log"
    decoded = subprocess.run(
        [sys.executable, "-m", "edge", "decode", "nmea", str(capture)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    expected = len(decoded.stdout.splitlines())
    assert expected > 100

    result = subprocess.run(
        demo_command(tmp_path / "demo", "--speed", "0", "--exit-when-done"),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "IOC_EDGE_SHARED": str(shared_dir)},
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    positions = [line for line in lines if POSITION_LINE.match(line)]
    assert len(positions) == expected
    assert [int(line.split()[0]) for line in positions] == list(range(1, expected + 1))
    assert re.search(rf"^  positions received: +{expected}$", result.stdout, re.M)
    assert re.search(r"^  rejected by the IOC: +none$", result.stdout, re.M)
    assert "demo: done: the replay is over and the node's backlog is 0" in lines
    assert processes_mentioning(str(tmp_path / "demo")) == []


def test_demo_stops_the_node_receiver_and_broker_on_sigterm(shared_dir: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.Popen(
        demo_command(workdir, "--speed", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IOC_EDGE_SHARED": str(shared_dir)},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while True:  # until the first position has made the whole trip
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            if POSITION_LINE.match(line):
                break
        assert len(processes_mentioning(str(workdir))) >= 2  # the node and mosquitto run

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert processes_mentioning(str(workdir)) == []
    assert "event=node_stopped" in (workdir / "node.log").read_text()


def test_demo_without_shared_data_names_ioc_edge_shared(tmp_path: Path) -> None:
    result = subprocess.run(
        demo_command(tmp_path / "demo", "--exit-when-done"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "IOC_EDGE_SHARED": str(tmp_path / "nowhere")},
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"shared data not found: {tmp_path / 'nowhere' / 'nmea' / 'ais-nmea.log'} does not exist; "
        "set IOC_EDGE_SHARED to the shared/ directory (the one holding nmea/), or pass --capture FILE\n"
    )
    assert not (tmp_path / "demo").exists()  # nothing was started


def test_format_position_shows_utc_time_source_and_missing_values() -> None:
    line = format_position(12, Position(1586295590250, 3, 0, -16.4637, 107.5909, None, 359.94), 7)

    assert line == "    12  2020-04-07T21:39:50.250Z free   -16.4637000  107.5909000        -  359.9       7"
