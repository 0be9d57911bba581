"""The API's answers as pydantic models: they are its OpenAPI description (/api/v1/openapi.json).

Times are UTC milliseconds (``*_ms``); ``tsrc`` is where a record's time came
from: 1 GPS, 2 NTP, 3 the node's free-running clock.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, create_model

from sync.wire import STREAMS

T = TypeVar("T")


class ListPage(BaseModel, Generic[T]):
    """One page of a list; ``next_offset`` is the ``offset`` of the next page, null on the last."""

    items: list[T]
    next_offset: int | None = None


class Items(BaseModel, Generic[T]):
    """A whole (short) list."""

    items: list[T]


class Error(BaseModel):
    """Every 4xx answer: a message that names the parameter or what to do."""

    detail: str


class Record(BaseModel):
    """What identifies a record: the device, its store epoch and its sequence number there."""

    device: str
    epoch: str
    seq: int
    ts_ms: int
    tsrc: int


_TYPES = {"int": int, "fixed": float, "text": str}


def _stream_item(name: str, stream: str, drop: tuple[str, ...] = (), **extra: Any) -> type[BaseModel]:
    """An item with the columns of a synced stream after the stamp, so the API and the wire cannot drift.

    ``drop``: columns the API shows otherwise (a box for ``x1..y2``, a URL for a JPEG); ``extra``:
    fields the centre adds, as ``create_model`` takes them.
    """
    fields: dict[str, Any] = {}
    for column in STREAMS[stream].columns[3:]:
        if column.name not in drop:
            kind = _TYPES[column.kind]
            fields[column.name] = (kind | None if column.nullable else kind, ...)
    return create_model(name, __base__=Record, **fields, **extra)


PositionItem = _stream_item("PositionItem", "position")
CountItem = _stream_item("CountItem", "count")
EventItem = _stream_item(
    "EventItem",
    "event",
    drop=("x1", "y1", "x2", "y2", "jpeg"),
    box=(list[int], Field(description="[x1, y1, x2, y2] in the frame's pixels.")),
    snapshot_url=(str, ...),
)
SummaryItem = _stream_item(
    "SummaryItem",
    "summary",
    aqi=(int | None, Field(description="VN_AQI of the mean (pm25 and pm10 only).")),
    aqi_band=(str | None, Field(description="Key of the AQI band (see /api/v1/settings aqi_bands).")),
)
VesselItem = _stream_item(
    "VesselItem",
    "position",
    drop=("alt_m",),
    age_s=(float, Field(description="Seconds since the position's time.")),
)


class AlarmItem(Record):
    id: str = Field(description="device/epoch/seq: the path of its ack.")
    source: str
    kind: str
    state: int = Field(description="1 raised, 0 cleared.")
    value: float | None
    message: str
    open: bool = Field(
        description="A raise that no later record of the same device, source and kind cleared."
    )
    cleared_ms: int | None = Field(description="Time of the record that cleared this raise.")
    acked_by: str | None
    acked_ms: int | None
    note: str | None


class NodeItem(BaseModel):
    device: str
    online: bool
    last_seen_ms: int = Field(description="When the centre last stored anything from it.")
    epoch: str | None
    status_ts_ms: int | None = Field(description="Time of its latest status report.")
    tsrc: int | None
    version: str | None
    backlog: dict = Field(description="Records waiting on the node, by stream.")
    drops: dict = Field(description="Records the node dropped (store full), by stream.")
    rejects: dict = Field(description="Frames its drivers refused: {driver: {reason: count}}.")
    failed_drivers: dict = Field(description="Drivers that could not start: {driver: error}.")
    counters: dict


class TrackChainItem(BaseModel):
    epoch: str = Field(description="The chain: the node's store epoch when it began.")
    last_idx: int = Field(description="The last record followed (-1: none yet).")
    last_ts_ms: int | None = Field(description="Its time.")
    verified_idx: int = Field(description="The last record proven by a signature (-1: none yet).")
    waiting: int = Field(description="Records received past it: waiting for a signature or a missing record.")
    newest_idx: int | None = Field(description="The newest record stored (null: none yet).")
    ca_checked: bool = Field(description="Whether signatures were checked against the device CA.")
    first_seen_ms: int
    updated_ms: int


class TrackFlagItem(BaseModel):
    epoch: str
    idx: int = Field(description="The record the flag is about.")
    kind: str = Field(description="break, gap, bad_signature or new_chain.")
    ts_ms: int | None
    detail: str
    flagged_ms: int


class TrackOut(BaseModel):
    device: str
    chains: list[TrackChainItem] = Field(description="Its track chains, newest first.")
    flags: list[TrackFlagItem] = Field(description="Its newest flags, newest first.")


class CommissioningOut(BaseModel):
    device: str
    epoch: str
    seq: int
    ts_ms: int = Field(description="When the self-test ran, by the node's clock (see tsrc).")
    tsrc: int
    received_ms: int
    verdict: str = Field(
        description="The centre's judgement of the record's signature: valid, invalid, unsigned or unchecked."
    )
    detail: str = Field(description="Why: whose key signed it, or what does not verify.")
    ca_checked: bool = Field(description="Whether the certificate chain was checked against the device CA.")
    checked_ms: int | None
    report: dict | None = Field(
        description="The self-test as signed: device, site, version, time, time_source, operator, passed, "
        "checks [{name, status, detail, hint}]; null when not JSON."
    )
    signed_ms: int | None = Field(
        description="When the self-test ran as signed in the record (ts_ms is the unsigned wire time); "
        "null when the record is not signed."
    )
    time_mismatch: str | None = Field(
        description="Set when the wire times (ts_ms, clock_ms) differ from the signed ones: a replayed "
        "old self-test; null otherwise."
    )


class RejectItem(BaseModel):
    reason: str
    count: int


class Me(BaseModel):
    username: str
    role: str = Field(description="viewer or operator")


class SignedIn(Me):
    """POST /login's answer to JSON: who signed in and where the page goes next."""

    next: str = Field(description="The `next` parameter when it is a path on this site, else /.")


