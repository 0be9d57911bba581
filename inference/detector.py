"""Object detection with a YOLOX ONNX model (YOLOX-Nano on the devices) through onnxruntime.

:class:`Detector` loads the model once, checks that its input and output look like a YOLOX export,
and turns BGR frames into :class:`~inference.types.Detection` lists. The work around the model is
kept well below the model's own cost (about 10 ms a frame for YOLOX-Nano 416 on two cores):

* the letterbox writes into buffers allocated once: the frame is resized into a small uint8
  buffer, split into planes, and each plane is converted straight into the region of a float32
  input tensor whose padding was filled with 114 once (about 0.2 ms against 2.4 ms for
  ``np.full`` + ``astype`` + ``transpose`` on the 640x272 street video, see ``bench/camera_detector.py``);
* the anchor grid and strides are computed once; the decode drops anchors by objectness and then
  by objectness x class score *before* any ``exp`` or box arithmetic, so it touches a handful of rows;
* non-maximum suppression is OpenCV's class-aware ``cv2.dnn.NMSBoxesBatched``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from common.errors import IocEdgeError
from inference.types import Detection

__all__ = ["Detector", "FrameError", "ModelError", "OPTIMIZATION_LEVELS"]

OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
STRIDES = (8, 16, 32)
PAD_VALUE = 114  # the grey YOLOX was trained with in the letterbox margin


class ModelError(IocEdgeError, ValueError):
    """The model file is missing, unreadable, or not a YOLOX detector this module can decode."""


class FrameError(IocEdgeError, ValueError):
    """A frame is not an ``H x W x 3`` uint8 BGR image."""


def check_frame(frame: np.ndarray) -> None:
    """Raise :class:`FrameError` unless ``frame`` is a non-empty ``H x W x 3`` uint8 array."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        what = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame)
        raise FrameError(f"expected a BGR frame (H x W x 3 uint8 array), got a {what}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"expected a BGR frame (H x W x 3 uint8 array), got an empty one {frame.shape}")


def anchor_count(height: int, width: int) -> int:
    """Rows of a YOLOX output for an input of ``height x width``: one per cell of the 8/16/32 grids."""
    return sum((height // s) * (width // s) for s in STRIDES)


def _grids(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (N x 2, x then y, row-major per stride) and the stride of each row (N)."""
    cells, strides = [], []
    for s in STRIDES:
        ys, xs = np.mgrid[0 : height // s, 0 : width // s]
        cells.append(np.stack((xs.ravel(), ys.ravel()), axis=1))
        strides.append(np.full(xs.size, s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def _open_session(path: Path, threads: int, optimization: str, spin: bool) -> ort.InferenceSession:
    if optimization not in OPTIMIZATION_LEVELS:
        raise ModelError(
            f"optimization {optimization!r} is not one of {', '.join(map(repr, OPTIMIZATION_LEVELS))}"
        )
    if threads < 1:
        raise ModelError(f"threads must be at least 1, got {threads}")
    if not path.exists():
        raise ModelError(f"model file {path} does not exist: check the detector's model_path")
    if not path.is_file():
        raise ModelError(f"model file {path} is not a file: point model_path at the .onnx file")
    if path.stat().st_size == 0:
        raise ModelError(f"model file {path} is empty: copy or export the model again")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # YOLOX is one chain of convolutions: nothing to run side by side
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = OPTIMIZATION_LEVELS[optimization]
    options.log_severity_level = 3  # onnxruntime's own warnings would bypass the node's logging
    # Idle workers busy-wait for the next operator by default: on cores shared with the decoder,
    # the tracker, the rest of the node or another process, the spinning takes the CPU they need
    # (bikes.mp4 through the whole camera on two cores, one of them busy elsewhere: 28 frames/s
    # spinning, 55 sleeping; bench/camera.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    # The memory pattern keeps a second, pre-planned block of the activations beside the arena:
    # about 4 MB more resident, and no speed gained on YOLOX-Nano in our measurements.
    options.enable_mem_pattern = False
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime.capi.onnxruntime_pybind11_state.* derive from Exception only
        if type(exc).__name__ == "InvalidProtobuf":
            raise ModelError(
                f"model file {path} is not a readable ONNX model (damaged or truncated?): "
                "copy or export the model again"
            ) from exc
        reason = str(exc).rsplit("failed:", 1)[-1].strip() or type(exc).__name__
        raise ModelError(
            f"onnxruntime could not load model file {path} ({reason}): "
            "export the model again for this onnxruntime version"
        ) from exc


def _read_labels(model: Path, labels_path: str | Path | None, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        return list(labels)
    path = Path(labels_path) if labels_path is not None else model.with_suffix(".labels.txt")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(
            f"labels file {path} for model {model} cannot be read ({exc.strerror}): "
            "pass labels_path= or labels= (one class name per output class)"
        ) from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


class Detector:
    """A YOLOX detector: BGR frame in, :class:`~inference.types.Detection` list out.

    The input name and size are read from the model (a 416 and a 640 export both work); the output
    must be ``[1, N, 5 + C]`` with ``N`` anchors for strides 8, 16, 32 and ``C`` the number of labels.
    Labels come from ``labels=``, else ``labels_path=``, else ``<model>.labels.txt`` beside the model.
    ``input_size`` is ``(height, width)`` of the model input. ``threads`` are onnxruntime's intra-op
    threads; with ``spin`` they busy-wait between operators instead of sleeping, which only pays on
    cores nothing else needs.

    Raises :class:`ModelError` when the file is missing, damaged, or laid out differently, with a
    message naming the file, the problem and the remedy; :meth:`detect` raises :class:`FrameError`
    for anything but an ``H x W x 3`` uint8 frame.

    Example::

        >>> import cv2
        >>> detector = Detector("../shared/models/yolox_nano.onnx", threads=2)  # doctest: +SKIP
        >>> detector.input_size  # doctest: +SKIP
        (416, 416)
        >>> ok, frame = cv2.VideoCapture("../shared/media/bikes.mp4").read()  # doctest: +SKIP
        >>> [(d.label, round(d.score, 2)) for d in detector.detect(frame)][:2]  # doctest: +SKIP
        [('car', 0.87), ('person', 0.81)]

    To time the stages separately (as ``bench/camera_detector.py`` does)::

        tensor = detector.preprocess(frame)
        output = detector.run(tensor)
        detections = detector.postprocess(output, detector.scale_for(frame), frame.shape[:2])
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        threads: int = 2,
        optimization: str = "all",
        score_threshold: float = 0.35,
        nms_iou: float = 0.45,
        labels_path: str | Path | None = None,
        labels: Sequence[str] | None = None,
        spin: bool = False,
    ) -> None:
        self.model_path = Path(model_path)
        if not (0.0 <= score_threshold <= 1.0 and 0.0 <= nms_iou <= 1.0):
            raise ModelError(
                f"score_threshold and nms_iou must lie in [0, 1], got {score_threshold} and {nms_iou}"
            )
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.session = _open_session(self.model_path, threads, optimization, spin)
        self.input_name, self.input_size = self._check_input()
        self.labels = _read_labels(self.model_path, labels_path, labels)
        self.output_name = self._check_output()
        height, width = self.input_size
        self._cells, self._strides = _grids(height, width)
        # The tensor's margin keeps the pad value: preprocess only ever writes the frame's region.
        self._tensor = np.full((1, 3, height, width), PAD_VALUE, np.float32)
        self._frame_shape: tuple[int, int] | None = None
        self._resized = np.empty((0, 0, 3), np.uint8)
        self._planes: list[np.ndarray] = []
        self._regions: list[np.ndarray] = []
        self._scale = 1.0

    def _check_input(self) -> tuple[str, tuple[int, int]]:
        inputs = self.session.get_inputs()
        shape = inputs[0].shape if len(inputs) == 1 else []
        batch_ok = len(shape) == 4 and (shape[0] == 1 or not isinstance(shape[0], int))  # 1 or symbolic
        size_ok = all(isinstance(d, int) and d >= 32 and d % 32 == 0 for d in shape[2:])
        if not (batch_ok and size_ok and shape[1] == 3 and inputs[0].type == "tensor(float)"):
            found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise ModelError(
                f"model file {self.model_path} has input {found}, expected one float input [1, 3, H, W] "
                "with H and W fixed multiples of 32: export the YOLOX model with a fixed input size"
            )
        return inputs[0].name, (shape[2], shape[3])

    def _check_output(self) -> str:
        outputs = self.session.get_outputs()
        height, width = self.input_size
        expected = [1, anchor_count(height, width), 5 + len(self.labels)]
        shape = outputs[0].shape
        if len(outputs) == 1 and len(shape) == 3 and shape[:2] == expected[:2] and isinstance(shape[2], int):
            if shape[2] == expected[2]:
                return outputs[0].name
            raise ModelError(
                f"model file {self.model_path} predicts {shape[2] - 5} classes but {len(self.labels)} labels "
                "were given: pass the labels file that belongs to this model"
            )
        found = ", ".join(f"{o.name} {o.shape}" for o in outputs)
        raise ModelError(
            f"model file {self.model_path} has output {found}, expected {expected} for a {height}x{width} "
            "YOLOX model (x, y, w, h, objectness, class scores per anchor of strides 8, 16, 32): "
            "export it without NMS or decoding inside the graph"
        )

    def scale_for(self, frame: np.ndarray) -> float:
        """The letterbox factor ``r`` for a frame: model pixels = frame pixels x ``r``."""
        height, width = self.input_size
        return min(height / frame.shape[0], width / frame.shape[1])

    def _prepare(self, frame_shape: tuple[int, int]) -> None:
        """(Re)allocate the resize buffers for a new frame size; the margin goes back to the pad value."""
        height, width = self.input_size
        self._scale = min(height / frame_shape[0], width / frame_shape[1])
        # int(), not round(): the same resized size as the YOLOX reference preprocessing
        new_h = max(1, min(height, int(frame_shape[0] * self._scale)))
        new_w = max(1, min(width, int(frame_shape[1] * self._scale)))
        self._tensor.fill(PAD_VALUE)
        self._resized = np.empty((new_h, new_w, 3), np.uint8)
        self._planes = [np.empty((new_h, new_w), np.uint8) for _ in range(3)]
        self._regions = [self._tensor[0, c, :new_h, :new_w] for c in range(3)]
        self._frame_shape = frame_shape

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """Letterbox a BGR frame into the model's input tensor and return it.

        The returned array is the detector's own buffer, overwritten by the next call.
        """
        check_frame(frame)
        if frame.shape[:2] != self._frame_shape:
            self._prepare(frame.shape[:2])
        resized = self._resized
        cv2.resize(frame, (resized.shape[1], resized.shape[0]), dst=resized, interpolation=cv2.INTER_LINEAR)
        # split + per-plane uint8->float32 copy measured fastest (0.22 ms) against a fused
        # np.copyto of the transposed view (0.28 ms) and cv2.dnn.blobFromImage (2.2 ms, allocates)
        cv2.split(resized, self._planes)
        for plane, region in zip(self._planes, self._regions, strict=True):
            np.copyto(region, plane, casting="unsafe")
        return self._tensor

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """The raw model output ``[1, N, 5 + C]`` for an input tensor from :meth:`preprocess`."""
        return self.session.run([self.output_name], {self.input_name: tensor})[0]

    def postprocess(
        self, output: np.ndarray, scale: float, frame_shape: tuple[int, int] | None = None
    ) -> list[Detection]:
        """Detections (best first) from a raw output; ``scale`` is :meth:`scale_for` of the frame.

        Boxes are divided by ``scale`` into frame pixels and clipped to ``frame_shape`` (height, width)
        when it is given.
        """
        rows = output[0]
        threshold = self.score_threshold
        # objectness bounds the score (class scores are <= 1): a cheap first cut over all anchors
        index = np.flatnonzero(rows[:, 4] > threshold)
        if index.size == 0:
            return []
        candidates = rows[index]
        class_scores = candidates[:, 5:]
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(index.size), class_ids] * candidates[:, 4]
        keep = scores > threshold
        if not keep.any():
            return []
        index, candidates, class_ids, scores = index[keep], candidates[keep], class_ids[keep], scores[keep]
        stride = self._strides[index, None]
        centre = (candidates[:, 0:2] + self._cells[index]) * stride
        size = np.exp(candidates[:, 2:4]) * stride
        corners = np.concatenate((centre - size / 2, centre + size / 2), axis=1) / scale
        if frame_shape is not None:
            np.clip(corners[:, 0::2], 0, frame_shape[1], out=corners[:, 0::2])
            np.clip(corners[:, 1::2], 0, frame_shape[0], out=corners[:, 1::2])
        xywh = np.concatenate((corners[:, :2], corners[:, 2:] - corners[:, :2]), axis=1)
        # OpenCV's stub asks for a sequence of boxes; the binding takes the N x 4 array as it is
        picked = cv2.dnn.NMSBoxesBatched(
            xywh,  # type: ignore[arg-type]
            scores,
            class_ids.astype(np.int32),
            threshold,
            self.nms_iou,
        )
        return [
            Detection(
                self.labels[class_ids[i]],
                int(class_ids[i]),
                float(scores[i]),
                (float(corners[i, 0]), float(corners[i, 1]), float(corners[i, 2]), float(corners[i, 3])),
            )
            for i in np.asarray(picked, dtype=np.int64).ravel()
        ]

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Detect objects in one BGR frame; boxes in the frame's pixels, best score first."""
        tensor = self.preprocess(frame_bgr)
        output = self.run(tensor)
        return self.postprocess(output, self._scale, frame_bgr.shape[:2])

    def __repr__(self) -> str:
        height, width = self.input_size
        return f"Detector({str(self.model_path)!r}, input {height}x{width}, {len(self.labels)} labels)"
