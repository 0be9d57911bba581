"""The API's answers as pydantic models: they are its OpenAPI description (/api/v1/openapi.json).

The warnings' request bodies are here too (``WarningBody``...): each makes its CAP alert.

Times are UTC milliseconds (``*_ms``); ``tsrc`` is where a record's time came
from: 1 GPS, 2 NTP, 3 the node's free-running clock.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from ioc.commands import MAX_TTL_S
from ioc.warnings import MAX_ACK_WITHIN_S
from sync.warnings import Alert, Area, Circle, Info
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


# -- warnings (issue 16): the CAP alerts the centre issues, as the API takes and gives them ----------------

Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
LatLon = Annotated[list[float], Field(min_length=2, max_length=2, description="[lat, lon] in degrees.")]


class _Strict(BaseModel):
    # Unknown fields are errors: a misspelt "instructions" must not vanish from a warning to the field.
    model_config = ConfigDict(extra="forbid")


class WarningQuery(_Strict):
    """A page of /api/v1/warnings, newest first (/api/v1/warnings.csv: every one, no ``limit``)."""

    origin: Literal["centre", "local"] | None = Field(
        None, description="centre: issued here; local: a node's own sounding (an alarm, by hand)."
    )
    since: str | None = Field(
        None, max_length=64, description="Issued from then on: UTC ms or ISO 8601 (no zone: the centre's)."
    )
    limit: int = Field(100, ge=1, le=1000, description="Warnings per page, 1..1000.")
    offset: int = Field(0, ge=0, le=2**31, description="Warnings to skip: the page before's `next_offset`.")


class WarningShowQuery(_Strict):
    unacked: bool = Field(False, description="Only the targets flagged: not acknowledged when due.")


class WarningText(_Strict):
    """One language's text of a warning (CAP ``info``)."""

    event: str = Field(min_length=1, max_length=128, description="What happens: Bão, Lũ, Storm.")
    headline: str = Field("", max_length=160)
    description: str = Field("", max_length=4000)
    instruction: str = Field("", max_length=2000, description="What people should do.")


class WarningArea(_Strict):
    """Where a warning applies: polygons and circles, a node in any of them is inside."""

    area_desc: str = Field(min_length=1, max_length=256, description="The area's name: Biển Huế.")
    polygons: list[Annotated[list[LatLon], Field(min_length=3, max_length=1000)]] = Field(
        default_factory=list, description="Rings of [lat, lon] in order; closed by the centre if open."
    )
    circles: list[Annotated[list[float], Field(min_length=3, max_length=3)]] = Field(
        default_factory=list, description="[lat, lon, radius_km] each."
    )

    def to_area(self, name: str) -> Area:
        """The CAP area; :class:`sync.wire.WireError` naming ``name``'s field when a value is out of range."""
        rings = tuple(
            tuple((p[0], p[1]) for p in (ring if ring[0] == ring[-1] else [*ring, ring[0]]))
            for ring in self.polygons
        )
        area = Area(self.area_desc, rings, tuple(Circle(*c) for c in self.circles))
        area.check(name)
        return area


class WarningReachBody(_Strict):
    """What decides a draft warning's reach: its areas and its label selector."""

    areas: list[WarningArea] = Field(
        default_factory=list, max_length=16, description="None: every node the selector picks."
    )
    selector: str | None = Field(
        None, max_length=1000, description="KEY=VALUE[,KEY=VALUE...] of the nodes' labels; null: every node."
    )

    def draft(self, now_ms: int) -> Alert:
        """A draft alert with these areas, all that :meth:`ioc.warnings.Warnings.reach` needs of one;
        :class:`sync.wire.WireError` naming the field."""
        info = Info("vi-VN", "draft", "Unknown", "Unknown", "Unknown")
        return Alert.make("draft", "ioc@draft", now_ms, "Alert", [info], _areas(self.areas), now_ms + 60_000)


def _areas(areas: list[WarningArea]) -> list[Area]:
    return [a.to_area(f"areas[{i}]") for i, a in enumerate(areas)]


