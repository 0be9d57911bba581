"""The live stream (server-sent events) follows the database: rows stored by any process reach the browser.

Runs once on SQLite and once on PostgreSQL (the ``ioc_db`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from helpers import free_port, now_ms, wait_for
from support_nodes import node_config

from ioc.db import Database
from ioc.web import WebServer, WebSettings, create_app
from ioc.web.auth import Tokens, Users
from ioc.web.live import Arrivals
from sync.records import Alarm, TimeSource
from sync.wire import Batch

PASSWORD = "correct horse battery"
EPOCH = "a1b2c3d4e5f60718"
NTP = int(TimeSource.NTP)


@dataclass
class SseReader:
    """Reads a live stream in a thread: each event as (name, items, arrival ms); ``ended`` once it closes."""

    url: str
    headers: dict
    events: list[tuple[str, list[dict], int]] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.response = requests.get(self.url, headers=self.headers, stream=True, timeout=30)
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name = None
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: ") and name:
                    self.events.append((name, json.loads(line[len("data: ") :])["items"], now_ms()))
                    name = None
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by close() or by the server
        self.ended.set()

    def items(self, name: str) -> list[dict]:
        return [item for event, items, _ in list(self.events) if event == name for item in items]

    def close(self) -> None:
        self.response.close()
        self._thread.join(10)


@pytest.fixture
def token(ioc_db: Database) -> str:
    Users(ioc_db).add("lan", "operator", PASSWORD)
    return Tokens(ioc_db).create("lan", "tests")[1]


@pytest.fixture
def serve_process(ioc_db_url: str, token: str) -> Iterator[str]:
    """``ioc-center serve`` as a process of its own on the test's database; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ioc", "serve", "--db", ioc_db_url, "--http-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        assert process.poll() is None, process.communicate()
        try:
            return requests.get(f"{url}/api/v1/me", timeout=2).status_code == 401
        except requests.ConnectionError:
            return False

    try:
        wait_for(listening, 30, "ioc-center serve to listen")
        yield url
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and stderr == f"dashboard: {url}/\n"


def test_positions_from_a_node_reach_the_stream_of_another_process_within_seconds(
    shared_dir, tmp_path, broker, receiver, ioc_db, run_node, token, serve_process
):
    """The receiver stores (in this process); `ioc-center serve` (another process) streams what it finds."""
    stream = SseReader(f"{serve_process}/api/v1/live", {"Authorization": f"Bearer {token}"})
    try:
        path = shared_dir / "nmea" / "ais-nmea.log"
        run_node(node_config(tmp_path, broker.port, f'type = "replay"\npath = "{path}"\nspeed = 4'))
        wait_for(lambda: len(stream.items("position")) >= 20, 60, "20 positions on the live stream")
    finally:
        stream.close()
    events = [(items, arrived) for name, items, arrived in stream.events if name == "position"]
    streamed = [item for items, _ in events for item in items]
    assert len({(i["device"], i["epoch"], i["seq"]) for i in streamed}) == len(streamed)  # none twice
    stored = {
        (r["device"], r["epoch"], r["seq"]): r
        for r in ioc_db.fetch("SELECT device, epoch, seq, ts_ms, lat, lon, received_ms FROM rec_position")
    }
    delays = []
    for items, arrived in events:
        for item in items:
            row = stored[item["device"], item["epoch"], item["seq"]]
            assert (item["ts_ms"], item["lat"], item["lon"]) == (row["ts_ms"], row["lat"], row["lon"])
            delays.append(arrived - row["received_ms"])
    shape = "device epoch seq ts_ms tsrc lat lon speed_kn course_deg fix sats hdop alt_m"
    assert set(streamed[0]) == set(shape.split())  # the shape of /api/v1/positions items
    # The feed polls each second; the rest is the HTTP hop and a machine shared with other test runs.
    assert max(delays) < 5000, sorted(delays)
    print(f"live delay ms: median {sorted(delays)[len(delays) // 2]}, max {max(delays)}")


