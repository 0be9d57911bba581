"""Edge nodes as the tests run them: configs of a GPS and of a camera node, what a capture should deliver,
a node's store backlog, and a vessel's track log.

Example: ``config = node_config(tmp_path, broker.port, f'type = "replay"\\npath = "{path}"\\nspeed = 0')``
then ``assert_same_positions(list(ioc_db.dump("position", "vessel-1")), expected_positions(path))``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.clock import Clock
from drivers.nmea import NmeaParser
from edge.config import NodeConfig, parse_config
from edge.runtime import open_store
from edge.track import TrackLog, export_track
from ioc.db import Database
from ioc.demo_field import street_rules
from ioc.track import chain_status
from provisioning import pki
from provisioning.signing import DeviceSigner
from provisioning.tls import TlsFiles
from sync.recorder import Recorder
from sync.records import TimeSource, TrackPoint, TrackSig
from sync.store import Store, StoreStatus
from sync.trackfile import TrackFileError, TrackFileWriter, read, verify

# Values travel in fixed point (sync.wire): compare each field to its wire resolution.
TOLERANCE = {"lat": 1e-7, "lon": 1e-7, "speed_kn": 0.01, "course_deg": 0.1, "hdop": 0.01, "alt_m": 0.1}
COMPARED = ("ts_ms", "tsrc", "lat", "lon", "speed_kn", "course_deg", "fix", "sats", "hdop", "alt_m")


def node_toml(
    tmp_path: Path,
    device: str,
    port: int,
    *,
    state: str = "state",
    flush_interval_s: float = 0.1,
    status_interval_s: float = 1,
    store: str = "",
    uplink: str = "",
) -> str:
    """The sections every test node shares: ``device`` storing under ``tmp_path/state``, flushing and
    reporting often, syncing to the broker on ``port`` with quick resends and reconnects, no metrics
    endpoint (nodes of one test would contend for its port); ``store``, ``uplink``: more of their keys."""
    return f"""
[node]
device_id = "{device}"
state_dir = "{tmp_path / state}"

[store]
flush_interval_s = {flush_interval_s}
status_interval_s = {status_interval_s}
{store}

[uplink]
port = {port}
ack_timeout_s = 3
backoff_min_s = 0.1
backoff_max_s = 1
{uplink}

[metrics]
enabled = false
"""


def write_config(tmp_path: Path, text: str) -> NodeConfig:
    """``text`` written to ``tmp_path/edge.toml`` (for the CLI) and parsed as that file."""
    (tmp_path / "edge.toml").write_text(text)
    return parse_config(text, "edge.toml", tmp_path)


def node_config(
    tmp_path: Path,
    port: int,
    transport: str,
    device: str = "vessel-1",
    extra: str = "",
    send_raw: bool = False,
) -> NodeConfig:
    """A GPS node ``device`` syncing to the broker on ``port``; ``transport``: its transport section's lines.

    Written to ``tmp_path/edge.toml`` too (for the CLI); ``extra`` adds lines after the ``[store]`` settings.
    """
    head = node_toml(
        tmp_path,
        device,
        port,
        state=device,
        flush_interval_s=0.2,
        store=extra,
        uplink=f"send_raw = {str(send_raw).lower()}",
    )
    gps = f'[drivers.gps]\ntype = "nmea"\n\n[drivers.gps.transport]\n{transport}\n'
    return write_config(tmp_path, head + gps)


def expected_positions(path: Path) -> list[dict]:
    """The positions the node's parser reads from the capture at ``path``, as dicts."""
    parser = NmeaParser(Clock())
    return [p._asdict() for p in parser.feed(path.read_bytes()) + parser.flush()]


def assert_same_positions(stored: list[dict], expected: list[dict]) -> None:
    """The IOC's ``stored`` rows are the ``expected`` positions, each field to its wire resolution."""
    assert len(stored) == len(expected)
    for got, want in zip(stored, expected, strict=True):
        for field in COMPARED:
            g, w = got[field], want[field]
            if field == "tsrc":
                assert g == TimeSource(w).name.lower()
            elif field == "ts_ms" and want["tsrc"] != TimeSource.GPS:
                assert abs(g - w) < 60_000  # the node's clock when it read the fix: not reproducible
            elif w is None or field not in TOLERANCE:
                assert g == w, (field, got, want)
            else:
                assert abs(g - w) <= TOLERANCE[field] / 2 + 1e-9, (field, got, want)


def store_status(config: NodeConfig) -> StoreStatus:
    """The status of ``config``'s store: backlog, kept_local, drops, counters."""
    store = open_store(config)
    try:
        return store.status()
    finally:
        store.close()


