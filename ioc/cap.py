"""CAP 1.2 XML in and out: the centre's warnings (:class:`sync.warnings.Alert`) as OASIS CAP documents.

:func:`to_xml` writes an alert as a CAP 1.2 ``<alert>`` (namespace ``urn:oasis:names:tc:emergency:cap:1.2``,
UTF-8): one ``<info>`` per language, each with the alert's areas, its ``<expires>`` and, when the alert
has one, its siren pattern as ``<parameter>`` ``ioc-edge:pattern``. :func:`from_xml` reads any CAP 1.2
alert the model can hold and refuses the rest with a :class:`CapError` naming the element
(``alert/info[2]/area[1]/polygon[1]``) and what to do.

What the model keeps of CAP and how:

- ``sent`` and ``expires`` are UTC milliseconds; CAP writes them with an offset, never a ``Z``
  (``2026-10-28T07:00:00+07:00``; UTC is ``-00:00``, as CAP 1.2 section 3.3.2 has it).
- CAP puts ``<expires>``, the pattern and the areas in each ``<info>``; the model has one of each
  for the whole alert, so every info must have the same (areas compared by their polygons and
  circles: ``<areaDesc>`` is text in the info's language, the first info's is kept).
- An info's first ``<category>`` is kept; a missing ``<language>`` is CAP's default, ``en-US``.
- Free text (event, headline, description, instruction, areaDesc, note) is kept as written.

Ignored, because the model does not keep them: ``source``, ``code``, ``incidents``, an info's
``responseType``, ``audience``, ``eventCode``, ``effective``, ``onset``, ``senderName``, ``web``,
``contact``, its other ``<parameter>`` and ``<resource>``, an area's ``geocode``, ``altitude`` and
``ceiling``, elements of other namespaces (an XML signature) and comments.

Refused: a document that is not CAP 1.2, has a DOCTYPE (a CAP alert has none; it is where entity
expansion and external entities come from, so nothing is expanded and nothing is read from disk)
or is bigger than :data:`MAX_CAP_BYTES`; a missing required element; status System or Draft,
msgType Ack or Error, scope Restricted or Private (the model keeps no ``<restriction>`` or
``<addresses>``); an alert without an info or an expiry; infos that differ in their expiry,
pattern or areas; an area without a polygon or a circle (a node decides by its own position, not
by a geocode); and whatever :class:`sync.warnings.Alert` refuses (the message names its field too).

Example::

    >>> from sync.warnings import Alert, Area, Circle, Info
    >>> storm = Alert.make(
    ...     "ioc-hue-2026-0001", "ioc@hue.gov.vn", 1790000000000, "Alert",
    ...     [Info("vi-VN", "Bão", "Immediate", "Severe", "Observed", "Bão số 9", "", "Vào bờ ngay")],
    ...     [Area("Biển Huế", circles=(Circle(16.8, 107.8, 50.0),))], 1790086400000, pattern="storm")
    >>> text = to_xml(storm)
    >>> print(text.splitlines()[4])
      <sent>2026-09-21T14:13:20-00:00</sent>
    >>> from_xml(text) == storm
    True
    >>> from_xml(text.replace("Severe", "Awful"))
    Traceback (most recent call last):
    ...
    ioc.cap.CapError: <cap>: alert/info[1]/severity: 'Awful' is not one of Extreme, Severe, ...
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pyexpat import XML_PARAM_ENTITY_PARSING_NEVER as NO_PARAM_ENTITIES
from pyexpat import ErrorString, ExpatError, ParserCreate
from typing import NoReturn, TypeVar

from common.errors import IocEdgeError
from sync.warnings import Alert, Area, Circle, Info
from sync.wire import WireError

__all__ = ["CAP_NS", "MAX_CAP_BYTES", "PATTERN_PARAMETER", "CapError", "from_xml", "to_xml"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
PATTERN_PARAMETER = "ioc-edge:pattern"
"""The ``valueName`` of the ``<parameter>`` that carries the siren pattern."""
MAX_CAP_BYTES = 256 * 1024
"""The biggest document :func:`from_xml` reads (a storm warning in two languages with a coastline
of a few hundred points is tens of KiB)."""

_DATETIME_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)([-+])(\d\d):(\d\d)")
_DECIMAL_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)")
# Characters XML 1.0 cannot carry, which the model's text may hold (it refuses only NUL).
_NOT_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_T = TypeVar("_T")
# The model's field names as CAP's elements; the areas, expiry and pattern are named in the first info.
_ELEMENTS = {
    "sent_ms": "sent",
    "msg_type": "msgType",
    "infos": "info",
    "areas": "info[1]/area",
    "area_desc": "areaDesc",
    "polygons": "polygon",
    "circles": "circle",
    "expires_ms": "info[1]/expires",
    "pattern": "info[1]/parameter",
}
_REPEATED = {"infos", "areas", "polygons", "circles"}
_REFUSED = {
    "status": {"System": "a system message", "Draft": "a draft"},
    "msgType": {"Ack": "an acknowledgement", "Error": "an error report"},
    "scope": {"Restricted": "<restriction>", "Private": "<addresses>"},
}


class CapError(IocEdgeError, ValueError):
    """A CAP document the centre cannot read or write; ``path`` is the element (``alert/info[1]/expires``)."""

    def __init__(self, source: str, path: str, message: str) -> None:
        super().__init__(f"{source}: {path}: {message}")
        self.source, self.path = source, path


def to_xml(alert: Alert, *, tz: dt.tzinfo = dt.UTC) -> str:
    """The alert as a CAP 1.2 document (a str; encode it as UTF-8, as its declaration says).

    Times are written in ``tz`` (UTC, ``-00:00``, by default; ``zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")``
    gives ``+07:00``), in whole seconds as CAP has them. Raises :class:`CapError` for an alert CAP
    cannot carry as it is: scope Restricted or Private (CAP then requires a ``<restriction>`` or
    ``<addresses>`` the model does not keep), text with a control character XML 1.0 cannot hold.
    """
    if alert.scope in _REFUSED["scope"]:
        raise CapError(alert.identifier, "alert/scope", _scope_message(alert.scope))

    def add(parent: ET.Element, tag: str, text: str, path: str) -> None:
        if _NOT_XML_RE.search(text):
            raise CapError(alert.identifier, path, "has a control character XML cannot carry: remove it")
        ET.SubElement(parent, tag).text = text

    root = ET.Element("alert", xmlns=CAP_NS)
    add(root, "identifier", alert.identifier, "alert/identifier")
    add(root, "sender", alert.sender, "alert/sender")
    add(root, "sent", _cap_time(alert.sent_ms, tz), "alert/sent")
    add(root, "status", alert.status, "alert/status")
    add(root, "msgType", alert.msg_type, "alert/msgType")
    add(root, "scope", alert.scope, "alert/scope")
    if alert.note:
        add(root, "note", alert.note, "alert/note")
    if alert.references:
        add(root, "references", " ".join(alert.references), "alert/references")
    for n, info in enumerate(alert.infos, 1):
        path = f"alert/info[{n}]"
        element = ET.SubElement(root, "info")
        for tag in ("language", "category", "event", "urgency", "severity", "certainty"):
            add(element, tag, getattr(info, tag), f"{path}/{tag}")
        add(element, "expires", _cap_time(alert.expires_ms, tz), f"{path}/expires")
        for tag in ("headline", "description", "instruction"):
            if getattr(info, tag):
                add(element, tag, getattr(info, tag), f"{path}/{tag}")
        if alert.pattern:
            parameter = ET.SubElement(element, "parameter")
            add(parameter, "valueName", PATTERN_PARAMETER, f"{path}/parameter")
            add(parameter, "value", alert.pattern, f"{path}/parameter")
        for k, area in enumerate(alert.areas, 1):
            where = ET.SubElement(element, "area")
            add(where, "areaDesc", area.area_desc, f"{path}/area[{k}]/areaDesc")
            for ring in area.polygons:
                ET.SubElement(where, "polygon").text = " ".join(f"{_dec(a)},{_dec(o)}" for a, o in ring)
            for c in area.circles:
                ET.SubElement(where, "circle").text = f"{_dec(c.lat)},{_dec(c.lon)} {_dec(c.radius_km)}"
    ET.indent(root, space="  ")  # only elements with children: the texts stay as they are
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def from_xml(text: str | bytes, *, source: str = "<cap>") -> Alert:
    """The alert in a CAP 1.2 document (its text, or its bytes in the encoding they declare).

    ``source`` names the document in errors (a file name). See the module's docstring for what is
    kept, ignored and refused. Raises :class:`CapError` (``source: alert/info[1]/expires: ...``).
    """
    alert = _Node(_parse(text, source), "alert", source)
    values = {tag: alert.text(tag) for tag in ("identifier", "sender", "sent", "status", "msgType", "scope")}
    for tag, refused in _REFUSED.items():
        if values[tag] in refused:
            message = (
                _scope_message(values[tag])
                if tag == "scope"
                else f"{values[tag]} is {refused[values[tag]]}, not a warning to sound: "
                "import an Actual, Exercise or Test Alert, Update or Cancel"
            )
            raise alert.error(tag, message)
    sent_ms = _time(alert, "sent", values["sent"])
    nodes = alert.children("info")
    if not nodes:
        raise alert.error("info", "missing: a warning needs one <info> per language (event, urgency, ...)")
    infos = [_info(node) for node in nodes]
    expires = _agreed(nodes, [_expires(node) for node in nodes], "expires")
    if expires is None:
        raise nodes[0].error("expires", "missing: a warning needs an expiry (when nodes stop sounding it)")
    pattern = _agreed(nodes, [_pattern(node) for node in nodes], "parameter")
    # An area's description is text in its info's language: the areas agree by their shapes.
    areas = _agreed(
        nodes, [_areas(node) for node in nodes], "area", lambda a: [(x.polygons, x.circles) for x in a]
    )
    try:
        return Alert(
            values["identifier"],
            values["sender"],
            sent_ms,
            values["status"],
            values["msgType"],
            tuple(infos),
            areas or (),
            expires,
            pattern or "",
            tuple((alert.optional("references") or "").split()),
            scope=values["scope"],
            note=alert.optional("note", strip=False) or "",
        )
    except WireError as e:
        field, _, message = str(e).removeprefix(f"{e.reason}: ").partition(": ")
        raise CapError(source, _element(field), f"{message} (sync.warnings.Alert's {field})") from None


@dataclass(frozen=True)
class _Node:
    """An element of the document being read and its path, for errors that name it."""

    element: ET.Element
    path: str
    source: str

    def error(self, tag: str, message: str) -> CapError:
        return CapError(self.source, f"{self.path}/{tag}" if tag else self.path, message)

    def children(self, tag: str) -> list[_Node]:
        found = self.element.findall(f"{{{CAP_NS}}}{tag}")
        return [_Node(e, f"{self.path}/{tag}[{i}]", self.source) for i, e in enumerate(found, 1)]

    def optional(self, tag: str, *, strip: bool = True) -> str | None:
        """The text of the one ``tag`` child (stripped: a code, a time), None when there is none."""
        found = self.element.findall(f"{{{CAP_NS}}}{tag}")
        if len(found) > 1:
            raise self.error(tag, f"appears {len(found)} times: CAP 1.2 has one; keep one")
        value = found[0].text or "" if found else None
        return value.strip() if strip and value is not None else value

    def text(self, tag: str, *, strip: bool = True) -> str:
        """The text of the one ``tag`` child, which CAP 1.2 requires."""
        value = self.optional(tag, strip=strip)
        if value is None:
            raise self.error(tag, f"missing: CAP 1.2 requires <{tag}> here; add it")
        return value


def _parse(text: str | bytes, source: str) -> ET.Element:
    """The document's root element, parsed by expat with no DOCTYPE allowed.

    Entity declarations, and so entity expansion ("billion laughs") and external entities (a file
    or URL read into the alert), exist only inside a DOCTYPE; expat reports the DOCTYPE's start
    before it reads any declaration in it, and the handler refuses it there. Without a DOCTYPE an
    entity reference other than XML's five is a well-formedness error.
    """
    try:
        # A str is read as what it is, whatever encoding its declaration names.
        data, encoding = (text.encode(), "utf-8") if isinstance(text, str) else (text, None)
    except UnicodeEncodeError as e:
        raise CapError(source, "document", f"not text: {e.reason} at character {e.start}") from None
    if len(data) > MAX_CAP_BYTES:
        raise CapError(
            source, "document", f"{len(data)} bytes: more than {MAX_CAP_BYTES}; a CAP alert is smaller"
        )
    builder = ET.TreeBuilder()
    parser = ParserCreate(encoding, namespace_separator="}")

    def refuse(*_: object) -> NoReturn:
        raise CapError(
            source,
            "document",
            f"has a DOCTYPE (line {parser.CurrentLineNumber}): a CAP alert has none, and its entities "
            "could expand or read files; remove it",
        )

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse  # unreachable without a DOCTYPE: refused all the same
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(NO_PARAM_ENTITIES)
    parser.StartElementHandler = lambda name, _attributes: builder.start(_qname(name), {})
    parser.EndElementHandler = lambda name: builder.end(_qname(name))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except ExpatError as e:
        raise CapError(
            source,
            "document",
            f"not well-formed XML: {ErrorString(e.code)} (line {e.lineno}, column {e.offset})",
        ) from None
    root = builder.close()
    if root.tag != f"{{{CAP_NS}}}alert":
        raise CapError(source, "document", f"the root element is {root.tag}, not CAP 1.2's {{{CAP_NS}}}alert")
    return root


def _qname(name: str) -> str:
    """ElementTree's ``{namespace}tag`` from expat's ``namespace}tag``."""
    return f"{{{name}" if "}" in name else name


def _info(node: _Node) -> Info:
    categories = node.children("category")
    if not categories:
        raise node.error("category", "missing: CAP 1.2 requires one at least (Met, Geo, Safety...); add it")
    headline, description, instruction = (
        node.optional(tag, strip=False) or "" for tag in ("headline", "description", "instruction")
    )
    return Info(
        node.optional("language") or "en-US",
        node.text("event", strip=False),
        node.text("urgency"),
        node.text("severity"),
        node.text("certainty"),
        headline,
        description,
        instruction,
        category=(categories[0].element.text or "").strip(),
    )


def _pattern(node: _Node) -> str | None:
    found = [p for p in node.children("parameter") if p.optional("valueName") == PATTERN_PARAMETER]
    if len(found) > 1:
        raise found[1].error("", f"a second {PATTERN_PARAMETER}: an info has one pattern; keep one")
    return found[0].text("value") if found else None


def _areas(node: _Node) -> tuple[Area, ...] | None:
    areas = tuple(
        Area(
            area.text("areaDesc", strip=False),
            tuple(_polygon(p) for p in area.children("polygon")),
            tuple(_circle(c) for c in area.children("circle")),
        )
        for area in node.children("area")
    )
    return areas or None


def _polygon(node: _Node) -> tuple[tuple[float, float], ...]:
    pairs = (node.element.text or "").split()
    if not pairs:
        raise node.error(
            "", "empty: write the polygon as 'lat,lon lat,lon ...' (the first pair repeated last)"
        )
    return tuple(_latlon(node, pair, "the polygon as 'lat,lon lat,lon ...'") for pair in pairs)


def _circle(node: _Node) -> Circle:
    parts = (node.element.text or "").split()
    if len(parts) != 2 or not _DECIMAL_RE.fullmatch(parts[1]):
        raise node.error("", f"{node.element.text!r} is not a circle: write it as 'lat,lon radius_km'")
    return Circle(*_latlon(node, parts[0], "the circle as 'lat,lon radius_km'"), float(parts[1]))


def _latlon(node: _Node, pair: str, how: str) -> tuple[float, float]:
    numbers = pair.split(",")
    if len(numbers) != 2 or not all(_DECIMAL_RE.fullmatch(n) for n in numbers):
        raise node.error("", f"{pair!r} is not 'lat,lon' in decimal degrees: write {how}")
    return float(numbers[0]), float(numbers[1])


def _expires(node: _Node) -> int | None:
    text = node.optional("expires")
    return None if text is None else _time(node, "expires", text)


def _time(node: _Node, tag: str, text: str) -> int:
    """``text``, CAP's dateTime of ``node``'s ``tag``, in UTC milliseconds."""
    m = _DATETIME_RE.fullmatch(text)
    try:
        if not m:
            raise ValueError
        year, month, day, hour, minute, second, sign, oh, om = m.groups()
        offset = (1 if sign == "+" else -1) * dt.timedelta(hours=int(oh), minutes=int(om))
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.timezone(offset)
        )
    except ValueError:
        raise node.error(
            tag, f"{text!r} is not a CAP dateTime: write it as 2026-10-28T07:00:00+07:00 (no Z, no fraction)"
        ) from None
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)


def _agreed(
    nodes: Sequence[_Node], values: Sequence[_T | None], tag: str, same: Callable[[_T], object] = lambda v: v
) -> _T | None:
    """The value every info has (the model keeps one for all languages), else a :class:`CapError`.

    Values are compared by what ``same`` gives for them.
    """
    first = None if values[0] is None else same(values[0])
    for node, value in zip(nodes[1:], values[1:], strict=True):
        if (None if value is None else same(value)) == first:
            continue
        if values[0] is None:
            raise nodes[0].error(tag, f"missing while {node.path.removeprefix('alert/')} has it: {_SAME}")
        if value is None:
            raise node.error(tag, f"missing while info[1] has it: {_SAME}")
        raise node.error(tag, f"differs from info[1]'s: {_SAME}")
    return values[0]


_SAME = "a warning has one expiry, pattern and list of areas for all its languages; give every info the same"


def _element(field: str) -> str:
    """The element of a field of :class:`sync.warnings.Alert`: ``areas[0].polygons[1][3].lat`` is
    ``alert/info[1]/area[1]/polygon[2]`` (a point's coordinates are text in the polygon)."""
    path = ["alert"]
    for name, indexes in re.findall(r"(\w+)((?:\[\d+\])*)", field):
        if name in ("lat", "lon", "radius_km"):
            break
        element = _ELEMENTS.get(name, name)
        if name in _REPEATED and indexes:
            element += f"[{int(indexes[1:].split(']')[0]) + 1}]"
        path.append(element)
        if indexes.count("[") > 1:
            break
    return "/".join(path)


def _scope_message(scope: str) -> str:
    return (
        f"{scope} requires {_REFUSED['scope'][scope]}, which sync.warnings.Alert does not keep: "
        "a warning here is Public (choose whom it reaches by its targets)"
    )


def _cap_time(ms: int, tz: dt.tzinfo) -> str:
    """CAP's dateTime: whole seconds and an offset; UTC is ``-00:00`` (CAP 1.2, 3.3.2)."""
    moment = dt.datetime.fromtimestamp(ms // 1000, tz)
    offset = moment.utcoffset() or dt.timedelta(0)
    sign = "+" if offset > dt.timedelta(0) else "-"
    minutes = abs(offset) // dt.timedelta(minutes=1)
    return f"{moment:%Y-%m-%dT%H:%M:%S}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _dec(value: float) -> str:
    """A coordinate as a plain decimal that reads back as the same float (never ``1e-05``)."""
    return format(Decimal(repr(float(value))), "f")
