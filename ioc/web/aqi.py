"""The Vietnamese air quality index (VN_AQI) of particulate matter, with its colour bands.

Source: Decision 1459/QĐ-TCMT of 12 November 2019 of the Vietnam Environment Administration,
"Hướng dẫn kỹ thuật tính toán và công bố chỉ số chất lượng không khí Việt Nam (VN_AQI)",
https://vea.mae.gov.vn/Data/files/QD%201459%20TCMT%20ngay%2012_11_2019%20AQI(1).pdf
(announced at https://cem.gov.vn/tin-tuc-moi-truong/tong-cuc-moi-truong-ban-hanh-huong-dan-ky-thuat-tinh-toan-va-cong-bo-chi-so-chat-luong-khong-khi-viet-nam).
Table 1 gives the bands and their RGB colours, Table 2 the breakpoints BP_i (µg/m³) for each
index level I_i, and formula 1 interpolates linearly between them:
AQI_x = (I_{i+1} - I_i) / (BP_{i+1} - BP_i) * (C_x - BP_i) + I_i, rounded to an integer.

The decision defines the day AQI on a 24-hour mean and the hour AQI on a NowCast of 12 hourly
means; a summary's AQI here is formula 1 applied to that summary's mean, i.e. an indication over
the summary's interval, not the official day or hour figure. The scale ends at 500 (Table 2's
last breakpoint is "≥ 500" for PM2.5 and "≥ 600" for PM10), so higher concentrations give 500.

Example::

    >>> vn_aqi("pm25", 55.7)      # the decision's own worked example (section 2.3 c)
    110
    >>> band(110).key, band(110).color
    ('poor', '#ff7e00')
    >>> vn_aqi("pm1", 10.0) is None
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)
"""Index values I_i of Table 2."""

BREAKPOINTS: dict[str, tuple[float, ...]] = {
    "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
}
"""Concentrations BP_i (µg/m³) of Table 2, by the quantity names the particulate drivers use."""


@dataclass(frozen=True)
class Band:
    """One row of Table 1: an AQI range, its assessment and its colour."""

    key: str
    min: int
    max: int
    label_vi: str
    label_en: str
    color: str

    def as_dict(self) -> dict:
        return asdict(self)


BANDS = (
    Band("good", 0, 50, "Tốt", "Good", "#00e400"),  # RGB 0;228;0
    Band("moderate", 51, 100, "Trung bình", "Moderate", "#ffff00"),  # 255;255;0
    Band("poor", 101, 150, "Kém", "Poor", "#ff7e00"),  # 255;126;0
    Band("bad", 151, 200, "Xấu", "Bad", "#ff0000"),  # 255;0;0
    Band("very_bad", 201, 300, "Rất xấu", "Very bad", "#8f3f97"),  # 143;63;151
    Band("hazardous", 301, 500, "Nguy hại", "Hazardous", "#7e0023"),  # 126;0;35
)


def vn_aqi(quantity: str, concentration: float | None) -> int | None:
    """The AQI of ``concentration`` (µg/m³) of ``quantity`` (pm25, pm10); None for other quantities."""
    points = BREAKPOINTS.get(quantity)
    if points is None or concentration is None:
        return None
    c = max(0.0, float(concentration))
    if c >= points[-1]:
        return LEVELS[-1]
    i = next(i for i in range(len(points) - 1) if c < points[i + 1])
    value = (LEVELS[i + 1] - LEVELS[i]) / (points[i + 1] - points[i]) * (c - points[i]) + LEVELS[i]
    # Half up, as the decision's worked examples round (Python's round() would round half to even).
    return int(value + 0.5)


def band(aqi: int) -> Band:
    """The band of an AQI value (0..500)."""
    return next((b for b in BANDS if aqi <= b.max), BANDS[-1])
