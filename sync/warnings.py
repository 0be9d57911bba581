"""Warnings from the centre to the field: the message model of CAP 1.2 (OASIS Common Alerting Protocol).

An :class:`Alert` is what the centre issues and a node sounds, displays and acknowledges. Its fields
are CAP's, with CAP's spelling of the enumerations (``Actual``, ``Severe`` ...), so that the CAP XML
the centre imports and exports (``ioc.cap``) maps onto it one to one:

- ``identifier``, ``sender``, ``sent_ms`` (whole seconds: CAP's ``sent`` has no fraction),
  ``status`` (Actual, Exercise, Test), ``msg_type`` (Alert, Update, Cancel), ``scope`` (Public ...);
- ``references``: the alerts an Update or Cancel changes, each as CAP writes it,
  ``"sender,identifier,sent"`` (:meth:`Alert.reference`);
- ``infos``: one :class:`Info` per language (Vietnamese and English): event, urgency, severity,
  certainty, headline, description, instruction;
- ``areas``: where it applies, as CAP polygons (rings of ``(lat, lon)``, first point repeated last)
  and circles (centre and radius in km); none: everywhere it is sent;
- ``expires_ms`` and ``pattern``, the signal a siren sounds (a name of the node's ``[patterns]``;
  empty: displayed, not sounded). In CAP both are per ``info``: the export writes them in each.

The same alert travels to a node as the body of a signed command of kind ``warning``
(:meth:`Alert.to_json`, :meth:`Alert.from_json`): the node checks it with this model and decides with
:meth:`Alert.covers` whether its position is inside. This module is the format only: it signs and
sounds nothing.

Example::

    >>> storm = Alert.make(
    ...     "ioc-hue-2026-0001", "ioc@hue.gov.vn", 1790000000000, "Alert",
    ...     [Info("vi-VN", "Bão", "Immediate", "Severe", "Observed", "Bão số 9", "", "Vào bờ ngay")],
    ...     [Area("Biển Huế", circles=(Circle(16.8, 107.8, 50.0),))], 1790086400000, pattern="storm")
    >>> storm.covers(16.9, 107.9), storm.covers(16.0, 106.0)
    (True, False)
    >>> Alert.from_json(storm.to_json()) == storm
    True
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sync.wire import MAX_TIME_MS, WireError

__all__ = [
    "CERTAINTIES",
    "MSG_TYPES",
    "SCOPES",
    "SEVERITIES",
    "STATUSES",
    "URGENCIES",
    "Alert",
    "Area",
    "Circle",
    "Info",
]

STATUSES = ("Actual", "Exercise", "Test")
"""CAP's ``status`` values a node acts on (System and Draft are not sent to the field)."""
MSG_TYPES = ("Alert", "Update", "Cancel")
SCOPES = ("Public", "Restricted", "Private")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
CATEGORIES = (
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE",
    "Other",
)  # fmt: skip

# CAP 1.2: identifier and sender must not include spaces, commas or restricted characters (< and &).
_TOKEN_RE = re.compile(r"^[^\s,<&]{1,160}$")
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_PATTERN_RE = re.compile(r"^([a-z0-9][a-z0-9_-]{0,63})?$")
_TEXT_CHARS = {"event": 128, "headline": 160, "description": 4000, "instruction": 2000, "area_desc": 256}
MAX_INFOS = 4
MAX_AREAS = 16
MAX_POINTS = 1000
"""Points of one polygon at most: a coastline drawn by hand has tens; a bigger one would not fit a command."""
MAX_RADIUS_KM = 2000.0
EARTH_RADIUS_KM = 6371.0088


def _bad(name: str, message: str) -> WireError:
    return WireError("bad_field", f"{name}: {message}")


def _choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise _bad(name, f"{value!r} is not one of {', '.join(choices)}")


