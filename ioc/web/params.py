"""Query parameters of the API: one pydantic model per list endpoint, unknown parameters refused.

``from`` and ``to`` take UTC milliseconds or an ISO 8601 time; a time
without a zone (``2024-05-01T08:00``, ``2024-05-01``) is in the centre's
time zone, which is what a person writing a report means.

Example::

    >>> from zoneinfo import ZoneInfo
    >>> parse_time("2024-05-01", "from", ZoneInfo("Asia/Ho_Chi_Minh"))
    1714496400000
    >>> parse_time("1714496400000", "from", ZoneInfo("UTC"))
    1714496400000
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from ioc.commands import MAX_TTL_S
from sync.commands import KIND_RE
from sync.wire import DEVICE_RE, EPOCH_RE

MAX_LIMIT = 1000
# datetime's own range, so that every accepted number is also a time a person can read back.
MIN_MS, MAX_MS = -62135596800000, 253402300799999

Device = Annotated[str, StringConstraints(pattern=DEVICE_RE.pattern)]
Epoch = Annotated[str, StringConstraints(pattern=EPOCH_RE.pattern)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]
TIME_HELP = (
    "UTC milliseconds, or an ISO 8601 time such as 2024-05-01T08:00:00+07:00; without a zone, "
    "the centre's time zone."
)


class ParameterError(ValueError):
    """A query parameter with a value the API cannot use; the message names the parameter."""


def parse_time(value: str, name: str, zone: ZoneInfo) -> int:
    """``value`` as UTC milliseconds; raises :class:`ParameterError` naming ``name``."""
    text = value.strip()
    if re.fullmatch(r"-?\d{1,16}", text):
        ms = int(text)
    else:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ParameterError(
                f"query parameter {name!r}: {value!r} is neither UTC milliseconds nor an ISO 8601 time "
                "such as 2024-05-01T08:00:00+07:00"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone)
        try:
            ms = round(when.timestamp() * 1000)
        except (OverflowError, ValueError):
            ms = MAX_MS + 1
    if not MIN_MS <= ms <= MAX_MS:
        raise ParameterError(f"query parameter {name!r}: {value!r} is out of range (years 1 to 9999)")
    return ms


class _Query(BaseModel):
    # Unknown parameters are errors: a typo ("devise=") must not silently list everything.
    model_config = ConfigDict(extra="forbid")


class _Paged(_Query):
    limit: int | None = Field(
        None, ge=1, le=MAX_LIMIT, description="Items per page, 1..1000: 100 by default; CSV: all rows."
    )
    offset: int = Field(0, ge=0, le=2**31, description="Items to skip: the `next_offset` of the page before.")
    format: Literal["json", "csv"] = Field("json", description="`csv`: text/csv with a header row.")


class _Ranged(_Paged):
    device: Device | None = Field(None, description="Only this device's records.")
    from_: str | None = Field(
        None, alias="from", max_length=64, description=f"From this time on. {TIME_HELP}"
    )
    to: str | None = Field(None, max_length=64, description=f"Before this time. {TIME_HELP}")


class _Series(_Ranged):
    order: Literal["asc", "desc"] | None = Field(
        None, description="By time: oldest first (asc) or newest first."
    )


class PositionQuery(_Series):
    """Filters of /api/v1/positions."""


class CountQuery(_Series):
    """Filters of /api/v1/counts."""

    camera: Name | None = Field(None, description="Only this camera's counts.")


class EventQuery(_Series):
    """Filters of /api/v1/events (newest first unless order=asc)."""

    camera: Name | None = Field(None, description="Only this camera's events.")


class SummaryQuery(_Series):
    """Filters of /api/v1/summaries."""

    sensor: Name | None = Field(None, description="Only this sensor (the driver's name on the node).")
    quantity: Name | None = Field(None, description="Only this quantity, e.g. pm25, pm10, water_level_m.")


class AlarmQuery(_Ranged):
    """Filters of /api/v1/alarms."""

    state: Literal["open", "all"] = Field(
        "open", description="`open`: raises not cleared yet; `all`: every record."
    )


class FormatQuery(_Query):
    """The format of a list endpoint without filters."""

    format: Literal["json", "csv"] = Field("json", description="`csv`: text/csv with a header row.")


class CommandQuery(_Query):
    """A page of /api/v1/nodes/{device}/commands, newest first."""

    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="Commands per page, 1..1000.")
    offset: int = Field(
        0, ge=0, le=2**31, description="Commands to skip: the `next_offset` of the page before."
    )


class AuditQuery(_Query):
    """A page of /api/v1/audit, newest first (/api/v1/audit.csv: every entry, oldest first)."""

    device: Device | None = Field(None, description="Only the entries about this node.")
    since: str | None = Field(None, description=f"Only the entries from this time on: {TIME_HELP}")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="Entries per page, 1..1000 (JSON only).")
    offset: int = Field(
        0, ge=0, le=2**31, description="Entries to skip: the `next_offset` of the page before (JSON only)."
    )


class NoQuery(_Query):
    """An endpoint without query parameters (any is refused)."""


class AckBody(BaseModel):
    """An optional note with an acknowledgement."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=500, description="What the operator did or will do, for the record.")


class CommandBody(BaseModel):
    """A command for a node: what to run, with what, and for how long the centre keeps trying."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, StringConstraints(pattern=KIND_RE.pattern)] = Field(
        description="What the node runs: `ping`, `status`, ... (its registry of kinds; a kind it does "
        "not know is answered refused `unknown_kind`)."
    )
    body: dict[str, Any] = Field(
        default_factory=dict, description="A JSON object, as the kind expects (`{}` for ping and status)."
    )
    ttl_s: int = Field(
        3600,
        ge=1,
        le=MAX_TTL_S,
        description="Seconds the command may wait to be delivered and answered; then it expires.",
    )

    @field_validator("body")
    @classmethod
    def _storable(cls, body: dict[str, Any]) -> dict[str, Any]:
        # Checked before anything is recorded: the audit log keeps even a refused command's body, and
        # a lone surrogate (JSON allows one as an escape) or a NaN can neither be stored nor signed.
        try:
            json.dumps(body, allow_nan=False, ensure_ascii=False).encode()
        except (ValueError, RecursionError) as exc:
            raise PydanticCustomError(
                "not_signable", "not JSON that can be signed: {error}", {"error": str(exc)}
            ) from None
        return body
