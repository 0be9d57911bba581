"""``ioc-center demo``: the whole system on one machine, run as a newcomer runs it (a subprocess)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from helpers import nmea_sentence, wait_for

from ioc import commissioning
from ioc.db import Database
from ioc.demo_field import BERTH_NAME, river_level, shift_capture
from ioc.track import chain_status
from ioc.warnings import Warnings

PROGRESS = re.compile(r"^demo: \d\d:\d\d:\d\d  positions=(\d+) ")
DASHBOARD = re.compile(r"^demo: dashboard +(http://127\.0\.0\.1:\d+/)$")
LOGIN = re.compile(r"^demo: +sign in as operator / (\S+) \(or viewer / (\S+),")
STORM = re.compile(
    r"^demo: storm +warning (ioc-\S+-\d{14}-[0-9a-f]{6}) \(storm-demo\) issued over Vùng biển quanh hành "
    r"trình của tàu vessel-042 to vessel-042 \(vessel: decides on board\)$",
    re.M,
)


def demo_command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ioc", "demo", "--workdir", str(workdir), *args]


def _processes() -> dict[int, str]:
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended while we looked
        found[int(cmdline.parent.name)] = line
    return found


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the running processes that contain ``text`` (the demo's work directory)."""
    return [line for line in _processes().values() if text in line]


def pids_mentioning(text: str) -> list[int]:
    return [pid for pid, line in _processes().items() if text in line and pid != os.getpid()]


