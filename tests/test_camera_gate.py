"""The motion gate saves inference without changing what is counted: the real model on bikes.mp4.

bikes.mp4 is filmed hand-held: every frame differs from the background by 3 % of its area or
more, so the gate never skips one and on the clip as it is both runs agree trivially. The street
here therefore stands still for a while, as a real one does: frames held, with sensor noise, before
the crossings and in the middle of them (the bicycle about to cross, the pedestrian just in view).
On those frames the gated pipeline does not run the detector, and its tracks must come through
the pause unharmed. Frames 160..215 only (the bicycle crosses the middle at 192, the pedestrian
at 198), to keep the test under ten seconds: the whole clip twice takes about fifteen here.
"""

from __future__ import annotations

import numpy as np

from common.clock import Clock
from drivers.camera import Frame
from inference.camera import FramePipeline
from inference.counting import CountingLine
from inference.detector import Detector
from inference.motion import MotionGate

LINES = [
    CountingLine("x160", (160, 0), (160, 272)),
    CountingLine("mid", (320, 0), (320, 272)),
    CountingLine("x480", (480, 0), (480, 272)),
]


def held(frame: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``frame`` ``count`` times, each with its own sensor noise (sigma 4 grey levels)."""
    noisy = [
        frame.astype(np.int16) + rng.normal(0, 4, frame.shape).round().astype(np.int16) for _ in range(count)
    ]
    return [np.clip(f, 0, 255).astype(np.uint8) for f in noisy]


def counts(pipeline: FramePipeline, clip: list[np.ndarray]) -> dict[tuple[str, str, str], int]:
    for index, image in enumerate(clip):
        pipeline.process(Frame(index, image, None))
    return {tuple(c[4:7]): c.count for c in pipeline.take_counts(0, 60)[0]}


def test_counts_per_line_group_and_direction_are_the_same_with_and_without_the_gate(shared_dir, frames):
    rng = np.random.default_rng(7)
    clip = held(frames[160], 30, rng) + frames[160:191] + held(frames[190], 50, rng) + frames[191:216]
    detector = Detector(shared_dir / "models" / "yolox_nano.onnx")
    plain = FramePipeline("street", detector, Clock(), lines=LINES)
    gated = FramePipeline("street", detector, Clock(), lines=LINES, gate=MotionGate())

    expected, got = counts(plain, clip), counts(gated, clip)

    assert got == expected
    assert expected[("mid", "vehicles", "out")] == 1 and expected[("mid", "people", "out")] == 1
    assert sum(expected.values()) >= 3  # more than the middle line counts something
    assert plain.stats["inferences"] == len(clip) == 136
    # the pauses were skipped: the first frame runs, then only until the background has caught up
    assert gated.stats["inferences"] <= 0.7 * len(clip), gated.stats
