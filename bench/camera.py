"""The camera pipeline as a node runs it, against the bare model; the motion gate on a still scene; memory.

Over ``$IOC_EDGE_SHARED/media/bikes.mp4`` (default ``../shared``; 250 frames, 640x272) with the
YOLOX-Nano model, a camera built from a node config (``edge.devices.camera.build_camera``):

1. ``pipeline_fps``: every frame of the clip through the whole path of a node: ``CameraSource``
   decode (no fps cap), motion gate, ``Detector`` (letterbox, onnxruntime, box decode), ``Tracker``,
   a counting line with a ``line_cross`` event rule (snapshots), counts every second, all committed
   to a real SQLite store by the ``Recorder``; against ``raw_fps``: that camera's own onnxruntime
   session (same threads and optimisation level) alone, ``session.run`` on pre-made input tensors
   of the same frames, taking turns with the pipeline frame by frame in the camera's thread (the
   two cores are shared: a process taking the CPU for a while hurts both alike). Totals over
   ``--rounds`` passes. ``ratio_vs_raw`` = pipeline / raw, target at least 0.85.
2. ``static_fps``: a still scene the bench makes (one frame of the clip with sensor noise,
   encoded as a 500-frame MPEG-4 video) through the same pipeline with the motion gate on;
   ``static_ratio_vs_raw`` against the raw figure of part 1 (target at least 5), and the fraction
   of frames that ran the model.
3. ``node_rss_mb``: peak RSS (``VmHWM``) of a real node (``python -m edge run``, its uplink to a
   private mosquitto and a receiver, ``python -m ioc run``, acking into SQLite) whose camera
   replays the clip in a loop with the real model, after ``--node-seconds``; target at most
   150 MB. Also the counts and events the receiver stored.

Run: ``python bench/camera.py [--rounds 2] [--node-seconds 25]``. Prints one ``name: value unit``
figure a line; each target as ``target_*`` with ``*_met`` 1 or 0. About a minute on two cores.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import camera_inputs, figure, noisy_clip  # noqa: E402
from common.clock import Clock  # noqa: E402
from drivers.camera import CameraSource, EndOfStream, Frame  # noqa: E402
from edge.config import NodeConfig, parse_config  # noqa: E402
from edge.devices.camera import build_camera  # noqa: E402
from edge.runtime import open_store  # noqa: E402
from inference.camera import Camera  # noqa: E402
from inference.detector import Detector  # noqa: E402
from ioc.broker import PrivateBroker, free_port  # noqa: E402
from ioc.db import Database  # noqa: E402
from sync.recorder import Recorder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAMERA = "street"
TARGET_RATIO, TARGET_STATIC_RATIO, TARGET_RSS_MB = 0.85, 5.0, 150
STATIC_FRAME = 120  # a frame with cars, cyclists and people in view: the tracker has work to do
STATIC_FRAMES, STATIC_DISTINCT = 500, 50  # 50 noise patterns, repeated: noisy_clip holds them in memory
STATIC_SIGMA = 5.0  # grey levels of sensor noise: a daylight camera, before its own encoder smooths it


def node_toml(
    state_dir: Path, video: Path, model: Path, *, port: int | None = None, loop: bool = False
) -> str:
    """A camera node: no fps cap, motion gate on (the default), a counting line with an event rule.

    With ``port`` the uplink goes to a broker there and the metrics endpoint is on (on a free
    port: other nodes may run on this machine); without, both are off and the records end in
    the store.
    """
    if port:
        network = f"[uplink]\nport = {port}\nbackoff_min_s = 0.2\n\n[metrics]\nport = {free_port()}"
    else:
        network = "[uplink]\nenabled = false\n\n[metrics]\nenabled = false"
    return f"""
[node]
device_id = "bench-cam"
state_dir = "{state_dir}"

[store]
status_interval_s = 5

{network}

[drivers.{CAMERA}]
type = "camera"
source = "{video}"
model = "{model}"
loop = {str(loop).lower()}
interval_s = 1

[[drivers.{CAMERA}.lines]]
name = "mid"
a = [320, 0]
b = [320, 272]

