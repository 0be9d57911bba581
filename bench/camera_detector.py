"""Cost of the camera detector's stages against the bare model, and what the motion gate saves.

Over the 250 frames of ``$IOC_EDGE_SHARED/media/bikes.mp4`` (default ``../shared``) with the
YOLOX-Nano model: video decode rate; letterbox time of :meth:`Detector.preprocess` against a naive
letterbox (``cv2.resize`` + ``np.full`` + ``astype(float32)`` + transposed copy); bare
``session.run`` on pre-made input tensors; :meth:`Detector.postprocess`; end-to-end
:meth:`Detector.detect` and its throughput over the bare ``session.run`` on the same frames
(``ratio_vs_raw``, the closer to 1 the less the detector adds); :class:`MotionGate` per frame; and
on a static clip (one frame with sensor noise, repeated) the throughput of gate-then-detect over
bare ``session.run`` (``gated_static_ratio_vs_raw``, target at least 5).

Run: ``python bench/camera_detector.py [--threads 2] [--optimization all]``. Prints one
``name: value unit`` figure a line (times are medians per frame); takes about 20 s on two cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import camera_inputs, figure, noisy_clip  # noqa: E402
from inference.detector import Detector  # noqa: E402
from inference.motion import MotionGate  # noqa: E402

SAMPLE_EVERY = 5  # pre-made tensors for every 5th frame: 250 of them would take 520 MB


def decode(video: Path) -> tuple[list[np.ndarray], float]:
    """All frames of the video and the decode rate in frames per second."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    start = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    elapsed = time.perf_counter() - start
    capture.release()
    return frames, len(frames) / elapsed


def naive_letterbox(frame: np.ndarray, height: int, width: int, transpose_first: bool = False) -> np.ndarray:
    """The letterbox as it is usually written: allocates the canvas and the tensor every frame."""
    r = min(height / frame.shape[0], width / frame.shape[1])
    resized = cv2.resize(frame, (int(frame.shape[1] * r), int(frame.shape[0] * r)))
    padded = np.full((height, width, 3), 114, np.uint8)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    if transpose_first:
        return np.ascontiguousarray(padded.transpose(2, 0, 1)[None].astype(np.float32))
    return np.ascontiguousarray(padded.astype(np.float32).transpose(2, 0, 1)[None])


def per_call(fn: Callable[[object], object], items: list) -> list[float]:
    """Seconds of each call of ``fn`` over ``items``, after one warm-up call."""
    fn(items[0])
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return times


def median(times: list[float]) -> float:
    """The median: robust to the moments another process takes the CPU (the boxes are shared)."""
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--optimization", default="all", help="disable, basic, extended or all")
    args = parser.parse_args()
    video, model = camera_inputs()
    detector = Detector(model, threads=args.threads, optimization=args.optimization)
    height, width = detector.input_size
    frames, decode_fps = decode(video)
    figure("frames", len(frames))
    figure("decode_fps", decode_fps, "fps")

    ours = median(per_call(detector.preprocess, frames))
    naive = median(per_call(lambda f: naive_letterbox(f, height, width), frames))
    # the same with the transpose before the conversion: a strided astype, the slow way round
    naive_strided = median(
        per_call(lambda f: naive_letterbox(f, height, width, transpose_first=True), frames)
    )
    figure("preprocess_ms", ours * 1e3, "ms")
    figure("naive_preprocess_ms", naive * 1e3, "ms")
    figure("naive_transpose_first_preprocess_ms", naive_strided * 1e3, "ms")
    figure("preprocess_speedup", naive / ours)

    sample = frames[::SAMPLE_EVERY]
    tensors = [naive_letterbox(f, height, width) for f in sample]
    session, feed = detector.session, detector.input_name
    # Bare run and full detect alternate frame by frame, so that another process taking the CPU for
    # a while hurts both alike; the medians then compare like with like.
    raw_times, detect_times = [], []
    session.run(None, {feed: tensors[0]})
    detector.detect(sample[0])
    for i in range(len(frames)):
        tensor, frame = tensors[i % len(tensors)], sample[i % len(sample)]
        start = time.perf_counter()
        session.run(None, {feed: tensor})
        middle = time.perf_counter()
        detector.detect(frame)
        detect_times.append(time.perf_counter() - middle)
        raw_times.append(middle - start)
    raw_s, detect_s = median(raw_times), median(detect_times)
    outputs = [
        (detector.run(t).copy(), detector.scale_for(f), f.shape[:2])
        for t, f in zip(tensors, sample, strict=True)
    ]
    post = median(per_call(lambda o: detector.postprocess(*o), outputs * SAMPLE_EVERY))
    figure("raw_run_ms", raw_s * 1e3, "ms")
    figure("postprocess_ms", post * 1e3, "ms")
    figure("detect_ms", detect_s * 1e3, "ms")
    figure("detect_fps", 1 / detect_s, "fps")
    figure("ratio_vs_raw", raw_s / detect_s)
    figure("detections", sum(len(detector.detect(f)) for f in frames))

    gate = MotionGate()
    figure("motion_us", median(per_call(gate.moved, frames)) * 1e6, "us")
    moved = [gate.moved(f) for f in frames]
    figure("clip_frames_moved", sum(moved))

    static = noisy_clip(frames[120], 50) * 5
    gate, detected = MotionGate(), 0

    def gated(frame: np.ndarray) -> None:
        nonlocal detected
        if gate.moved(frame):
            detector.detect(frame)
            detected += 1

    gated_s = median(per_call(gated, static))
    figure("static_frames_detected", detected)
    figure("gated_static_fps", 1 / gated_s, "fps")
    figure("gated_static_ratio_vs_raw", raw_s / gated_s)


if __name__ == "__main__":
    main()
