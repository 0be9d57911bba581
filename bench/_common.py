"""Helpers shared by the bench scripts: figure printing, disk-write accounting and generated data."""

from __future__ import annotations

import math
import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.records import Position, Reading, TimeSource  # noqa: E402

SHARED = Path(os.environ.get("IOC_EDGE_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def camera_inputs() -> tuple[Path, Path]:
    """``bikes.mp4`` and ``yolox_nano.onnx`` from the shared data; exits with a message when absent."""
    video, model = SHARED / "media" / "bikes.mp4", SHARED / "models" / "yolox_nano.onnx"
    missing = [str(p) for p in (video, model) if not p.is_file()]
    if missing:
        sys.exit(f"{' and '.join(missing)} not found: set IOC_EDGE_SHARED to the shared/ directory")
    return video, model


def figure(name: str, value: float, unit: str = "") -> None:
    """Print one figure as ``name: value unit``."""
    text = f"{value:.3f}" if isinstance(value, float) and abs(value) < 100 else f"{value:.0f}"
    print(f"{name}: {text} {unit}".rstrip(), flush=True)


def disk_writes() -> int:
    """Bytes this process has caused to be written to storage so far (Linux /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def vessel_track(n: int, seed: int = 1, t0_ms: int = 1_764_000_000_000) -> list[Position]:
    """A vessel under way at 1 Hz: ~6 kn with slow turns, GPS error as a correlated (Gauss-Markov) walk."""
    rng = random.Random(seed)
    lat, lon, heading, speed = 16.55, 107.65, 40.0, 6.0
    err_n = err_e = 0.0
    a = math.exp(-1 / 60)  # error correlation time ~ 60 s, as for a consumer receiver
    out = []
    for i in range(n):
        heading = (heading + rng.gauss(0, 0.5)) % 360
        speed = max(0.5, speed + 0.01 * (6.0 - speed) + rng.gauss(0, 0.05))
        d = speed * 0.5144
        lat += d * math.cos(math.radians(heading)) / 111_320
        lon += d * math.sin(math.radians(heading)) / (111_320 * math.cos(math.radians(lat)))
        err_n = a * err_n + rng.gauss(0, 2.0 * math.sqrt(1 - a * a))
        err_e = a * err_e + rng.gauss(0, 2.0 * math.sqrt(1 - a * a))
        out.append(
            Position(
                t0_ms + i * 1000,
                TimeSource.GPS,
                t0_ms + i * 1000 + rng.randint(0, 40),
                round(lat + err_n / 111_320, 7),
                round(lon + err_e / (111_320 * math.cos(math.radians(lat))), 7),
                round(abs(speed + rng.gauss(0, 0.1)), 2),
                round((heading + rng.gauss(0, 1.5)) % 360, 1),
                1,
                rng.choice((9, 10, 10, 11)),
                round(0.8 + abs(rng.gauss(0, 0.1)), 2),
                round(3.0 + rng.gauss(0, 0.8), 1),
            )
        )
    return out


def sensor_readings(n: int, seed: int = 2, t0_ms: int = 1_764_000_000_000) -> list[Reading]:
    """PM2.5 from one sensor every second: a slow diurnal drift plus sensor noise of ~1 ug/m3."""
    rng = random.Random(seed)
    return [
        Reading(
            t0_ms + i * 1000,
            TimeSource.NTP,
            t0_ms + i * 1000,
            "pm-1",
            "pm25",
            round(max(0.0, 35 + 15 * math.sin(i / 6000) + rng.gauss(0, 1.0)), 1),
        )
        for i in range(n)
    ]


def noisy_clip(frame: np.ndarray, count: int, sigma: float = 10.0) -> list[np.ndarray]:
    """``count`` copies of one frame, each with its own gaussian sensor noise: a static scene."""
    import numpy as np  # here: bench/sensors.py measures a node's memory, which has no numpy

    rng = np.random.default_rng(1)
    base = frame.astype(np.float32)
    return [np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]
