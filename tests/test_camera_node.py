"""A camera node end to end: bikes.mp4 through the real detector, counts and an event with a
snapshot (people blurred) through a real mosquitto to the IOC store."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers import wait_for
from support_nodes import camera_config

from edge.runtime import Node
from inference.detector import ModelError
from ioc.receiver import Receiver


def test_counts_and_an_event_with_a_snapshot_reach_the_ioc(shared_dir, tmp_path, broker, ioc_db):
    receiver = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-test")
    receiver.start()
    assert receiver.subscribed.wait(10)
    node = Node(camera_config(tmp_path, shared_dir, broker.port))
    node.start()
    try:
        camera = node.drivers[0]
        wait_for(lambda: not camera.running, 120, "the clip to be processed")
        # Every record the camera made, the last interval's counts too (the clip's pedestrian crosses late).
        wait_for(
            lambda: ioc_db.count("event") + ioc_db.count("count") == camera.records,
            30,
            "every count and the event at the IOC",
        )
    finally:
        node.stop()
        receiver.stop()
    counts = {(c["line"], c["group"], c["direction"]): 0 for c in ioc_db.dump("count")}
    for c in ioc_db.dump("count"):
        counts[(c["line"], c["group"], c["direction"])] += c["count"]
    assert counts[("mid", "vehicles", "out")] >= 2 and counts[("mid", "people", "out")] >= 1
    event = next(ioc_db.dump("event"))
    assert (event["camera"], event["rule"], event["label"]) == ("street", "person_on_street", "person")
    assert len(event["jpeg"]) <= 30_000
    image = cv2.imdecode(np.frombuffer(event["jpeg"], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (272, 640, 3)
    x1, y1, x2, y2 = event["x1"], event["y1"], event["x2"], event["y2"]
    inside = cv2.cvtColor(image[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4], cv2.COLOR_BGR2GRAY).astype(float)
    # Blurred (pixelated) people: next to no fine detail left inside the person's box.
    assert np.percentile(np.abs(np.diff(inside, axis=1)), 75) <= 3


def test_a_corrupt_model_is_a_clear_error_at_start(shared_dir, tmp_path, broker):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes((shared_dir / "models" / "yolox_nano.onnx").read_bytes()[:10_000])
    node = Node(camera_config(tmp_path, shared_dir, broker.port, model=bad))
    with pytest.raises(ModelError) as info:
        node.start()
    node.stop()
    assert str(info.value).startswith(f"model file {bad} is not a readable ONNX model")


def test_detect_prints_detections_as_json_lines_and_the_objects(shared_dir):
    from click.testing import CliRunner

    from edge.cli import main

    video, model = shared_dir / "media" / "bikes.mp4", shared_dir / "models" / "yolox_nano.onnx"
    result = CliRunner().invoke(main, ["detect", str(video), "--model", str(model), "--fps", "5"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert {"frame", "label", "score", "box"} == set(lines[0])
    assert {"person", "bicycle"} <= {x["label"] for x in lines if 20 <= x["frame"] <= 35}
    assert result.stderr.startswith("objects: ") and "person=" in result.stderr