def _text(name: str, value: object, most: int, *, empty: bool = True) -> None:
    if not isinstance(value, str) or len(value) > most or (not empty and not value.strip()):
        shown = (
            repr(value)
            if not isinstance(value, str) or len(value) <= 60
            else f"{value[:60]!r}... ({len(value)} characters)"
        )
        raise _bad(name, f"{shown} is not {'' if empty else 'non-empty '}text of at most {most} characters")
    if any(c in value for c in "\x00\ufffe\uffff") or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise _bad(name, "contains a character that is not text (NUL, a surrogate or a non-character)")


def _number(name: str, value: object, lo: float, hi: float) -> float:
    if type(value) not in (int, float) or not lo <= value <= hi:  # type: ignore[operator]
        raise _bad(name, f"{value!r} is not a number {lo:g}..{hi:g}")
    return float(value)  # type: ignore[arg-type]


def _time(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value <= MAX_TIME_MS:
        raise _bad(name, f"{value!r} is not a time in milliseconds 0..{MAX_TIME_MS}")


@dataclass(frozen=True)
class Circle:
    """A CAP circle: centre ``lat``, ``lon`` (WGS 84 degrees) and ``radius_km`` (great-circle distance)."""

    lat: float
    lon: float
    radius_km: float

    def check(self, name: str) -> None:
        _number(f"{name}.lat", self.lat, -90, 90)
        _number(f"{name}.lon", self.lon, -180, 180)
        radius = _number(f"{name}.radius_km", self.radius_km, 0, MAX_RADIUS_KM)
        if radius <= 0:
            raise _bad(f"{name}.radius_km", "must be more than 0")

    def covers(self, lat: float, lon: float) -> bool:
        """Whether the point is within the radius (haversine on a sphere of the Earth's mean radius)."""
        p1, p2 = math.radians(self.lat), math.radians(lat)
        dp, dl = p2 - p1, math.radians(lon - self.lon)
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))) <= self.radius_km


@dataclass(frozen=True)
class Area:
    """A CAP area: its description, polygons (rings of ``(lat, lon)``, closed) and circles.

    A point is inside when a polygon or a circle covers it (its boundary included). An area needs
    at least one polygon or circle: a description alone cannot be decided on board.
    """

    area_desc: str
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    circles: tuple[Circle, ...] = ()

    def check(self, name: str) -> None:
        _text(f"{name}.area_desc", self.area_desc, _TEXT_CHARS["area_desc"], empty=False)
        if not self.polygons and not self.circles:
            raise _bad(name, "an area needs a polygon or a circle")
        if len(self.polygons) + len(self.circles) > MAX_AREAS:
            raise _bad(name, f"more than {MAX_AREAS} polygons and circles")
        for i, ring in enumerate(self.polygons):
            where = f"{name}.polygons[{i}]"
            if not 4 <= len(ring) <= MAX_POINTS:
                raise _bad(
                    where, f"{len(ring)} points: a polygon has 4..{MAX_POINTS} (the first repeated last)"
                )
            for j, (lat, lon) in enumerate(ring):
                _number(f"{where}[{j}].lat", lat, -90, 90)
                _number(f"{where}[{j}].lon", lon, -180, 180)
            if ring[0] != ring[-1]:
                raise _bad(where, "the first and last points differ: a CAP polygon is closed")
        for i, circle in enumerate(self.circles):
            circle.check(f"{name}.circles[{i}]")

    def covers(self, lat: float, lon: float) -> bool:
        """Whether ``(lat, lon)`` is in one of the area's polygons or circles."""
        if any(c.covers(lat, lon) for c in self.circles):
            return True
        if not self.polygons:
            return False
        import shapely  # ~5 MB: loaded by the first area with polygons, not by every node

        point = shapely.Point(lon, lat)
        return any(shapely.Polygon([(x, y) for y, x in ring]).covers(point) for ring in self.polygons)