def backlog(config: NodeConfig) -> int:
    """How many records of ``config``'s node wait to be sent (status reports aside)."""
    status = store_status(config)
    waiting = {**status.backlog, **status.kept_local}  # with send_raw, raw readings wait to be sent too
    return sum(v for k, v in waiting.items() if k != "status")


def camera_config(
    tmp_path, shared_dir, port, *, model=None, source=None, camera: str = "", drivers: str = ""
) -> NodeConfig:
    """A camera node syncing to the broker on ``port``, written to ``tmp_path/edge.toml`` too (for the CLI).

    ``source`` replaces bikes.mp4; ``camera`` adds lines to the camera's section, ``drivers`` other sections.
    """
    text = f"""{node_toml(tmp_path, "cam-1", port)}
[drivers.street]
type = "camera"
source = "{source or shared_dir / "media" / "bikes.mp4"}"
model = "{model or shared_dir / "models" / "yolox_nano.onnx"}"
interval_s = 1
{camera}
{street_rules(3600)}
{drivers}
"""
    return write_config(tmp_path, text)


ALL_MS = (0, 4_102_444_800_000)  # 1970 .. 2100


class Vessel:
    """A store, its recorder and a track log, as a node runs them.

    Example: ``vessel = Vessel(tmp_path / "store.db", identity); vessel.replay(capture); vessel.stop()``
    """

    def __init__(self, path: Path, tls: TlsFiles, heartbeat_s: float = 60.0) -> None:
        self.path, self.tls = path, tls
        Store(path).close()  # created once before two connections open it, as Node.init_store does
        self.recorder = Recorder(lambda: Store(path), flush_interval_s=0.05)
        self.recorder.start()
        self.track = TrackLog(
            lambda: Store(path), self.recorder.append, DeviceSigner.load(tls), Clock(), heartbeat_s, 600.0
        )
        self.track.start()

    def replay(self, capture: Path, sign_every: int = 500) -> int:
        parser = NmeaParser(Clock())
        data = capture.read_bytes()
        count = 0
        for off in range(0, len(data), 4096):
            positions = parser.feed(data[off : off + 4096])
            self.track.add(positions)
            count += len(positions)
            if count // sign_every != (count - len(positions)) // sign_every:
                self.track.sign()
        tail = parser.flush()
        self.track.add(tail)
        return count + len(tail)

    def stop(self) -> None:
        self.track.stop()
        self.recorder.stop()

    def export(self, out: Path, span: tuple[int, int] = ALL_MS) -> dict:
        store = Store(self.path)
        try:
            return export_track(store, "vessel-042", *span, out)
        finally:
            store.close()


def ca_of(tls: TlsFiles):
    """The CA certificate of a node's identity ``tls``."""
    return pki.load_certificates(tls.ca)[0]


def tampered(exported, tmp_path: Path, change) -> Path:
    """The export rewritten after ``change(header, rows, hashes)`` (returning them), as a forger would."""
    path, _, _ = exported
    header, rows, hashes = read(path)
    header, rows, hashes = change(header, rows.copy(), bytearray(hashes))
    out = tmp_path / "tampered.track"
    with TrackFileWriter(
        out, {k: v for k, v in header.items() if k not in ("format", "version", "records")}
    ) as w:
        w.write(rows, bytes(hashes))
    return out


def failure(path: Path, tls: TlsFiles) -> str:
    """Why the track file at ``path`` does not verify against the CA of ``tls`` (it must not)."""
    with pytest.raises(TrackFileError) as err:
        verify(path, ca_of(tls))
    return str(err.value).removeprefix(f"{path}: ")


def archive(path: Path) -> tuple[str, list[TrackPoint], list[TrackSig]]:
    """The epoch, track records and signatures of the store at ``path``, as its archive holds them."""
    store = Store(path)
    try:
        points = [r for _, rows in store.archived("track") for r in rows]
        sigs = [r for _, rows in store.archived("track_sig") for r in rows]
        return store.epoch, points, sigs
    finally:
        store.close()


def flags(db: Database, device: str = "vessel-042") -> list[tuple[int, str, str]]:
    """``(idx, kind, detail)`` of each flag the centre raised on ``device``'s track, by idx."""
    return [
        (f["idx"], f["kind"], f["detail"])
        for f in sorted(chain_status(db, device)["flags"], key=lambda f: f["idx"])
    ]


def reached(db: Database, key: str, idx: int, device: str = "vessel-042") -> bool:
    """Whether the device's newest chain has ``key`` (last_idx, verified_idx) at ``idx``."""
    chains = chain_status(db, device)["chains"]
    return bool(chains) and chains[0][key] == idx
