// Leaflet, loaded on first use (only the vessels page needs it), and a graticule for maps without tiles.
import { h } from "./dom.js";

const BASE = "/static/vendor/leaflet-1.9.4/";
let leaflet = null;

/** window.L once leaflet.js and its stylesheet are in. */
export function loadLeaflet() {
  leaflet ??= new Promise((resolve, reject) => {
    document.head.append(h("link", { rel: "stylesheet", href: `${BASE}leaflet.css` }));
    const script = h("script", { src: `${BASE}leaflet.js` });
    script.addEventListener("load", () => resolve(window.L));
    script.addEventListener("error", () => reject(new Error(`${BASE}leaflet.js did not load`)));
    document.head.append(script);
  });
  return leaflet;
}

const STEPS = [30, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001];

/** Degrees with the decimals the step needs: "16.45°N", "107.6°E". */
function degrees(value, step, [pos, neg]) {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  return `${Math.abs(value).toFixed(decimals)}°${value >= 0 ? pos : neg}`;
}

/**
 * Lines of latitude and longitude, about 4 to 10 across the view, redrawn after every move, with labels
 * on the left and bottom edges: positions read without any tiles.
 * Example: new Graticule(L, map)
 */
export class Graticule {
  constructor(L, map) {
    this.L = L;
    this.map = map;
    this.layer = L.layerGroup().addTo(map);
    this.onMove = () => this.draw();
    map.on("moveend", this.onMove);
    this.draw();
  }

  /** Before the map goes: a resize's delayed "moveend" may still come, and must find no one. */
  remove() {
    this.map.off("moveend", this.onMove);
    this.layer.remove();
  }

  draw() {
    const { L, map } = this;
    const b = map.getBounds();
    const south = Math.max(-85, b.getSouth());
    const north = Math.min(85, b.getNorth());
    const west = b.getWest();
    const east = b.getEast();
    const step = STEPS.find((s) => Math.max(north - south, east - west) / s >= 4) ?? STEPS.at(-1);
    const style = { color: "#3c5a78", weight: 1, opacity: 0.9, interactive: false };
    const labelAt = (latlng, text) =>
      L.marker(latlng, { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "graticule-label", html: h("span", {}, text), iconSize: null }) });
    this.layer.clearLayers();
    const inset = (north - south) * 0.02;
    // Integer multiples of the step: adding 0.1 repeatedly would drift off the round values.
    for (let i = Math.ceil(south / step); i * step <= north; i++) {
      const lat = i * step;
      this.layer.addLayer(L.polyline([[lat, west], [lat, east]], style));
      this.layer.addLayer(labelAt([lat, west + (east - west) * 0.005], degrees(lat, step, ["N", "S"])));
    }
    for (let i = Math.ceil(west / step); i * step <= east; i++) {
      const lon = i * step;
      this.layer.addLayer(L.polyline([[south, lon], [north, lon]], style));
      this.layer.addLayer(labelAt([south + inset, lon], degrees(((lon + 540) % 360) - 180, step, ["E", "W"])));
    }
  }
}