@dataclass(frozen=True)
class Info:
    """One language's text of an alert, with CAP's category, urgency, severity and certainty."""

    language: str
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str = ""
    description: str = ""
    instruction: str = ""
    category: str = "Met"

    def check(self, name: str) -> None:
        if not isinstance(self.language, str) or not _LANGUAGE_RE.fullmatch(self.language):
            raise _bad(f"{name}.language", f"{self.language!r} is not a language tag such as vi-VN")
        _choice(f"{name}.category", self.category, CATEGORIES)
        _text(f"{name}.event", self.event, _TEXT_CHARS["event"], empty=False)
        _choice(f"{name}.urgency", self.urgency, URGENCIES)
        _choice(f"{name}.severity", self.severity, SEVERITIES)
        _choice(f"{name}.certainty", self.certainty, CERTAINTIES)
        for key in ("headline", "description", "instruction"):
            _text(f"{name}.{key}", getattr(self, key), _TEXT_CHARS[key])


@dataclass(frozen=True)
class Alert:
    """One CAP alert as the centre issues it and a node checks it; see the module's docstring.

    Raises :class:`sync.wire.WireError` (``bad_field``, naming the field: ``infos[1].severity: ...``)
    when made with a value CAP or a node would refuse.
    """

    identifier: str
    sender: str
    sent_ms: int
    status: str
    msg_type: str
    infos: tuple[Info, ...]
    areas: tuple[Area, ...]
    expires_ms: int
    pattern: str = ""
    references: tuple[str, ...] = ()
    scope: str = "Public"
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("identifier", "sender"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
                raise _bad(
                    name, f"{value!r} is empty, too long or has a space, a comma, '<' or '&' (CAP 1.2)"
                )
        _time("sent_ms", self.sent_ms)
        _time("expires_ms", self.expires_ms)
        if self.expires_ms <= self.sent_ms:
            raise _bad("expires_ms", f"{self.expires_ms} is not after sent_ms {self.sent_ms}")
        _choice("status", self.status, STATUSES)
        _choice("msg_type", self.msg_type, MSG_TYPES)
        _choice("scope", self.scope, SCOPES)
        if not isinstance(self.pattern, str) or not _PATTERN_RE.fullmatch(self.pattern):
            raise _bad("pattern", f"{self.pattern!r} is not a pattern name (a-z, 0-9, '_', '-')")
        _text("note", self.note, 1000)
        if not 1 <= len(self.infos) <= MAX_INFOS:
            raise _bad("infos", f"{len(self.infos)} infos: an alert has 1..{MAX_INFOS} (one per language)")
        for i, info in enumerate(self.infos):
            info.check(f"infos[{i}]")
        if len({i.language for i in self.infos}) != len(self.infos):
            raise _bad("infos", "two infos in the same language")
        if len(self.areas) > MAX_AREAS:
            raise _bad("areas", f"more than {MAX_AREAS} areas")
        for i, area in enumerate(self.areas):
            area.check(f"areas[{i}]")
        for i, ref in enumerate(self.references):
            parts = ref.split(",") if isinstance(ref, str) else []
            if len(parts) != 3 or not all(_TOKEN_RE.fullmatch(p) for p in parts):
                raise _bad(f"references[{i}]", f"{ref!r} is not 'sender,identifier,sent'")
        if self.msg_type != "Alert" and not self.references:
            raise _bad("references", f"an {self.msg_type} refers to the alert it changes")

    @classmethod
    def make(
        cls,
        identifier: str,
        sender: str,
        sent_ms: int,
        msg_type: str,
        infos: Iterable[Info],
        areas: Iterable[Area],
        expires_ms: int,
        *,
        status: str = "Actual",
        pattern: str = "",
        references: Iterable[str] = (),
        note: str = "",
    ) -> Alert:
        """An alert from lists (tuples are what it keeps); ``sent_ms`` and ``expires_ms`` are cut to
        whole seconds, as CAP's dateTime has them (an alert made so survives its CAP XML unchanged)."""
        return cls(
            identifier,
            sender,
            sent_ms - sent_ms % 1000,
            status,
            msg_type,
            tuple(infos),
            tuple(areas),
            expires_ms - expires_ms % 1000,
            pattern,
            tuple(references),
            note=note,
        )

    def reference(self) -> str:
        """How an Update or Cancel refers to this alert: ``sender,identifier,sent`` (CAP's ``references``)."""
        return f"{self.sender},{self.identifier},{_iso(self.sent_ms)}"

    def refers_to(self) -> tuple[str, ...]:
        """The identifiers of the alerts this one changes."""
        return tuple(ref.split(",")[1] for ref in self.references)

    def info(self, language: str = "vi") -> Info:
        """The info in ``language`` (a prefix: ``vi`` matches ``vi-VN``), else the first."""
        return next((i for i in self.infos if i.language.lower().startswith(language.lower())), self.infos[0])

    def covers(self, lat: float, lon: float) -> bool:
        """Whether the point is in the alert's areas; an alert without areas covers everywhere."""
        return not self.areas or any(a.covers(lat, lon) for a in self.areas)

    def to_json(self) -> dict[str, Any]:
        """The alert as a JSON object (the body of a ``warning`` command)."""
        return {
            "identifier": self.identifier,
            "sender": self.sender,
            "sent_ms": self.sent_ms,
            "status": self.status,
            "msg_type": self.msg_type,
            "scope": self.scope,
            "references": list(self.references),
            "note": self.note,
            "pattern": self.pattern,
            "expires_ms": self.expires_ms,
            "infos": [{f.name: getattr(i, f.name) for f in fields(Info)} for i in self.infos],
            "areas": [
                {
                    "area_desc": a.area_desc,
                    "polygons": [[[lat, lon] for lat, lon in ring] for ring in a.polygons],
                    "circles": [[c.lat, c.lon, c.radius_km] for c in a.circles],
                }
                for a in self.areas
            ],
        }

    @classmethod
    def from_json(cls, body: object) -> Alert:
        """The alert in ``body`` (:meth:`to_json`'s form), checked; :class:`WireError` naming the field."""
        top = _object("alert", body, _ALERT_KEYS)
        infos = [
            Info(**_object(f"infos[{i}]", info, _INFO_KEYS))
            for i, info in enumerate(_list("infos", top["infos"]))
        ]
        areas = [_area(f"areas[{i}]", a) for i, a in enumerate(_list("areas", top["areas"]))]
        references = _list("references", top["references"])
        return cls(
            **{k: v for k, v in top.items() if k not in ("infos", "areas", "references")},
            infos=tuple(infos),
            areas=tuple(areas),
            references=tuple(references),
        )


_ALERT_KEYS = {f.name for f in fields(Alert)}
_INFO_KEYS = {f.name for f in fields(Info)}


def _object(name: str, value: object, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(name, f"a JSON object expected, not {type(value).__name__}")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        raise _bad(name, f"missing keys {missing}, unknown keys {extra}")
    return dict(value)


def _list(name: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(name, f"a JSON array expected, not {type(value).__name__}")
    return value


def _pair(name: str, value: object, n: int) -> tuple[Any, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise _bad(name, f"an array of {n} numbers expected")
    return tuple(value)


def _area(name: str, value: object) -> Area:
    area = _object(name, value, {"area_desc", "polygons", "circles"})
    polygons = tuple(
        tuple(
            _pair(f"{name}.polygons[{i}][{j}]", p, 2)
            for j, p in enumerate(_list(f"{name}.polygons[{i}]", ring))
        )
        for i, ring in enumerate(_list(f"{name}.polygons", area["polygons"]))
    )
    circles = tuple(
        Circle(*_pair(f"{name}.circles[{i}]", c, 3))
        for i, c in enumerate(_list(f"{name}.circles", area["circles"]))
    )
    return Area(area["area_desc"], polygons, circles)  # its values are checked by the Alert that holds it


def _iso(ms: int) -> str:
    """CAP's dateTime in UTC: CAP 1.2 forbids the "Z" and writes UTC's offset as -00:00."""
    return dt.datetime.fromtimestamp(ms // 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")
