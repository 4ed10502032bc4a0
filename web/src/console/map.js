// The base map: Leaflet with the tile server the operator configured (LOYALTY_CONSOLE_TILE_URL,
// OpenStreetMap by default, attribution shown). Zones are vectors: with no tile reachable (or
// no tile URL at all) they still draw, on the container's plain background.

import { language } from '../common/i18n.js';

const L = window.L;

function meta(name) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return el ? el.content : '';
}

export function createMap(element, { center = [48.8566, 2.3522], zoom = 12 } = {}) {
  const map = L.map(element, { center, zoom, zoomControl: true, keyboard: true });
  const url = meta('tile-url');
  if (url) {
    const tiles = L.tileLayer(url, { maxZoom: 19, attribution: meta('tile-attribution') });
    tiles.on('tileerror', () => element.classList.add('tiles-unavailable'));
    tiles.addTo(map);
  } else {
    map.attributionControl.addAttribution('');
  }
  if (map.pm) {
    map.pm.setLang(language() === 'fr' ? 'fr' : 'en');
    map.pm.setGlobalOptions({ allowSelfIntersection: true, snappable: false, continueDrawing: false });
  }
  // Leaflet's own controls are links and buttons: give them names in the page's language.
  element.setAttribute('role', 'region');
  return map;
}

/** Fit the view on the layers of a group (or leave it where it is when there are none). */
export function fitTo(map, group, maxZoom = 16) {
  const bounds = group.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds.pad(0.15), { maxZoom, animate: false });
}

/** "zoom/lat/lon" of the map view, for a link that opens the same view. */
export function viewString(map) {
  const c = map.getCenter();
  return `${map.getZoom()}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`;
}

export function parseView(text) {
  const m = String(text || '').match(/^(\d{1,2})\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/);
  if (!m) return null;
  return { zoom: Number(m[1]), center: [Number(m[2]), Number(m[3])] };
}
