"""A camera node whose camera goes away: real files read by OpenCV, the real model, a real mosquitto.

Lost mid-stream (the video file truncated under the reader, then restored): reopened with backoff,
counted once in ``health.street``, and counting goes on. Absent at start: the GPS beside it goes on
delivering positions to the IOC, and ``ioc-edge status`` says which camera, why, and what to check.
"""

from __future__ import annotations

import json
import os
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import wait_for
from support_nodes import camera_config

from common.clock import Clock
from drivers.camera import CameraSource
from drivers.nmea import NmeaParser
from edge.cli import main as edge_cli
from inference.camera import Camera, FramePipeline
from inference.counting import CountingLine
from inference.detector import Detector

# The IOC's database is not what these tests are about: SQLite only.
sqlite_only = pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)


def write_clip(path, images: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 272))
    for image in images:
        writer.write(image)
    writer.release()


def status(config_path, *options: str) -> str:
    result = CliRunner().invoke(edge_cli, ["status", str(config_path), *options])
    assert result.exit_code == 0, result.output
    return result.output


def outages(config_path) -> dict:
    return json.loads(status(config_path, "--json"))["outages"]


def crossings(ioc_db) -> int:
    return sum(c["count"] for c in ioc_db.dump("count") if c["line"] == "mid")


def utc(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


@sqlite_only
def test_camera_lost_mid_stream_is_reopened_counted_once_and_counting_goes_on(
    shared_dir, frames, tmp_path, broker, receiver, ioc_db, run_node
):
    clip = tmp_path / "street.mp4"
    write_clip(clip, frames[180:216])  # the pedestrian crosses the middle at its 18th frame
    whole = clip.read_bytes()
    config = camera_config(tmp_path, shared_dir, broker.port, source=clip, camera="loop = true")
    node = run_node(config)
    camera = node.drivers[0]
    wait_for(lambda: camera.source.stats["loops"] == 1, 30, "a first pass over the clip")

    # The file loses its end while OpenCV reads it: reads fail a few frames on, and the file
    # cannot be opened again (an mp4's index is at its end).
    os.truncate(clip, len(whole) // 4)
    wait_for(lambda: camera.source.stats["open_failures"] >= 2, 30, "two failed attempts to reopen")
    assert camera.health == {"transport_lost": 1}  # once for the outage, not once per attempt
    error = f"cannot open video file {clip}: OpenCV cannot decode it; is it a video?"
    assert camera.outage.error == error
    wait_for(lambda: "street" in outages(tmp_path / "edge.toml"), 10, "the outage in the node's status")
    since = utc(outages(tmp_path / "edge.toml")["street"]["since_ms"])
    text = status(tmp_path / "edge.toml").splitlines()
    assert f"camera street delivers no frames since {since}: {error}" in text
    node_store = node.status.store
    # The pedestrian of the first pass, counted in an interval that ended before or during the outage.
    wait_for(lambda: crossings(ioc_db) >= 1, 15, "the counts before the outage at the IOC")
    wait_for(lambda: node_store.backlog()["count"] == 0, 10, "every count before the outage at the IOC")
    before = crossings(ioc_db)

    clip.write_bytes(whole)
    wait_for(lambda: camera.health["transport_recovered"] == 1, 30, "the camera back")
    wait_for(lambda: crossings(ioc_db) > before, 30, "the crossings of a pass after the outage")
    assert camera.health == {"transport_lost": 1, "transport_recovered": 1}
    assert camera.outage is None
    wait_for(
        lambda: "health.street: transport_lost=1 transport_recovered=1" in status(tmp_path / "edge.toml"),
        10,
        "the recovery in the node's counters",
    )
    wait_for(lambda: outages(tmp_path / "edge.toml") == {}, 10, "the outage gone from the status")
    assert "delivers no frames" not in status(tmp_path / "edge.toml")


@sqlite_only
def test_camera_missing_at_start_leaves_the_node_running_and_status_says_why(
    shared_dir, tmp_path, broker, receiver, ioc_db, run_node
):
    log = shared_dir / "nmea" / "beidou-gb.log"
    parser = NmeaParser(Clock())
    expected = len(parser.feed(log.read_bytes()) + parser.flush())
    gps = f"""
[drivers.gps]
type = "nmea"

[drivers.gps.transport]
type = "replay"
path = "{log}"
speed = 0
"""
    absent = tmp_path / "cameras" / "street.mp4"
    config = camera_config(tmp_path, shared_dir, broker.port, source=absent, drivers=gps)
    node = run_node(config)
    camera = node.drivers[0]

    wait_for(lambda: ioc_db.count("position") == expected, 30, f"the {expected} positions at the IOC")
    assert expected > 0
    wait_for(lambda: camera.source.stats["open_failures"] >= 2, 10, "two attempts to open the camera")
    assert (camera.health, node.failed, camera.pipeline.stats["frames"]) == ({"transport_lost": 1}, {}, 0)
    error = f"video file {absent} not found: check the camera's source in the config"
    # the counters reach the store through the recorder, a moment after the status
    wait_for(
        lambda: "health.street: transport_lost=1" in status(tmp_path / "edge.toml").splitlines(),
        10,
        "the outage in the node's counters",
    )
    report = outages(tmp_path / "edge.toml")["street"]
    assert report["error"] == error
    text = status(tmp_path / "edge.toml").splitlines()
    assert f"camera street delivers no frames since {utc(report['since_ms'])}: {error}" in text
    # the IOC learns it too, from the node's status record
    wait_for(
        lambda: any(json.loads(s["body"])["outages"].get("street") == report for s in ioc_db.dump("status")),
        10,
        "the outage in a status record at the IOC",
    )


def test_a_camera_whose_thread_fails_reports_it_as_its_outage(shared_dir):
    def sink(stream: str, records: list) -> None:
        raise RuntimeError("the store went away")

    detector = Detector(shared_dir / "models" / "yolox_nano.onnx")
    pipeline = FramePipeline("street", detector, Clock(), lines=[CountingLine("mid", (320, 0), (320, 272))])
    camera = Camera(
        "street", CameraSource(str(shared_dir / "media" / "bikes.mp4")), pipeline, sink, Clock(), 1
    )
    camera.start()
    wait_for(lambda: not camera.running, 30, "the camera's thread to end")
    camera.stop()
    assert camera.outage.error == (
        "the camera's thread stopped on RuntimeError: the store went away; "
        "see the node's log and restart the node"
    )