[[drivers.{CAMERA}.events]]
name = "crossing"
kind = "line_cross"
line = "mid"
cooldown_s = 0
"""


def camera_config(workdir: Path, video: Path, model: Path) -> NodeConfig:
    return parse_config(node_toml(workdir / "state", video, model), "bench.toml", workdir)


def input_tensors(video: Path, detector: Detector) -> list[np.ndarray]:
    """The model input of every frame of ``video``, letterboxed once, ahead of the timed runs."""
    source, tensors = CameraSource(str(video)), []
    try:
        while True:
            frame = source.read(timeout=1.0)
            if frame is not None:
                tensors.append(detector.preprocess(frame.image).copy())
    except EndOfStream:
        return tensors
    finally:
        source.close()


class RawTurns:
    """Runs the camera's bare session on the next pre-made tensor before each frame its source reads.

    It wraps the source's ``read``, so raw and pipeline take turns frame by frame in the camera's
    own thread: another process taking the CPU for a while hurts both alike (the two cores are
    shared). Tensor ``i`` runs before frame ``i``; ``times`` are the seconds of each bare run.
    """

    def __init__(self, camera: Camera, tensors: list[np.ndarray]) -> None:
        self._read = camera.source.read
        self._session, self._feed = camera.pipeline.detector.session, camera.pipeline.detector.input_name
        self._tensors = tensors
        self.times: list[float] = []
        camera.source.read = self

    def __call__(self, timeout: float) -> Frame | None:
        if len(self.times) < len(self._tensors):  # not on the read that finds the end of the video
            start = time.perf_counter()
            self._session.run(None, {self._feed: self._tensors[len(self.times)]})
            self.times.append(time.perf_counter() - start)
        return self._read(timeout)


def pipeline_run(
    config: NodeConfig, tensors: list[np.ndarray] | None
) -> tuple[float, list[float], Counter[str]]:
    """Seconds of a camera built from ``config`` going through its whole video into the store.

    With ``tensors``, the bare session takes turns with it (:class:`RawTurns`): its times come
    second and are not in the first. The counters are the pipeline's (``frames``, ``inferences``,
    ``events``) and the counts and events committed to the store.
    """
    recorder = Recorder(lambda: open_store(config), config.store.flush_interval_s, config.store.flush_records)
    camera = build_camera(CAMERA, config.drivers[CAMERA], recorder.append, Clock())
    # warm the session up (any frame does), as on a node that has been running: the first run
    # allocates onnxruntime's arena
    camera.pipeline.detector.detect(np.zeros((272, 640, 3), np.uint8))
    raw = RawTurns(camera, tensors) if tensors else None
    recorder.start()
    start = time.perf_counter()
    camera.start()
    while camera.running:
        time.sleep(0.002)
    recorder.stop()  # its last commit belongs to the work
    elapsed = time.perf_counter() - start
    camera.stop()
    store = open_store(config)
    backlog = store.backlog()
    store.close()
    stats = Counter(camera.pipeline.stats)
    stats.update(stored_counts=backlog.get("count", 0), stored_events=backlog.get("event", 0))
    raw_times = raw.times if raw else []
    return elapsed - sum(raw_times), raw_times, stats


def write_static_clip(path: Path, video: Path) -> None:
    """A still scene: frame ``STATIC_FRAME`` of ``video`` with fresh sensor noise in every frame."""
    capture = cv2.VideoCapture(str(video))
    for _ in range(STATIC_FRAME + 1):
        ok, frame = capture.read()
    capture.release()
    height, width = frame.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    clip = noisy_clip(frame, STATIC_DISTINCT, STATIC_SIGMA)
    for i in range(STATIC_FRAMES):
        writer.write(clip[i % STATIC_DISTINCT])
    writer.release()


def pipeline_vs_raw(video: Path, model: Path, workdir: Path, rounds: int) -> float:
    """Part 1; returns the raw frames per second."""
    config = camera_config(workdir / "tensors", video, model)
    cfg = config.drivers[CAMERA]
    tensors = input_tensors(video, Detector(model, threads=cfg.threads, optimization=cfg.optimization))
    pipeline_s, raw_times, stats = 0.0, [], Counter()
    for i in range(rounds):
        elapsed, times, counters = pipeline_run(camera_config(workdir / f"round-{i}", video, model), tensors)
        pipeline_s, stats = pipeline_s + elapsed, stats + counters
        raw_times += times
    raw_fps, pipeline_fps = len(raw_times) / sum(raw_times), stats["frames"] / pipeline_s
    figure("frames", stats["frames"] // rounds)
    figure("rounds", rounds)
    figure("raw_fps", raw_fps, "fps")
    figure("pipeline_fps", pipeline_fps, "fps")
    figure("ratio_vs_raw", pipeline_fps / raw_fps)
    figure("target_ratio_vs_raw", TARGET_RATIO)
    figure("ratio_vs_raw_met", int(pipeline_fps / raw_fps >= TARGET_RATIO))
    figure("pipeline_inference_fraction", stats["inferences"] / stats["frames"])
    figure("pipeline_events", stats["events"] // rounds)
    figure("pipeline_stored_counts", stats["stored_counts"] // rounds)
    figure("pipeline_stored_events", stats["stored_events"] // rounds)
    return raw_fps


def static_scene(video: Path, model: Path, workdir: Path, rounds: int, raw_fps: float) -> None:
    """Part 2: the motion gate on a still scene, against the raw figure of part 1."""
    clip = workdir / "static.mp4"
    write_static_clip(clip, video)
    elapsed, stats = 0.0, Counter()
    for i in range(rounds):
        seconds, _, counters = pipeline_run(camera_config(workdir / f"static-{i}", clip, model), None)
        elapsed, stats = elapsed + seconds, stats + counters
    fps = stats["frames"] / elapsed
    figure("static_frames", stats["frames"] // rounds)
    figure("static_fps", fps, "fps")
    figure("static_ratio_vs_raw", fps / raw_fps)
    figure("target_static_ratio_vs_raw", TARGET_STATIC_RATIO)
    figure("static_ratio_vs_raw_met", int(fps / raw_fps >= TARGET_STATIC_RATIO))
    figure("static_inference_fraction", stats["inferences"] / stats["frames"])


def proc_status_kb(pid: int, *fields: str) -> list[int]:
    """``VmRSS``, ``VmHWM``, ... of process ``pid`` in kB, from ``/proc/PID/status``."""
    values = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return [int(values[f].split()[0]) for f in fields]


def node_memory(video: Path, model: Path, workdir: Path, seconds: float) -> None:
    """Part 3: a real node in its own process, its camera looping over the clip, syncing to a receiver."""
    ioc_db = f"sqlite:///{workdir / 'ioc.db'}"
    with PrivateBroker(workdir / "broker") as broker:
        config = workdir / "node.toml"
        config.write_text(node_toml(workdir / "node-state", video, model, port=broker.port, loop=True))
        log = (workdir / "node.log").open("w")
        receiver = subprocess.Popen(
            [sys.executable, "-m", "ioc", "run", "--mqtt-port", str(broker.port), "--db", ioc_db]
            + ["--metrics-port", "0", "--client-id", "bench-camera-ioc"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        node = subprocess.Popen(
            [sys.executable, "-m", "edge", "--log-level", "INFO", "run", str(config)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            start, early_rss = time.monotonic(), None
            while time.monotonic() - start < seconds and node.poll() is None:
                time.sleep(0.5)
                if early_rss is None and time.monotonic() - start >= seconds / 3:
                    (early_rss,) = proc_status_kb(node.pid, "VmRSS")
            if node.poll() is not None:
                tail = (workdir / "node.log").read_text()[-2000:]
                sys.exit(f"the node exited early (exit {node.returncode}); the log ends:\n{tail}")
            rss, peak = proc_status_kb(node.pid, "VmRSS", "VmHWM")
        finally:
            for process in (node, receiver):
                stop(process)
            log.close()
    db = Database(ioc_db)
    received = {stream: db.count(stream) for stream in ("count", "event")}
    db.close()
    figure("node_seconds", seconds, "s")
    figure("node_rss_mb", peak / 1024, "MB")
    figure("node_rss_end_mb", rss / 1024, "MB")
    figure("node_rss_growth_mb", (rss - (early_rss or rss)) / 1024, "MB")
    figure("target_node_rss_mb", TARGET_RSS_MB, "MB")
    figure("node_rss_mb_met", int(peak / 1024 <= TARGET_RSS_MB))
    figure("node_counts_at_ioc", received["count"])
    figure("node_events_at_ioc", received["event"])


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, as systemd stops the node; SIGKILL if it has not ended within 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over each clip")
    parser.add_argument("--node-seconds", type=float, default=25.0, help="how long the node runs")
    args = parser.parse_args()
    video, model = camera_inputs()
    with tempfile.TemporaryDirectory(prefix="bench-camera-") as tmp:
        workdir = Path(tmp)
        raw_fps = pipeline_vs_raw(video, model, workdir, args.rounds)
        static_scene(video, model, workdir, args.rounds, raw_fps)
        node_memory(video, model, workdir, args.node_seconds)


if __name__ == "__main__":
    main()