def test_demo_brings_up_three_nodes_and_every_kind_of_record_reaches_the_centre(
    shared_dir: Path, tmp_path: Path
) -> None:
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
    workdir = tmp_path / "demo"

    result = subprocess.run(
        demo_command(workdir, "--speed", "0", "--flood-every", "20", "--http-port", "0", "--exit-when-done"),
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "IOC_EDGE_SHARED": str(shared_dir)},
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "demo: done: every node's records reached the centre" in out
    assert re.search(rf"^  positions received: +{expected}$", out, re.M)
    assert re.search(r"^  rejected by the IOC: +none$", out, re.M)
    shown = re.search(
        r"^  vessel's track log: +chain [0-9a-f]{16} verified to record (\d+) against the CA "
        rf"\({re.escape(str(workdir / 'ca' / 'ca.crt'))}\); flags: none$",
        out,
        re.M,
    )
    assert re.search(
        rf"^  alarms raised and cleared: +env-huong-river river \(flood\), "
        rf"vessel-042 {BERTH_NAME} \(geofence_entered\)$",
        out,
        re.M,
    )
    assert shown, out
    assert "demo: camera       self-test: 6 of 6 checks passed; commissioning record signed" in out
    assert re.search(
        r"^  camera's commissioning: +self-test passed; signature valid: signed by cam-ben-ngu's key "
        r"\(certificate from signer demo\)",
        out,
        re.M,
    )
    with sqlite3.connect(workdir / "ioc.db") as db:
        devices = dict(db.execute("SELECT device, COUNT(*) FROM rec_status GROUP BY device").fetchall())
        alarms = db.execute(
            "SELECT device, source, kind, state FROM rec_alarm ORDER BY device, ts_ms"
        ).fetchall()
        counted = db.execute("SELECT SUM(count) FROM rec_count").fetchone()[0]
        snapshot = db.execute("SELECT length(jpeg) FROM rec_event").fetchone()[0]
        # A note (the storm warning delivered, acknowledged) carries the last position too: not a fix.
        fixes = db.execute(
            "SELECT COUNT(*) FROM rec_track WHERE lat IS NOT NULL AND note_hi IS NULL"
        ).fetchone()[0]
    assert set(devices) == {"vessel-042", "cam-ben-ngu", "env-huong-river"}
    assert alarms[:2] == [("env-huong-river", "river", "flood", 1), ("env-huong-river", "river", "flood", 0)]
    # The capture's boat, moored, wanders into the forbidden berth and out again, once.
    assert [a for a in alarms if a[0] == "vessel-042"] == [
        ("vessel-042", BERTH_NAME, "geofence_entered", 1),
        ("vessel-042", BERTH_NAME, "geofence_entered", 0),
    ]
    assert counted > 0 and 0 < snapshot <= 30_000
    assert fixes == expected  # every fix of the capture is in the signed track log
    db = Database(f"sqlite:///{workdir / 'ioc.db'}")
    try:
        track, record = chain_status(db, "vessel-042"), commissioning.latest(db, "cam-ben-ngu")
    finally:
        db.close()
    [chain] = track["chains"]
    assert (chain["verified_idx"], chain["waiting"], chain["ca_checked"]) == (chain["newest_idx"], 0, True)
    # Every fix, and the "no fix" heartbeats of a slow run after the capture's end, if any.
    assert int(shown[1]) == chain["verified_idx"] >= expected - 1 and track["flags"] == []
    assert (record["verdict"], record["ca_checked"]) == ("valid", True), record["detail"]
    assert [c["name"] for c in record["report"]["checks"]] == [
        "config", "store", "clock", "camera street", "model street", "broker",
    ]  # fmt: skip
    # The warnings: the river station's siren sounded by its own flood alarm, a storm warning over the
    # vessel's waters delivered, sounded, and acknowledged by its crew (the demo, through ioc-edge warn ack).
    storm = STORM.search(out)
    assert storm, out
    config = workdir / "vessel" / "edge.toml"
    assert f"demo: crew         ioc-edge warn ack --config {config}: acknowledged: {storm[1]}\n" in out
    assert re.search(
        r"^  river station's siren: +\d+ flood alarm\(s\) sounded flood-2-demo on light, siren by itself; "
        r"the first, local:env-huong-river:flood:\d+, sounded at \d\d:\d\d:\d\d UTC, a local warning at the "
        r"centre; the siren's mock pin \(GPIO5\) has switched on [1-9]\d* times$",
        out,
        re.M,
    ), out
    assert re.search(
        rf"^  storm warning on the vessel: +{storm[1]}: delivered at [0-9:]+ UTC \(inside its area\), "
        r"sounded at [0-9:]+ UTC on light, siren, acknowledged at [0-9:]+ UTC by hand; both chained into its "
        r"signed track \(the export above lists them\)$",
        out,
        re.M,
    ), out
    centre = Database(f"sqlite:///{workdir / 'ioc.db'}")
    try:
        warnings = Warnings(centre)
        [on_board] = warnings.receipts(storm[1])
        local = [w for w in warnings.list(origin="local") if w.device == "env-huong-river"]
        [first] = warnings.receipts(local[-1].identifier)
        notes = centre.fetch("SELECT COUNT(*) AS n FROM rec_track_note")[0]["n"]
    finally:
        centre.close()
    assert (on_board.command_state, on_board.inside, on_board.acknowledged_by) == ("applied", 1, "hand")
    assert on_board.delivered_ms <= on_board.sounded_ms <= on_board.acknowledged_ms
    assert set(on_board.outputs) == {"siren", "light"}
    assert [w.pattern for w in local] == ["flood-2-demo"] * len(local) and first.sounded_ms is not None
    assert set(first.outputs) == {"siren", "light"}
    assert notes == 2  # delivered and acknowledged, chained into the vessel's signed track


