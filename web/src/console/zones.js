// Zones between the API (GeoJSON order: [lon, lat]; Polygon, MultiPolygon and the Circle
// extension) and Leaflet layers ([lat, lng]). Coordinates are rounded to 7 decimals (~1 cm).

import { number } from '../common/format.js';
import { t } from '../common/i18n.js';

const L = window.L;
const round = (x) => Math.round(x * 1e7) / 1e7;

export const STYLE = { color: '#1f4e79', weight: 2, fillOpacity: 0.18 };
export const SELECTED = { color: '#0b6e4f', weight: 3, fillOpacity: 0.3 };
export const ERROR = { color: '#a4161a', weight: 3, dashArray: '6 4', fillOpacity: 0.25 };
export const WARNING = { color: '#b06d00', weight: 3, dashArray: '2 6', fillOpacity: 0.2 };
export const PREVIEW = { color: '#5b3c88', weight: 2, dashArray: '4 4', fillOpacity: 0.15 };

const ringToLatLngs = (ring) => {
  const pts = ring.map(([lon, lat]) => [lat, lon]);
  // Leaflet rings are implicitly closed: drop the repeated last position.
  const [a, b] = [pts[0], pts[pts.length - 1]];
  if (pts.length > 1 && a[0] === b[0] && a[1] === b[1]) pts.pop();
  return pts;
};

/** A zone as a Leaflet layer (L.Circle or L.Polygon, with holes and parts). */
export function zoneToLayer(zone, style = STYLE) {
  switch (zone.type) {
    case 'Circle':
      return L.circle([zone.center[1], zone.center[0]], { ...style, radius: zone.radius_m });
    case 'Polygon':
      return L.polygon(zone.coordinates.map(ringToLatLngs), style);
    case 'MultiPolygon':
      return L.polygon(zone.coordinates.map((poly) => poly.map(ringToLatLngs)), style);
    case 'Point': // an exported circle, RFC 7946 style
      return L.circle([zone.coordinates[1], zone.coordinates[0]], { ...style, radius: zone.radius_m || 50 });
    default:
      throw new Error(`unsupported zone type ${zone.type}`);
  }
}

/** Twice the ring's signed area ([lon, lat] shoelace): > 0 when counterclockwise. */
function signedArea(ring) {
  let sum = 0;
  for (let i = 0; i + 1 < ring.length; i += 1) sum += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
  return sum;
}

// Closed, in RFC 7946's winding (what the API stores and returns): an exterior ring
// counterclockwise, a hole clockwise, so a drawn zone comes back exactly as it was sent.
const closeRing = (latlngs, exterior) => {
  const ring = latlngs.map((ll) => [round(ll.lng), round(ll.lat)]);
  if (ring.length) ring.push([...ring[0]]);
  return (signedArea(ring) > 0) === exterior ? ring : ring.reverse();
};
const closeRings = (rings) => rings.map((r, i) => closeRing(r, i === 0));

const isLatLng = (x) => x && typeof x.lat === 'number';

/** A Leaflet layer as an API zone. */
export function layerToZone(layer) {
  if (layer instanceof L.Circle) {
    const c = layer.getLatLng();
    return { type: 'Circle', center: [round(c.lng), round(c.lat)], radius_m: Math.round(layer.getRadius() * 10) / 10 };
  }
  const latlngs = layer.getLatLngs();
  // Polygon: [ring, ring...] with ring = [LatLng...]; MultiPolygon: [[ring...], [ring...]].
  if (latlngs.length && isLatLng(latlngs[0][0])) {
    return { type: 'Polygon', coordinates: closeRings(latlngs) };
  }
  if (latlngs.length && isLatLng(latlngs[0])) {
    return { type: 'Polygon', coordinates: [closeRing(latlngs, true)] };
  }
  const parts = latlngs.map(closeRings);
  return parts.length === 1 ? { type: 'Polygon', coordinates: parts[0] } : { type: 'MultiPolygon', coordinates: parts };
}

/** [lon, lat] of a zone's centre (a circle's centre, a polygon's bounding-box centre). */
export function zoneCenter(zone) {
  if (zone.type === 'Circle') return zone.center;
  if (zone.type === 'Point') return zone.coordinates;
  const rings = zone.type === 'Polygon' ? [zone.coordinates[0]] : zone.coordinates.map((p) => p[0]);
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const ring of rings) {
    for (const [x, y] of ring) {
      minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
  }
  return [(minX + maxX) / 2, (minY + maxY) / 2];
}

