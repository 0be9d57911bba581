"""A camera component built from its config section: the one place that knows both."""

from __future__ import annotations

from collections.abc import Callable

from common.clock import Clock
from drivers.camera import CameraSource
from edge.config import CameraDriverConfig
from inference.camera import Camera, EventRule, FramePipeline
from inference.counting import DEFAULT_GROUPS, ClassGroups, CountingLine, Zone
from inference.detector import Detector
from inference.motion import MotionGate


def build_detector(cfg: CameraDriverConfig) -> Detector:
    """The detector of a camera's config; raises ``ModelError`` for a missing or unusable model."""
    return Detector(
        cfg.model,
        threads=cfg.threads,
        optimization=cfg.optimization,
        score_threshold=cfg.score_threshold,
        labels_path=cfg.labels,
    )


def build_source(cfg: CameraDriverConfig) -> CameraSource:
    """The frame source of a camera's config (a digit string is a device index)."""
    return CameraSource(int(cfg.source) if cfg.source.isdigit() else cfg.source, fps=cfg.fps, loop=cfg.loop)


def build_camera(
    name: str, cfg: CameraDriverConfig, sink: Callable[[str, list], None], clock: Clock
) -> Camera:
    """The camera ``name`` of a node; raises ``ModelError`` for a missing or unusable model."""
    pipeline = FramePipeline(
        name,
        build_detector(cfg),
        clock,
        gate=MotionGate() if cfg.motion_gate else None,
        lines=[CountingLine(x.name, x.a, x.b, x.in_name, x.out_name, x.margin_px) for x in cfg.lines],
        zones=[Zone(z.name, z.polygon) for z in cfg.zones],
        groups=ClassGroups(cfg.groups or DEFAULT_GROUPS),
        rules=[EventRule(**r.model_dump(exclude={"groups"}), groups=frozenset(r.groups)) for r in cfg.events],
        blur_people=cfg.blur_people,
        snapshot_max_bytes=cfg.snapshot_max_bytes,
        timezone=cfg.timezone,
    )
    return Camera(name, build_source(cfg), pipeline, sink, clock, cfg.interval_s)