def test_a_replayed_capture_moves_its_times_to_end_or_start_when_told(tmp_path: Path) -> None:
    capture = tmp_path / "capture.nmea"
    lines = [
        nmea_sentence("GPRMC,235958.50,A,5250.53669,N,00542.34920,E,0.020,,070420,,,A"),
        nmea_sentence("GPGGA,235958.50,5250.53669,N,00542.34920,E,1,09,1.03,-6.0,M,45.8,M,,"),
        nmea_sentence("AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0", "!"),
        b"$GPRMC,235959.00,A,5250.5,N,00542.3,E,0.0,,070420,,,A*00\r\n",  # a bad checksum stays bad
        nmea_sentence("GPRMC,000001.00,A,5250.53675,N,00542.34923,E,0.014,,080420,,,A"),
    ]
    capture.write_bytes(b"".join(lines))
    ends = 1_796_700_000_000  # 2026-12-08T03:20:00Z, so the capture's 2.5 s start at 03:19:57.5

    shift_capture(capture, tmp_path / "moved.nmea", ends, ends - 240_000)

    assert (tmp_path / "moved.nmea").read_bytes().splitlines(keepends=True) == [
        nmea_sentence("GPRMC,031957.50,A,5250.53669,N,00542.34920,E,0.020,,081226,,,A"),
        nmea_sentence("GPGGA,031957.50,5250.53669,N,00542.34920,E,1,09,1.03,-6.0,M,45.8,M,,"),
        lines[2],
        lines[3],
        nmea_sentence("GPRMC,032000.00,A,5250.53675,N,00542.34923,E,0.014,,081226,,,A"),
    ]
    shift_capture(capture, tmp_path / "late.nmea", ends, ends - 1_000)  # no earlier than starts_after
    assert (
        (tmp_path / "late.nmea")
        .read_bytes()
        .startswith(nmea_sentence("GPRMC,031959.50,A,5250.53669,N,00542.34920,E,0.020,,081226,,,A"))
    )


def end_demo(proc: subprocess.Popen, workdir: Path) -> None:
    """After a failed test: SIGTERM lets the demo stop its nodes (each in a session of its own, which a
    SIGKILL of the demo would orphan); whatever is left of the demo is then killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in pids_mentioning(str(workdir)):
        os.kill(pid, signal.SIGKILL)


def signed_in(url: str, username: str, password: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(f"{url}login", body, {"Content-Type": "application/json"})
    with opener.open(request, timeout=10) as response:
        assert response.status == 200
    return opener


def test_demo_serves_the_dashboard_with_its_login_and_stops_every_part_on_sigterm(
    shared_dir: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.Popen(
        demo_command(workdir, "--speed", "1", "--http-port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IOC_EDGE_SHARED": str(shared_dir)},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        seen: dict[str, re.Match] = {}
        while True:  # until the first position has made the whole trip
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1)).rstrip("\n")
            for name, pattern in (("dashboard", DASHBOARD), ("login", LOGIN)):
                if found := pattern.match(line):
                    seen[name] = found
            if (match := PROGRESS.match(line)) and int(match[1]) > 0:
                break
        assert len(processes_mentioning(str(workdir))) >= 3  # two node processes and mosquitto run
        url, (operator, viewer) = seen["dashboard"][1], seen["login"].groups()
        opener = signed_in(url, "operator", operator)
        with opener.open(f"{url}api/v1/vessels", timeout=10) as response:
            assert [v["device"] for v in json.load(response)["items"]] == ["vessel-042"]

        def track_chains() -> list[dict]:
            with opener.open(f"{url}api/v1/nodes/vessel-042/track", timeout=10) as response:
                return json.load(response)["chains"]

        wait_for(track_chains, 10, "the vessel's track chain at the IOC")
        assert [c["ca_checked"] for c in track_chains()] == [True]  # the centre checks it against the CA
        with signed_in(url, "viewer", viewer).open(f"{url}api/v1/me", timeout=10) as response:
            assert json.load(response) == {"username": "viewer", "role": "viewer"}

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        end_demo(proc, workdir)
    assert processes_mentioning(str(workdir)) == []
    for node in ("vessel", "camera"):
        assert "event=node_stopped" in (workdir / node / "node.log").read_text()


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
        "set IOC_EDGE_SHARED to the shared/ directory (the one holding nmea/, media/ and models/), "
        "or pass --capture FILE\n"
    )
    assert not (tmp_path / "demo").exists()  # nothing was started


def test_the_demo_river_floods_over_the_alarm_level_and_falls_back() -> None:
    levels = [river_level(t, 20) for t in range(0, 21)]

    assert levels[0] == levels[20] == 2.0
    assert max(levels) > 3.5 + 0.2 and min(levels[15:]) < 3.5 - 0.2  # past the alarm's hysteresis both ways