class WarningContent(_Strict):
    """A warning's content: CAP's info in Vietnamese (and English), its areas, pattern and expiry."""

    vi: WarningText
    en: WarningText | None = Field(None, description="The English text; null: Vietnamese only.")
    severity: Severity = "Severe"
    urgency: Urgency = "Immediate"
    certainty: Certainty = "Likely"
    status: Literal["Actual", "Exercise", "Test"] = Field(
        "Actual", description="Exercise sounds the nodes' exercise pattern; Test is receipted only."
    )
    pattern: str = Field(
        "", max_length=64, description="The sirens' signal: storm, flood-2, tsunami...; empty: shown only."
    )
    expires_in_s: int = Field(6 * 3600, ge=60, le=MAX_TTL_S, description="How long it holds from now.")
    areas: list[WarningArea] = Field(default_factory=list, max_length=16)

    def to_alert(self, identifier: str, sender: str, now_ms: int) -> Alert:
        """The CAP alert of this content, sent ``now_ms``; :class:`sync.wire.WireError` naming the field."""
        infos = []
        for name, language, text in (("vi", "vi-VN", self.vi), ("en", "en-US", self.en)):
            if text is not None:
                t, how = text, (self.urgency, self.severity, self.certainty)
                info = Info(language, t.event, *how, t.headline, t.description, t.instruction)
                info.check(name)  # here, to name the body's field (vi.headline) rather than infos[0]
                infos.append(info)
        # From the whole second sent: CAP's times have no fraction, so the CAP export says the same.
        expires, areas = now_ms - now_ms % 1000 + 1000 * self.expires_in_s, _areas(self.areas)
        return Alert.make(
            identifier,
            sender,
            now_ms,
            "Alert",
            infos,
            areas,
            expires,
            status=self.status,
            pattern=self.pattern,
        )


class WarningBody(WarningContent):
    """A warning to issue: its content, to whom, and how soon an acknowledgement is due."""

    selector: str | None = Field(
        None, max_length=1000, description="KEY=VALUE[,KEY=VALUE...] of the nodes' labels; null: every node."
    )
    ack_within_s: int = Field(
        600, ge=0, le=MAX_ACK_WITHIN_S, description="Not acknowledged so long after issue: flagged."
    )


class WarningUpdateBody(WarningContent):
    """An Update's content (it replaces the original's); it goes to the original's targets."""

    ack_within_s: int | None = Field(None, ge=0, le=MAX_ACK_WITHIN_S, description="null: the original's.")


class WarningCancelBody(_Strict):
    note: str = Field("", max_length=1000, description="Why, for the record and the nodes (CAP note).")


class WarningTarget(BaseModel):
    device: str
    why: str = Field(description="labels KEY=VALUE, every node, station inside, vessel: decides on board.")
    lat: float | None
    lon: float | None


class WarningReach(BaseModel):
    count: int
    targets: list[WarningTarget]


class PlaceItem(BaseModel):
    """Where a node reports it is: a station's fixed place, or mobile (a vessel with a GPS)."""

    device: str
    lat: float | None
    lon: float | None
    mobile: bool
    reported_ms: int = Field(description="The time of the status that said so, by the node's clock.")


class WarningItem(BaseModel):
    """A warning as the centre holds it, its targets counted with their receipts."""

    identifier: str
    sender: str
    sent_ms: int
    status: str = Field(description="Actual, Exercise or Test.")
    msg_type: str = Field(description="Alert, Update or Cancel.")
    refers_to: str = Field(description="The identifier an Update or Cancel changes.")
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    area_desc: str
    pattern: str
    expires_ms: int | None
    selector: str
    issuer: str
    issued_ms: int
    ack_within_s: int
    state: str = Field(
        description="active, expired, updated (superseded_by the Update), cancelled, sent (a Cancel) or "
        "local (a node's own sounding)."
    )
    changed_ms: int | None
    changed_by: str
    superseded_by: str
    origin: str = Field(description="centre, or local: a node's own sounding (device).")
    device: str
    targets: int
    delivered: int
    sounded: int
    acknowledged: int


class WarningReceiptItem(BaseModel):
    """What became of a warning at one target: its command and the node's receipts (node's times)."""

    device: str
    why: str
    command_seq: int | None
    command_state: str | None = Field(description="queued, sent, delivered, applied, refused, expired.")
    delivered_ms: int | None
    sounded_ms: int | None
    silenced_ms: int | None
    silenced_why: str
    displayed_ms: int | None
    acknowledged_ms: int | None
    acknowledged_by: str
    cancelled_ms: int | None
    expired_ms: int | None
    refused_ms: int | None
    refused_why: str
    inside: int | None = Field(description="1 in the area, 0 outside, null unknown.")
    lat: float | None
    lon: float | None
    position_ms: int | None
    outputs: dict[str, dict[str, Any]] = Field(description="Per output: its times.")
    receipt_ms: int | None
    ack_due_ms: int | None = Field(description="When an acknowledgement is due; null: none expected.")
    flagged: bool = Field(description="Not acknowledged when due.")


class WarningOut(BaseModel):
    """A warning, its CAP alert (null: a node's own sounding) and its receipts per target."""

    warning: WarningItem
    alert: dict[str, Any] | None = Field(description="The alert as sent: the body of its warning commands.")
    receipts: list[WarningReceiptItem]
    unacknowledged: int = Field(description="Targets flagged now.")
