// Zones between the API (GeoJSON order: [lon, lat]; Polygon, MultiPolygon and the Circle
// extension) and Leaflet layers ([lat, lng]). Coordinates are rounded to 7 decimals (~1 cm).

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

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}

/**
 * Stores whose latitude and longitude look exchanged: far (> 300 km) from where the program's
 * other stores are, while the swapped position lands among them (< 100 km). Needs at least two
 * other stores to know where "among them" is. Returns a Set of store ids.
 */
export function likelySwapped(stores) {
  const flagged = new Set();
  if (stores.length < 3) return flagged;
  const centres = stores.map((s) => ({ id: s.id, c: zoneCenter(s.zone) }));
  for (const { id, c } of centres) {
    const others = centres.filter((o) => o.id !== id);
    const home = [median(others.map((o) => o.c[0])), median(others.map((o) => o.c[1]))];
    const swapped = [c[1], c[0]];
    if (Math.abs(swapped[1]) <= 90 && distanceKm(c, home) > 300 && distanceKm(swapped, home) < 100) {
      flagged.add(id);
    }
  }
  return flagged;
}

/** Where a validation message points, if it names a position ("Self-intersection[2.35 48.86]"). */
export function problemPosition(detail) {
  const m = String(detail || '').match(/\[(-?\d+(?:\.\d+)?(?:e-?\d+)?)[ ,]+(-?\d+(?:\.\d+)?(?:e-?\d+)?)\]/i);
  if (!m) return null;
  const lon = Number(m[1]);
  const lat = Number(m[2]);
  return Number.isFinite(lon) && Number.isFinite(lat) ? [lat, lon] : null;
}
