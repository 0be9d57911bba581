// The Vietnamese AQI colour bands (VN_AQI, QĐ 1459/QĐ-TCMT): from /api/v1/settings, these same six as a fallback.

const FALLBACK = [
  { key: "good", min: 0, max: 50, label_vi: "Tốt", label_en: "Good", color: "#00e400" },
  { key: "moderate", min: 51, max: 100, label_vi: "Trung bình", label_en: "Moderate", color: "#ffff00" },
  { key: "poor", min: 101, max: 150, label_vi: "Kém", label_en: "Poor", color: "#ff7e00" },
  { key: "bad", min: 151, max: 200, label_vi: "Xấu", label_en: "Bad", color: "#ff0000" },
  { key: "very_bad", min: 201, max: 300, label_vi: "Rất xấu", label_en: "Very bad", color: "#8f3f97" },
  { key: "hazardous", min: 301, max: 500, label_vi: "Nguy hại", label_en: "Hazardous", color: "#7e0023" },
];

/**
 * Looks up bands by AQI value or by key, and picks a readable text colour for each.
 * Example: new AqiBands(settings.aqi_bands).of(110).label_vi === "Kém"
 */
export class AqiBands {
  constructor(bands) {
    this.bands = Array.isArray(bands) && bands.length ? bands : FALLBACK;
  }

  /** The band of an AQI value, or of a band key ("poor"). */
  of(aqiOrKey) {
    if (typeof aqiOrKey === "string") return this.bands.find((b) => b.key === aqiOrKey) ?? null;
    if (aqiOrKey === null || aqiOrKey === undefined) return null;
    return this.bands.find((b) => aqiOrKey <= b.max) ?? this.bands.at(-1);
  }

  /** Black on the light bands (green, yellow, orange), white on the dark ones: contrast >= 4.5:1. */
  static textOn(color) {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16) / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return luminance > 0.179 ? "#000000" : "#ffffff";
  }

  /** Chart backgrounds: [{from, to, color}] in AQI units. */
  chartBands() {
    return this.bands.map((b, i) => ({ from: i ? this.bands[i - 1].max : 0, to: b.max, color: b.color }));
  }
}