/** The same zone with longitude and latitude exchanged (to repair a swapped entry). */
export function swapZone(zone) {
  const swap = ([a, b, ...rest]) => [b, a, ...rest];
  switch (zone.type) {
    case 'Circle': return { ...zone, center: swap(zone.center) };
    case 'Point': return { ...zone, coordinates: swap(zone.coordinates) };
    case 'Polygon': return { ...zone, coordinates: zone.coordinates.map((r) => r.map(swap)) };
    case 'MultiPolygon': return { ...zone, coordinates: zone.coordinates.map((p) => p.map((r) => r.map(swap))) };
    default: return zone;
  }
}

function distanceKm([lon1, lat1], [lon2, lat2]) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 12_742 * Math.asin(Math.min(1, Math.sqrt(a)));
}

// The server's rule (geo/placement.py), so the map flags what the API would refuse: the
// swapped point lies among the program's other stores while the point as given is far from
// all of them, or the longitude is far from the program's time zone while the swapped one
// is inside it.
const NEAR_KM = 100;
const FACTOR = 10;
const BAND_DEG = 30;

/** 15° × the time zone's standard UTC offset (the smaller of January's and July's). */
export function standardMeridian(timezone) {
  const offsetHours = (month) => {
    const at = new Date(Date.UTC(2025, month, 1, 12));
    const parts = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' })
      .formatToParts(at).reduce((o, p) => ({ ...o, [p.type]: Number(p.value) }), {});
    return (Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute) - at.getTime()) / 3_600_000;
  };
  return Math.min(offsetHours(0), offsetHours(6)) * 15;
}

const circularGap = (a, b) => {
  const gap = Math.abs(a - b) % 360;
  return Math.min(gap, 360 - gap);
};

function nearest(point, others) {
  let best = null;
  for (const o of others) {
    const km = distanceKm(point, o.c);
    if (!best || km < best.km) best = { km, code: o.code };
  }
  return best;
}

/**
 * Why a store's [lon, lat] looks swapped, or null: {rule: 'stores', km, swappedKm, code} or
 * {rule: 'timezone', meridian}. `others`: the program's other stores as {c: [lon, lat], code}.
 */
export function swapReason([lon, lat], others, timezone) {
  if (Math.abs(lon) > 90 || lon === lat) return null;
  const given = nearest([lon, lat], others);
  const swapped = nearest([lat, lon], others);
  if (given && swapped) {
    if (swapped.km <= NEAR_KM && given.km >= FACTOR * Math.max(swapped.km, 1)) {
      return { rule: 'stores', km: given.km, swappedKm: swapped.km, code: swapped.code };
    }
    if (given.km <= NEAR_KM) return null;
  }
  const meridian = standardMeridian(timezone);
  if (circularGap(lon, meridian) > BAND_DEG && circularGap(lat, meridian) <= BAND_DEG) {
    return { rule: 'timezone', meridian };
  }
  return null;
}

/** The stores whose latitude and longitude look swapped: a Map of store id -> reason. */
export function likelySwapped(stores, timezone) {
  const flagged = new Map();
  const centres = stores.map((s) => ({ id: s.id, code: s.code, c: zoneCenter(s.zone) }));
  for (const { id, c } of centres) {
    const reason = swapReason(c, centres.filter((o) => o.id !== id), timezone);
    if (reason) flagged.set(id, reason);
  }
  return flagged;
}

/** A likely swap, said for the manager. */
export function swapText(code, [lon, lat], reason, timezone) {
  if (reason.rule === 'stores') {
    return t('stores.swap_reason_stores', { code, km: number(Math.round(reason.km)), swapped_km: number(Math.round(reason.swappedKm * 10) / 10), near: reason.code });
  }
  return t('stores.swap_reason_timezone', { code, lon: number(lon), lat: number(lat), tz: timezone, meridian: number(reason.meridian) });
}

/** Where a validation message points, if it names a position ("Self-intersection[2.35 48.86]"). */
export function problemPosition(detail) {
  const m = String(detail || '').match(/\[(-?\d+(?:\.\d+)?(?:e-?\d+)?)[ ,]+(-?\d+(?:\.\d+)?(?:e-?\d+)?)\]/i);
  if (!m) return null;
  const lon = Number(m[1]);
  const lat = Number(m[2]);
  return Number.isFinite(lon) && Number.isFinite(lat) ? [lat, lon] : null;
}
