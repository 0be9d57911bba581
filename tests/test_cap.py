"""ioc.cap: CAP 1.2 XML out and in (issue 16, point 8): the round trip, CAP files written by hand after
the specification's examples and public feeds, every refusal naming its element, untrusted XML parsed
with no entity expanded and nothing read from disk."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

import pytest

from ioc.cap import CapError, from_xml, to_xml
from sync.warnings import Alert, Area, Circle, Info

DATA = Path(__file__).parent / "data" / "cap"
SEA = ((17.5, 107.0), (17.5, 109.0), (15.8, 109.0), (15.8, 108.2), (16.6, 107.0), (17.5, 107.0))


def ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp()) * 1000


def storm_update() -> Alert:
    return Alert.make(
        "ioc-hue-2026-0002",
        "ioc@hue.gov.vn",
        ms("2026-10-28T07:00:00+07:00"),
        "Update",
        [
            Info(
                "vi-VN", "Bão", "Immediate", "Extreme", "Observed", "Bão số 9", "Gió cấp 12.", "Vào bờ ngay"
            ),
            Info(
                "en-US",
                "Typhoon",
                "Immediate",
                "Extreme",
                "Observed",
                "Typhoon No. 9",
                "",
                "Make for shelter",
            ),
        ],
        [Area("Biển Huế", polygons=(SEA,), circles=(Circle(16.4, 107.6, 12.5), Circle(0.00001, -180, 2000)))],
        ms("2026-10-29T07:00:00+07:00"),
        pattern="storm",
        references=["ioc@hue.gov.vn,ioc-hue-2026-0001,2026-10-27T16:00:00-00:00"],
        note="Gió mạnh hơn dự báo",
    )


@pytest.mark.parametrize("tz", [dt.UTC, zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")], ids=["utc", "hue"])
def test_an_alert_exported_and_imported_is_the_same(tz: dt.tzinfo):
    alert = storm_update()
    text = to_xml(alert, tz=tz)
    assert from_xml(text) == alert
    assert from_xml(text.encode()) == alert
    offset = "+07:00" if tz != dt.UTC else "-00:00"
    hour = "07" if tz != dt.UTC else "00"
    assert f"<sent>2026-10-28T{hour}:00:00{offset}</sent>" in text
    assert text.count(f"<expires>2026-10-29T{hour}:00:00{offset}</expires>") == 2
    assert "Z<" not in text


def test_the_export_is_cap_1_2_with_each_info_whole():
    text = to_xml(storm_update())
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
    )
    info = text[text.index("<info>") : text.index("</info>")]
    tags = [line.strip().split(">")[0] + ">" for line in info.splitlines()[1:-1]]
    assert tags == [
        "<language>", "<category>", "<event>", "<urgency>", "<severity>", "<certainty>", "<expires>",
        "<headline>", "<description>", "<instruction>", "<parameter>", "<valueName>", "<value>",
        "</parameter>", "<area>", "<areaDesc>", "<polygon>", "<circle>", "<circle>", "</area>",
    ]  # fmt: skip
    assert "<polygon>17.5,107.0 17.5,109.0 15.8,109.0 15.8,108.2 16.6,107.0 17.5,107.0</polygon>" in info
    assert "<circle>0.00001,-180.0 2000.0</circle>" in info
    assert "<valueName>ioc-edge:pattern</valueName>" in info and "<value>storm</value>" in info
    assert text.count("<info>") == 2 and "<description>" not in text.split("<info>")[2]


def test_a_thunderstorm_warning_of_a_public_feed_imports():
    alert = from_xml((DATA / "thunderstorm.xml").read_bytes(), source="thunderstorm.xml")
    assert (alert.identifier, alert.sender, alert.status, alert.msg_type, alert.scope) == (
        "NWS-KMTR-SVR-2026-0612-0042", "w-nws.webmaster@noaa.gov", "Actual", "Alert", "Public",
    )  # fmt: skip
    assert (alert.sent_ms, alert.expires_ms) == (
        ms("2026-06-12T22:42:00+00:00"),
        ms("2026-06-12T23:30:00+00:00"),
    )
    assert alert.infos == (
        Info(
            "en-US",
            "Severe Thunderstorm Warning",
            "Immediate",
            "Severe",
            "Observed",
            "Severe Thunderstorm Warning until 4:30 PM PDT",
            "At 3:40 PM PDT, radar showed a severe thunderstorm near Pinecrest, moving east at 10 mph.\n"
            "Hail up to one inch and wind gusts of 60 mph are expected with this storm.",
            "Move to an interior room on the lowest floor of a building.",
            "Met",
        ),
    )
    ring = ((38.21, -119.95), (38.05, -119.81), (38.14, -119.62), (38.29, -119.76), (38.21, -119.95))
    assert alert.areas == (Area("Eastern Tuolumne County", polygons=(ring,)),)
    assert (alert.pattern, alert.references, alert.note) == ("", (), "")


def test_a_vietnamese_storm_warning_in_two_languages_imports():
    alert = from_xml((DATA / "storm_vi_en.xml").read_text(encoding="utf-8"))
    assert [(i.language, i.event, i.severity, i.urgency, i.certainty) for i in alert.infos] == [
        ("vi-VN", "Bão", "Severe", "Expected", "Likely"),
        ("en-US", "Typhoon", "Severe", "Expected", "Likely"),
    ]
    assert alert.info("vi").instruction == (
        "Tàu thuyền không ra khơi; tàu đang hoạt động trên biển khẩn trương vào nơi trú ẩn."
    )
    assert alert.info("en").headline == "Typhoon No. 9: force 12 winds, gusts to force 15"
    # Both infos expire at 09:00 UTC, written in two offsets; the area is the first info's (Vietnamese).
    assert alert.expires_ms == ms("2026-10-28T09:00:00+00:00")
    assert alert.areas == (Area("Vùng biển Quảng Trị - Đà Nẵng", polygons=(SEA,)),)
    assert alert.covers(17.0, 108.0) and not alert.covers(16.62, 106.59)  # at sea, not inland at Lao Bao


def test_a_cancel_refers_to_the_alert_it_cancels():
    storm = from_xml((DATA / "storm_vi_en.xml").read_bytes())
    cancel = from_xml((DATA / "cancel.xml").read_bytes())
    assert (cancel.msg_type, cancel.note) == ("Cancel", "Bão số 9 đã suy yếu thành áp thấp nhiệt đới.")
    assert cancel.references == ("canhbao@nchmf.gov.vn,VN-NCHMF-2026-BAO09-01,2026-10-27T16:00:00+07:00",)
    assert cancel.refers_to() == (storm.identifier,)


def test_an_earthquake_update_with_a_circle_imports():
    alert = from_xml((DATA / "earthquake.xml").read_bytes())
    assert (alert.status, alert.msg_type, alert.sent_ms) == (
        "Exercise",
        "Update",
        ms("2026-03-15T01:21:30+00:00"),
    )
    assert alert.refers_to() == ("VN-IGP-EQ-20260315-1",)
    assert (alert.infos[0].category, alert.infos[0].urgency, alert.pattern) == ("Geo", "Past", "")
    assert alert.areas == (
        Area("30 km around the epicentre, 12 km SW of A Luoi", circles=(Circle(16.2125, 107.1874, 30.0),)),
    )


PARAMETER = "<parameter><valueName>ioc-edge:pattern</valueName><value>storm</value></parameter>"
BASE = (
    (DATA / "storm_vi_en.xml").read_text(encoding="utf-8").replace("</certainty>", f"</certainty>{PARAMETER}")
)
POLYGON = "17.5,107.0 17.5,109.0 15.8,109.0 15.8,108.2 16.6,107.0 17.5,107.0"
SAME = "a warning has one expiry, pattern and list of areas for all its languages; give every info the same"
SECOND_INFO = BASE[BASE.index("<info>", BASE.index("</info>")) : BASE.rindex("</alert>")]
DIFFER = f"differs from info[1]'s: {SAME}"
TOO_BIG = "more than 262144; a CAP alert is smaller"


def edit(old: str, new: str, nth: int = 0) -> str:
    """BASE with the ``nth`` occurrence of ``old`` (1 for the first; 0: every one) replaced."""
    if not nth:
        return BASE.replace(old, new)
    at = -1
    for _ in range(nth):
        at = BASE.index(old, at + 1)
    return BASE[:at] + new + BASE[at + len(old) :]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            edit("Actual", "System"),
            "alert/status: System is a system message, not a warning to sound: "
            "import an Actual, Exercise or Test Alert, Update or Cancel",
        ),
        (
            edit("Actual", "Draft"),
            "alert/status: Draft is a draft, not a warning to sound: "
            "import an Actual, Exercise or Test Alert, Update or Cancel",
        ),
        (
            edit("<msgType>Alert", "<msgType>Ack"),
            "alert/msgType: Ack is an acknowledgement, not a warning to sound: "
            "import an Actual, Exercise or Test Alert, Update or Cancel",
        ),
        (
            edit("Public</scope>", "Restricted</scope><restriction>civil defence</restriction>"),
            "alert/scope: Restricted requires <restriction>, which sync.warnings.Alert does not keep: "
            "a warning here is Public (choose whom it reaches by its targets)",
        ),
        (
            edit("<area>", "<!--", 2).replace("</area>\n  </info>\n</alert>", "-->\n  </info>\n</alert>"),
            f"alert/info[2]/area: missing while info[1] has it: {SAME}",
        ),
        (edit("17.5,107.0 17.5,109.0", "17.6,107.0 17.5,109.0", 2), f"alert/info[2]/area: {DIFFER}"),
        (edit("2026-10-28T09:00:00-00:00", "2026-10-28T10:00:00-00:00"), f"alert/info[2]/expires: {DIFFER}"),
        (edit("<value>storm", "<value>flood-2", 2), f"alert/info[2]/parameter: {DIFFER}"),
        (
            edit(f"<polygon>{POLYGON}", "<polygon>17.5,107.0 17.5,109.0 15.8,109.0 15.8,108.2 16.6,107.0"),
            "alert/info[1]/area[1]/polygon[1]: the first and last points differ: a CAP polygon is closed "
            "(sync.warnings.Alert's areas[0].polygons[0])",
        ),
        (
            edit(f"<polygon>{POLYGON}", "<polygon>17.5;107.0 17.5,109.0", 2),
            "alert/info[2]/area[1]/polygon[1]: '17.5;107.0' is not 'lat,lon' in decimal degrees: "
            "write the polygon as 'lat,lon lat,lon ...'",
        ),
        (
            edit(f"<polygon>{POLYGON}</polygon>", "<circle>17.5,107.0</circle>"),
            "alert/info[1]/area[1]/circle[1]: '17.5,107.0' is not a circle: write it as 'lat,lon radius_km'",
        ),
        (
            edit(f"<polygon>{POLYGON}</polygon>", "<geocode><valueName>UGC</valueName></geocode>"),
            "alert/info[1]/area[1]: an area needs a polygon or a circle (sync.warnings.Alert's areas[0])",
        ),
        (
            edit(f"<polygon>{POLYGON}</polygon>", "<circle>16.2,107.2 0</circle>"),
            "alert/info[1]/area[1]/circle[1]: must be more than 0 "
            "(sync.warnings.Alert's areas[0].circles[0].radius_km)",
        ),
        (
            edit("</alert>", 3 * SECOND_INFO + "</alert>"),
            "alert/info: 5 infos: an alert has 1..4 (one per language) (sync.warnings.Alert's infos)",
        ),
        (
            edit("<event>Typhoon</event>", ""),
            "alert/info[2]/event: missing: CAP 1.2 requires <event> here; add it",
        ),
        (
            edit("<category>Met</category>", "", 1),
            "alert/info[1]/category: missing: CAP 1.2 requires one at least (Met, Geo, Safety...); add it",
        ),
        (
            edit("<sender>", "<sender>a</sender><sender>"),
            "alert/sender: appears 2 times: CAP 1.2 has one; keep one",
        ),
        (
            re.sub("<expires>[^<]*</expires>", "", BASE),
            "alert/info[1]/expires: missing: a warning needs an expiry (when nodes stop sounding it)",
        ),
        (
            edit("2026-10-27T16:00:00+07:00", "2026-10-27T09:00:00Z"),
            "alert/sent: '2026-10-27T09:00:00Z' is not a CAP dateTime: "
            "write it as 2026-10-28T07:00:00+07:00 (no Z, no fraction)",
        ),
        (
            edit("2026-10-27T16:00:00+07:00", "2026-02-30T16:00:00+07:00"),
            "alert/sent: '2026-02-30T16:00:00+07:00' is not a CAP dateTime: "
            "write it as 2026-10-28T07:00:00+07:00 (no Z, no fraction)",
        ),
        (
            edit("</certainty>", f"</certainty>{PARAMETER}", 1),
            "alert/info[1]/parameter[2]: a second ioc-edge:pattern: an info has one pattern; keep one",
        ),
        (
            edit("emergency:cap:1.2", "emergency:cap:1.1"),
            "document: the root element is {urn:oasis:names:tc:emergency:cap:1.1}alert, "
            "not CAP 1.2's {urn:oasis:names:tc:emergency:cap:1.2}alert",
        ),
        (edit("</alert>", "</alert"), "document: not well-formed XML: unclosed token (line 52, column 0)"),
        (
            edit("<sent>", "<note>&nbsp;</note><sent>"),
            "document: not well-formed XML: undefined entity (line 7, column 8)",
        ),
        (
            edit("Bão", "B\udc00o", 1),
            f"document: not text: surrogates not allowed at character {BASE.index('Bão') + 1}",
        ),
        (BASE + " " * 256 * 1024, f"document: {len(BASE.encode()) + 256 * 1024} bytes: {TOO_BIG}"),
    ],
    ids=[
        "system", "draft", "ack", "restricted", "info-without-area", "areas-differ", "expiries-differ",
        "patterns-differ", "polygon-not-closed", "polygon-not-numbers", "circle-without-radius",
        "geocode-only", "zero-radius", "five-infos", "no-event", "no-category", "two-senders",
        "no-expiry", "zulu-time", "no-such-day", "two-patterns", "cap-1.1", "not-well-formed",
        "undefined-entity", "surrogate", "too-big",
    ],
)  # fmt: skip
def test_what_the_model_cannot_hold_is_refused_naming_the_element(text: str, message: str):
    with pytest.raises(CapError) as refused:
        from_xml(text, source="storm.xml")
    assert str(refused.value) == f"storm.xml: {message}"
    assert refused.value.path == message.split(": ")[0]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("<severity>Severe", "<severity>Awful", "alert/info[1]/severity: 'Awful' is not one of Extreme, "
         "Severe, Moderate, Minor, Unknown (sync.warnings.Alert's infos[0].severity)"),
        ("15.8,108.2 16.6,107.0 17.5,107.0", "15.8,108.2 16.6,107.0", "alert/info[1]/area[1]/polygon[1]: "
         "the first and last points differ: a CAP polygon is closed "
         "(sync.warnings.Alert's areas[0].polygons[0])"),
        ("<msgType>Alert", "<msgType>Update", "alert/references: an Update refers to the alert it changes "
         "(sync.warnings.Alert's references)"),
        ("<identifier>VN-NCHMF-2026-BAO09-01", "<identifier>VN NCHMF", "alert/identifier: 'VN NCHMF' is "
         "empty, too long or has a space, a comma, '<' or '&' (CAP 1.2) (sync.warnings.Alert's identifier)"),
    ],
    ids=["severity", "unclosed-polygon", "update-without-references", "identifier-with-a-space"],
)  # fmt: skip
def test_the_models_refusals_name_the_element_and_the_field(old: str, new: str, message: str):
    with pytest.raises(CapError) as refused:
        from_xml(BASE.replace(old, new))
    assert str(refused.value) == f"<cap>: {message}"


DOCTYPE_REFUSED = (
    "<cap>: document: has a DOCTYPE (line 2): a CAP alert has none, and its entities could expand or read "
    "files; remove it"
)


def test_a_billion_laughs_is_refused_before_any_entity_expands():
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    text = f'<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY lol0 "lol">{lol}]>\n' + BASE.split("?>", 1)[
        1
    ].replace("<description>", "<description>&lol9;", 1)
    with pytest.raises(CapError) as refused:
        from_xml(text)
    assert str(refused.value) == DOCTYPE_REFUSED


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_an_external_entity_is_refused_and_nothing_is_read(tmp_path: Path, encoding: str):
    secret = tmp_path / "secret.txt"
    secret.write_text("the-centre-signing-key-passphrase")
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        + BASE.split("?>", 1)[1].replace("<description>", "<description>&xxe;", 1)
    )
    with pytest.raises(CapError) as refused:
        from_xml(text.encode(encoding))
    assert str(refused.value) == DOCTYPE_REFUSED
    assert "passphrase" not in str(refused.value)


def test_an_alert_cap_cannot_carry_is_not_exported():
    restricted = Alert(**{**vars(storm_update()), "scope": "Restricted"})
    with pytest.raises(CapError) as refused:
        to_xml(restricted)
    assert str(refused.value) == (
        "ioc-hue-2026-0002: alert/scope: Restricted requires <restriction>, which sync.warnings.Alert does "
        "not keep: a warning here is Public (choose whom it reaches by its targets)"
    )
    bell = Alert(**{**vars(storm_update()), "note": "ring \x07"})
    with pytest.raises(CapError) as refused:
        to_xml(bell)
    assert (
        str(refused.value)
        == "ioc-hue-2026-0002: alert/note: has a control character XML cannot carry: remove it"
    )