def test_alarm_events_are_upserts_for_a_raise_its_clear_and_its_ack(ioc_db_url, web_server, ioc_db, token):
    other = Database(ioc_db_url)  # the receivers' connection: another process as far as the web is concerned
    auth = {"Authorization": f"Bearer {token}"}
    stream = SseReader(f"{web_server.url}/api/v1/live", auth)
    key = f"river-7/{EPOCH}/1"

    def latest(key: str) -> dict | None:
        found = [a for a in stream.items("alarm") if a["id"] == key]
        return found[-1] if found else None

    try:
        t = now_ms()
        other.store(
            Batch("river-7", EPOCH, "alarm", [1], [Alarm(t, NTP, t, "river", "flood", 1, 3.6, "high")])
        )
        wait_for(lambda: latest(key) is not None, 10, "the raise on the stream")
        assert (latest(key)["open"], latest(key)["acked_by"]) == (True, None)

        ack = requests.post(f"{web_server.url}/api/v1/alarms/{key}/ack", headers=auth, timeout=30).json()
        wait_for(lambda: latest(key)["acked_by"] == "lan", 10, "the ack on the stream")
        assert latest(key)["acked_ms"] == ack["acked_ms"]

        other.store(
            Batch("river-7", EPOCH, "alarm", [2], [Alarm(t + 500, NTP, t, "river", "flood", 0, 2.1, "ok")])
        )
        wait_for(lambda: latest(key)["open"] is False, 10, "the raise closed on the stream")
        assert latest(key)["cleared_ms"] == t + 500 and latest(f"river-7/{EPOCH}/2")["state"] == 0
    finally:
        stream.close()
        other.close()


def test_the_stream_ends_with_the_session_and_with_the_server(ioc_db):
    Users(ioc_db).add("an", "viewer", PASSWORD)
    server = WebServer(create_app(ioc_db, WebSettings(), keepalive_s=0.5), "127.0.0.1", 0)
    server.start()
    try:
        session = requests.Session()
        session.post(f"{server.url}/login", json={"username": "an", "password": PASSWORD}, timeout=30)
        cookie = {"Cookie": f"ioc_session={session.cookies['ioc_session']}"}
        signed_in = SseReader(f"{server.url}/api/v1/live", cookie)
        other = SseReader(
            f"{server.url}/api/v1/live", {"Authorization": f"Bearer {Tokens(ioc_db).create('an')[1]}"}
        )
        time.sleep(1.5)
        assert not signed_in.ended.is_set()
        session.post(f"{server.url}/logout", timeout=30)
        assert signed_in.ended.wait(5), "the stream outlived its session"
        assert not other.ended.is_set()
    finally:
        started = time.monotonic()
        server.stop()
        stopped_in = time.monotonic() - started
    assert other.ended.wait(5) and stopped_in < 4, f"stopping took {stopped_in:.1f} s with a stream open"
    signed_in.close()
    other.close()


def test_arrivals_count_rows_that_commit_late_once_and_deliver_bursts_over_several_polls():
    table: list[dict] = []

    def fetch(since: int, limit: int) -> list[dict]:
        rows = sorted((r for r in table if r["received_ms"] > since), key=lambda r: r["received_ms"])
        return rows[:limit]

    def row(seq: int, received_ms: int) -> dict:
        return {"device": "d", "epoch": EPOCH, "seq": seq, "received_ms": received_ms}

    arrivals = Arrivals(fetch, lag_ms=5000, watermark=10_000, cap=3)
    table += [row(1, 10_500), row(2, 11_000)]
    assert [r["seq"] for r in arrivals.new_rows()] == [1, 2]
    table.append(row(3, 10_800))  # stamped before seq 2 but committed after it was read
    assert [r["seq"] for r in arrivals.new_rows()] == [3]
    assert arrivals.new_rows() == []
    table += [row(s, 12_000) for s in range(4, 12)]  # one batch of 8, more than a poll takes
    got = [r["seq"] for r in arrivals.new_rows()] + [r["seq"] for r in arrivals.new_rows()]
    got += [r["seq"] for r in arrivals.new_rows()]
    assert got == list(range(4, 12))
    table.append(row(12, 3_000))  # later than lag_ms behind: too late, never sent
    table.append(row(13, 20_000))
    assert [r["seq"] for r in arrivals.new_rows()] == [13]
    assert set(arrivals.seen) == {("d", EPOCH, 13)}  # what fell out of the look-back window is forgotten
