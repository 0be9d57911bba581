"""``type = "camera"``: a camera with on-node detection, tracking, counting and events (``inference``).

OpenCV and onnxruntime add ~45 MB to the process, which a node without a camera (a vessel, a river
gauge on 512 MB) should not pay: they are imported when a camera is built or checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, Strict, ValidationInfo, field_validator, model_validator

from common.clock import Clock
from common.config import ConfigPath, Section, resolve_path
from common.fields import TimeZoneName
from drivers.transport import EndOfStream
from edge.devices.base import CAMERA, FAIL, PASS, SKIP, BuildContext, CheckContext, CheckResult, DeviceType
from edge.health import Watched

if TYPE_CHECKING:
    from drivers.camera import CameraSource
    from inference.camera import Camera
    from inference.detector import Detector

__all__ = [
    "DEVICE",
    "CameraDriverConfig",
    "CameraEventConfig",
    "CountingLineConfig",
    "ZoneConfig",
    "build_camera",
    "build_detector",
    "build_source",
]

Point = Annotated[tuple[float, float], Strict(False)]
"""[x, y] in frame pixels (TOML has arrays, not tuples: hence not strict)."""


class CountingLineConfig(Section):
    """``[[drivers.NAME.lines]]``: a counting line from ``a`` to ``b`` in frame pixels."""

    name: str = Field(description="Name of the line in counts and events.", pattern=r"^[a-z0-9_-]{1,32}$")
    a: Point = Field(description="One end [x, y], pixels.", examples=[[0, 200]], strict=False)
    b: Point = Field(description="The other end [x, y], pixels.", examples=[[640, 200]], strict=False)
    in_name: str = Field(
        "in", description="Name of the direction counted as 'in'.", min_length=1, max_length=32
    )
    out_name: str = Field("out", description="Name of the other direction.", min_length=1, max_length=32)
    margin_px: float = Field(
        4.0, description="How far past the line an object must go to count.", ge=0, le=200
    )


class ZoneConfig(Section):
    """``[[drivers.NAME.zones]]``: a polygon in frame pixels."""

    name: str = Field(description="Name of the zone in events.", pattern=r"^[a-z0-9_-]{1,32}$")
    polygon: list[Point] = Field(
        description="Corners [[x, y], ...], pixels.", min_length=3, max_length=64, strict=False
    )


class CameraEventConfig(Section):
    """``[[drivers.NAME.events]]``: a rule that raises an event with a snapshot.

    ``zone_enter``: an object of ``groups`` enters ``zone``; ``line_cross``: one
    crosses ``line`` (in ``direction``, if set); ``count_above``: more than
    ``threshold`` of ``groups`` crossed ``line`` in one counting interval. ``hours``
    limits the rule to local hours [from, to) (``[18, 6]`` is the night).
    """

    name: str = Field(description="Name of the rule in events.", pattern=r"^[a-z0-9_-]{1,32}$")
    kind: Literal["zone_enter", "line_cross", "count_above"] = Field(description="What the rule watches.")
    groups: list[str] = Field(default_factory=list, description="Class groups it applies to; empty: all.")
    zone: str | None = Field(None, description="Zone of a zone_enter rule.")
    line: str | None = Field(None, description="Line of a line_cross or count_above rule.")
    direction: str | None = Field(None, description="Only crossings in this direction (line_cross).")
    threshold: int = Field(0, description="count_above: more than this many in an interval.", ge=0)
    hours: tuple[int, int] | None = Field(
        None, description="Local hours [from, to) when the rule applies.", strict=False
    )
    cooldown_s: float = Field(60.0, description="Least time between two events of the rule.", ge=0, le=86_400)

    @model_validator(mode="after")
    def _needs_its_target(self) -> CameraEventConfig:
        if self.kind == "zone_enter" and not self.zone:
            raise ValueError("a zone_enter rule needs 'zone'")
        if self.kind != "zone_enter" and not self.line:
            raise ValueError(f"a {self.kind} rule needs 'line'")
        if self.hours and not all(0 <= h <= 24 for h in self.hours):
            raise ValueError(f"hours {list(self.hours)} must be within 0..24")
        return self


class CameraDriverConfig(Section):
    """A camera with on-node detection, tracking, counting and events."""

    type: Literal["camera"] = Field(description="Driver kind.")
    source: str = Field(
        description="Video file (relative to this file), rtsp:// or http:// URL, or a device index like '0'.",
        min_length=1,
    )
    fps: float | None = Field(None, description="Most frames a second processed (None: all).", gt=0, le=120)
    loop: bool = Field(False, description="Start a video file over at its end.")
    model: ConfigPath = Field(description="ONNX detector of the YOLOX family; relative to this file.")
    labels: ConfigPath | None = Field(
        None, description="Class names, one a line (default: the model's name with .labels.txt)."
    )
    threads: int = Field(2, description="CPU threads for inference.", ge=1, le=16)
    optimization: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="onnxruntime graph optimisation level."
    )
    score_threshold: float = Field(0.35, description="Least detection score kept.", gt=0, lt=1)
    motion_gate: bool = Field(True, description="Skip inference on frames where nothing moved.")
    interval_s: int = Field(60, description="Counting interval.", ge=1, le=86_400)
    groups: dict[str, list[str]] | None = Field(
        None, description="Class groups (default: vehicles, people, boats) by model label."
    )
    lines: list[CountingLineConfig] = Field(
        default_factory=list, description="Counting lines.", max_length=16
    )
    zones: list[ZoneConfig] = Field(default_factory=list, description="Zones.", max_length=16)
    events: list[CameraEventConfig] = Field(default_factory=list, description="Event rules.", max_length=32)
    blur_people: bool = Field(True, description="Blur people in snapshots (privacy).")
    snapshot_max_bytes: int = Field(30_000, description="Largest snapshot JPEG.", ge=4_000, le=500_000)
    timezone: TimeZoneName = Field("Asia/Ho_Chi_Minh", description="Time zone of the rules' hours.")

    @field_validator("source")
    @classmethod
    def _resolve_source(cls, value: str, info: ValidationInfo) -> str:
        if value.isdigit() or "://" in value:
            return value
        return str(resolve_path(Path(value), info))

    @model_validator(mode="after")
    def _rules_name_known_lines_and_zones(self) -> CameraDriverConfig:
        lines, zones = {x.name for x in self.lines}, {z.name for z in self.zones}
        for rule in self.events:
            if rule.line and rule.line not in lines:
                raise ValueError(
                    f"event {rule.name!r} names line {rule.line!r}; expected one of {sorted(lines)}"
                )
            if rule.zone and rule.zone not in zones:
                raise ValueError(
                    f"event {rule.name!r} names zone {rule.zone!r}; expected one of {sorted(zones)}"
                )
        return self


def build_detector(cfg: CameraDriverConfig) -> Detector:
    """The detector of a camera's config; raises ``ModelError`` for a missing or unusable model."""
    from inference.detector import Detector

    return Detector(
        cfg.model,
        threads=cfg.threads,
        optimization=cfg.optimization,
        score_threshold=cfg.score_threshold,
        labels_path=cfg.labels,
    )