class AqiBand(BaseModel):
    key: str
    min: int
    max: int
    label_vi: str
    label_en: str
    color: str


class Threshold(BaseModel):
    warn: float
    alarm: float


class SettingsOut(BaseModel):
    timezone: str
    tile_url: str | None = Field(description="Map tile URL template; null: no tiles.")
    online_after_s: int
    aqi_bands: list[AqiBand]
    water_level_thresholds: dict[str, Threshold]


class Ack(BaseModel):
    id: str
    acked_by: str
    acked_ms: int
    note: str


class CommandItem(BaseModel):
    """A command to a node as the centre holds it: its state follows the node's answers."""

    device: str
    seq: int = Field(description="The device's command number: 1, 2, ...")
    kind: str
    body: dict[str, Any]
    issuer: str = Field(description="Who issued it.")
    issued_ms: int
    expires_ms: int
    state: str = Field(
        description="queued (not sent yet), sent (no answer yet), delivered (the node accepted it), "
        "applied, refused or expired."
    )
    reason: str = Field(description="Why it was refused or expired (snake_case); empty otherwise.")
    details: str = Field(description="The node's answer: JSON text (applied) or its message (refused).")
    epoch: str | None = Field(description="The node's store epoch it was last signed for; null until sent.")
    sent_count: int = Field(description="How often it was published.")
    last_sent_ms: int | None
    result_ms: int | None = Field(description="When its latest answer (or its expiry) was recorded.")


class AuditItem(BaseModel):
    """One entry of the centre's audit log (``ioc.audit``): who did what to which node, and the result."""

    id: int
    at_ms: int
    user: str
    action: str = Field(description="command.send, config.push, config.adopt, label.set or label.remove.")
    target: str = Field(description="The node's device id.")
    details: dict[str, Any] = Field(description="What was asked: a command's kind and body, the labels.")
    result: str = Field(
        description="ok, not issued: why, or for an entry that issued a command, where it stands."
    )
    command_seq: int | None = Field(description="The command the entry issued to the node; null otherwise.")


class DesiredConfigItem(BaseModel):
    version: str = Field(description="The sha256 of the config text.")
    issuer: str = Field(description="Who pushed or adopted it.")
    issued_ms: int
    command_seq: int | None = Field(
        description="The `config` command that pushed it; null when adopted from what the node runs."
    )


class ConfigOut(BaseModel):
    """A node's desired config (``ioc-center config push``) against the one it reports running."""

    device: str
    desired: DesiredConfigItem | None
    reported: str | None = Field(description="The config version of the node's newest status.")
    reported_ms: int | None = Field(description="That status's time, by the node's clock.")
    drift: bool = Field(description="The node reports another config than the desired one.")
    diff: str = Field(
        description="A unified diff from the desired text to the reported one; empty when they are equal "
        "or the node's text is unknown (`ioc-center config adopt` fetches it)."
    )
    command: CommandItem | None = Field(description="The push's command: where it stands at the node.")
