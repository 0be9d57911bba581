"""Detector: the real YOLOX-Nano on the street video, the letterbox, the session options, model errors."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from inference.detector import Detector, FrameError, ModelError
from inference.types import Detection

# Where the waiting cyclist of bikes.mp4 is (frames ~105-138: he stands at a light, one foot on a
# bollard). Read off frame 120 by eye on a 2x enlargement with a pixel ruler, not from the detector:
# the person from his hand on the pole to his knee, helmet to the bottom edge; the bicycle from the
# rim of the left wheel to the end of the handlebar, the handlebar's top to the bottom edge.
CYCLIST = (341.0, 9.0, 488.0, 272.0)
BICYCLE = (379.0, 172.0, 525.0, 272.0)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def model(shared_dir: Path) -> Path:
    return shared_dir / "models" / "yolox_nano.onnx"


@pytest.fixture(scope="module")
def detector(model: Path) -> Detector:
    return Detector(model)


def naive_letterbox(frame: np.ndarray, size: int = 416) -> np.ndarray:
    """The YOLOX reference preprocessing, written the plain way."""
    r = min(size / frame.shape[0], size / frame.shape[1])
    resized = cv2.resize(frame, (int(frame.shape[1] * r), int(frame.shape[0] * r)))
    padded = np.full((size, size, 3), 114, np.uint8)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    return padded.transpose(2, 0, 1)[None].astype(np.float32)


@pytest.mark.parametrize("index", [110, 120, 130])
def test_waiting_cyclist_and_bicycle_are_found(detector, frames, index):
    found = detector.detect(frames[index])
    people = [d for d in found if d.label == "person"]
    bicycles = [d for d in found if d.label == "bicycle"]
    assert max(iou(d.box, CYCLIST) for d in people) >= 0.5
    assert max(iou(d.box, BICYCLE) for d in bicycles) >= 0.5
    best = max(people, key=lambda d: iou(d.box, CYCLIST))
    assert best.class_id == 0
    assert best.score > 0.7


def test_detections_are_frame_pixels_best_first(detector, frames):
    found = detector.detect(frames[120])
    assert all(isinstance(d, Detection) for d in found)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    assert all(0 <= d.box[0] < d.box[2] <= 640 and 0 <= d.box[1] < d.box[3] <= 272 for d in found)
    assert all(d.score > 0.35 for d in found)


def test_detections_identical_across_runs(model, frames):
    first, second = Detector(model), Detector(model)
    clip = frames[100:140]
    assert [first.detect(f) for f in clip] == [second.detect(f) for f in clip]
    assert [first.detect(f) for f in clip] == [second.detect(f) for f in clip]


def test_stages_compose_to_detect(detector, frames):
    frame = frames[120]
    output = detector.run(detector.preprocess(frame))
    assert output.shape == (1, 3549, 85)
    assert detector.postprocess(output, detector.scale_for(frame), frame.shape[:2]) == detector.detect(frame)


def test_preprocess_is_the_reference_letterbox(detector, frames):
    assert detector.scale_for(frames[0]) == 0.65
    assert np.array_equal(detector.preprocess(frames[120]), naive_letterbox(frames[120]))
    # A frame of another shape re-pads the margin that the wide frame left alone.
    portrait = np.ascontiguousarray(frames[120][:, 200:400].transpose(1, 0, 2))
    assert np.array_equal(detector.preprocess(portrait), naive_letterbox(portrait))
    assert np.array_equal(detector.preprocess(frames[60]), naive_letterbox(frames[60]))


def test_input_name_and_size_come_from_the_session(detector):
    assert detector.input_name == "images"
    assert detector.input_size == (416, 416)
    assert detector.session.get_inputs()[0].shape == [1, 3, 416, 416]
    assert len(detector.labels) == 80
    assert detector.labels[3] == "motorbike"


def test_threads_and_optimization_are_applied(model):
    options = Detector(model).session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options = Detector(model, threads=1, optimization="basic").session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options = Detector(model, threads=3, optimization="disable").session.get_session_options()
    assert options.intra_op_num_threads == 3
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL


def test_workers_sleep_unless_told_to_spin(model):
    options = Detector(model).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert not options.enable_mem_pattern
    options = Detector(model, spin=True).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_unknown_optimization_is_refused(model):
    with pytest.raises(ModelError) as err:
        Detector(model, optimization="max")
    assert str(err.value) == "optimization 'max' is not one of 'disable', 'basic', 'extended', 'all'"


def test_missing_model_file(tmp_path):
    path = tmp_path / "nano.onnx"
    with pytest.raises(ModelError) as err:
        Detector(path)
    assert str(err.value) == f"model file {path} does not exist: check the detector's model_path"
    assert isinstance(err.value, ValueError)


def test_random_bytes_are_not_a_model(tmp_path):
    path = tmp_path / "nano.onnx"
    path.write_bytes(np.random.default_rng(7).bytes(4096))
    with pytest.raises(ModelError) as err:
        Detector(path)
    assert str(err.value) == (
        f"model file {path} is not a readable ONNX model (damaged or truncated?): "
        "copy or export the model again"
    )


def test_truncated_copy_is_not_a_model(model, tmp_path):
    path = tmp_path / "nano.onnx"
    path.write_bytes(model.read_bytes()[: model.stat().st_size * 2 // 3])
    with pytest.raises(ModelError) as err:
        Detector(path)
    assert str(err.value) == (
        f"model file {path} is not a readable ONNX model (damaged or truncated?): "
        "copy or export the model again"
    )


def test_empty_file_and_directory(tmp_path):
    path = tmp_path / "nano.onnx"
    path.touch()
    with pytest.raises(ModelError) as err:
        Detector(path)
    assert str(err.value) == f"model file {path} is empty: copy or export the model again"
    with pytest.raises(ModelError) as err:
        Detector(tmp_path)
    assert str(err.value) == f"model file {tmp_path} is not a file: point model_path at the .onnx file"


def test_labels_must_match_the_classes(model, tmp_path):
    with pytest.raises(ModelError) as err:
        Detector(model, labels=["person", "bicycle"])
    assert str(err.value) == (
        f"model file {model} predicts 80 classes but 2 labels were given: "
        "pass the labels file that belongs to this model"
    )
    missing = tmp_path / "labels.txt"
    with pytest.raises(ModelError) as err:
        Detector(model, labels_path=missing)
    assert str(err.value) == (
        f"labels file {missing} for model {model} cannot be read (No such file or directory): "
        "pass labels_path= or labels= (one class name per output class)"
    )


def test_frame_must_be_bgr_uint8(detector):
    with pytest.raises(FrameError) as err:
        detector.detect(np.zeros((272, 640), np.uint8))
    assert (
        str(err.value)
        == "expected a BGR frame (H x W x 3 uint8 array), got a uint8 array of shape (272, 640)"
    )
    with pytest.raises(FrameError) as err:
        detector.detect(np.zeros((272, 640, 3), np.float32))
    assert str(err.value) == (
        "expected a BGR frame (H x W x 3 uint8 array), got a float32 array of shape (272, 640, 3)"
    )


# A tiny stand-in for a YOLOX export with another input size, built with onnx.helper: its output is a
# constant (plus 0 x the input, so that the input is used) holding one box at a known anchor.


def tiny_yolox(path: Path, height: int, width: int, classes: int, anchors: int | None = None) -> Path:
    onnx = pytest.importorskip("onnx", reason="the onnx package builds the stand-in model")
    from onnx import TensorProto, helper, numpy_helper

    rows = anchors if anchors is not None else sum((height // s) * (width // s) for s in (8, 16, 32))
    table = np.zeros((1, rows, 5 + classes), np.float32)
    # stride-16 level starts after the (height/8) x (width/8) cells; cell x=3, y=2 of a width/16 row
    anchor = (height // 8) * (width // 8) + 2 * (width // 16) + 3
    table[0, anchor, :4] = (0.5, 0.5, math.log(2.0), math.log(2.0))
    table[0, anchor, 4] = 0.9
    table[0, anchor, 5 + classes - 1] = 0.8
    nodes = [
        helper.make_node("ReduceSum", ["images"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["table", "nothing"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, rows, 5 + classes])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, os.fspath(path))
    return path


def test_input_size_is_read_from_the_model(tmp_path):
    path = tiny_yolox(tmp_path / "tiny.onnx", 64, 96, classes=2)
    detector = Detector(path, labels=["cat", "dog"])
    assert detector.input_size == (64, 96)
    assert detector.input_name == "images"
    # cell (3, 2) of stride 16 with offset 0.5 -> centre (56, 40); w = h = exp(log 2) x 16 = 32
    [found] = detector.detect(np.zeros((64, 96, 3), np.uint8))
    assert (found.label, found.class_id) == ("dog", 1)
    assert found.score == pytest.approx(0.72)
    assert found.box == pytest.approx((40.0, 24.0, 72.0, 56.0))
    # a frame twice the input size: the letterbox halves it, the box comes back doubled
    [found] = detector.detect(np.zeros((128, 192, 3), np.uint8))
    assert found.box == pytest.approx((80.0, 48.0, 144.0, 112.0))


def test_unexpected_output_layout_is_refused(tmp_path):
    path = tiny_yolox(tmp_path / "tiny.onnx", 64, 96, classes=2, anchors=125)
    with pytest.raises(ModelError) as err:
        Detector(path, labels=["cat", "dog"])
    assert str(err.value) == (
        f"model file {path} has output output [1, 125, 7], expected [1, 126, 7] for a 64x96 YOLOX model "
        "(x, y, w, h, objectness, class scores per anchor of strides 8, 16, 32): "
        "export it without NMS or decoding inside the graph"
    )