def build_source(cfg: CameraDriverConfig) -> CameraSource:
    """The frame source of a camera's config (a digit string is a device index)."""
    from drivers.camera import CameraSource

    return CameraSource(int(cfg.source) if cfg.source.isdigit() else cfg.source, fps=cfg.fps, loop=cfg.loop)


def build_camera(
    name: str, cfg: CameraDriverConfig, sink: Callable[[str, list], None], clock: Clock
) -> Camera:
    """The camera ``name`` of a node; raises ``ModelError`` for a missing or unusable model."""
    from inference.camera import Camera, EventRule, FramePipeline
    from inference.counting import DEFAULT_GROUPS, ClassGroups, CountingLine, Zone
    from inference.motion import MotionGate

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


def build(name: str, cfg: CameraDriverConfig, ctx: BuildContext) -> Watched:
    camera = build_camera(name, cfg, ctx.sink, ctx.clock)
    return Watched(camera, cfg.type, 0.0, camera.finite)


def check_camera(name: str, cfg: CameraDriverConfig, seconds: float) -> tuple[CheckResult, Any]:
    """The camera delivers a frame within ``seconds``: the result, and the frame's image (or None)."""
    from drivers.camera import CameraError

    label = f"camera {name}"
    hint = f"check drivers.{name}.source, the cable or network, and that the camera is on"
    deadline = time.monotonic() + seconds
    with build_source(cfg) as camera:
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = camera.read(timeout=left)
            except CameraError as exc:
                return CheckResult(label, FAIL, str(exc), hint), None
            except EndOfStream as exc:
                return CheckResult(label, FAIL, str(exc), hint), None
            if frame is not None:
                height, width = frame.image.shape[:2]
                return CheckResult(label, PASS, f"frame {width}x{height} from {camera.name}"), frame.image
    return CheckResult(label, FAIL, f"no frame from {camera.name} in {seconds:g} s", hint), None


def check_model(name: str, cfg: CameraDriverConfig, image: Any, budget_s: float) -> CheckResult:
    """The camera's model loads and detects on one frame within ``budget_s`` (load included)."""
    from inference.detector import ModelError

    label = f"model {name}"
    if image is None:
        return CheckResult(label, SKIP, "no frame from the camera to run the model on")
    started = time.monotonic()
    try:
        detections = build_detector(cfg).detect(image)
    except ModelError as exc:
        hint = f"copy the model onto the node or fix drivers.{name}.model"
        return CheckResult(label, FAIL, str(exc), hint)
    took = time.monotonic() - started
    detail = f"{cfg.model.name} loaded and ran in {took:.2f} s ({len(detections)} detections)"
    if took > budget_s:
        hint = f"too slow for this board: use a smaller model or fewer drivers.{name}.threads competitors"
        return CheckResult(label, FAIL, f"{detail}, over the {budget_s:g} s budget", hint)
    return CheckResult(label, PASS, detail)


def check(name: str, cfg: CameraDriverConfig, ctx: CheckContext) -> list[CheckResult]:
    """A frame from the camera, then its model run on that frame."""
    camera, image = check_camera(name, cfg, ctx.seconds)
    return [camera, check_model(name, cfg, image, ctx.seconds)]


DEVICE = DeviceType(CameraDriverConfig, build, check, CAMERA)
