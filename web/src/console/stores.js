// Stores: every zone on a map (draw, edit, move, cut holes, delete) and a table (filter, sort,
// page). Likely latitude/longitude swaps are flagged on the map. Import/export as GeoJSON.

import { announce, downloadBlob, field, h, replace, tableBox } from '../common/dom.js';
import { dateTime } from '../common/format.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';
import { createMap, fitTo, parseView, viewString } from './map.js';
import { StoreEditor } from './store_editor.js';
import { ImportPreview } from './store_import.js';
import { STYLE, SELECTED, WARNING, likelySwapped, swapText, zoneCenter, zoneToLayer } from './zones.js';

const L = window.L;
const PAGE_SIZE = 15;

export function zoneSummary(zone) {
  if (zone.type === 'Circle') return t('zone.circle', { radius: Math.round(zone.radius_m) });
  if (zone.type === 'Polygon') {
    return t('zone.polygon', { vertices: zone.coordinates[0].length - 1, holes: zone.coordinates.length - 1 });
  }
  return t('zone.multipolygon', { parts: zone.coordinates.length });
}

export async function render(main, ctx, { query }) {
  const base = `/v1/programs/${ctx.program.id}`;
  const state = {
    stores: [], layers: new Map(), flagged: new Set(), selected: null,
    filter: '', sort: { key: 'code', dir: 1 }, page: 0,
  };

  const mapEl = h('div', { class: 'map', id: 'stores-map', 'aria-label': t('stores.map_label') });
  const swapBox = h('div', { id: 'swap-notices' });
  const tools = h('div', { class: 'maptools', role: 'toolbar', 'aria-label': t('stores.tools') });
  const editorEl = h('section', { class: 'panel', id: 'store-editor', 'aria-labelledby': 'editor-title' });
  const box = tableBox(t('stores.list'));
  const pager = h('div', { class: 'pager' });
  const filter = h('input', { type: 'search', id: 'store-filter', placeholder: t('stores.filter_placeholder') });
  const fileInput = h('input', { type: 'file', id: 'import-file', accept: '.geojson,.json,application/geo+json,application/json' });
  const previewEl = h('section', { class: 'panel', id: 'import-preview', hidden: true, 'aria-labelledby': 'import-title' });
  const status = h('div', { id: 'stores-status' });

  replace(main,
    h('h1', {}, t('stores.title')),
    status,
    h('div', { class: 'split' },
      h('section', { class: 'panel', 'aria-labelledby': 'map-title' },
        h('h2', { id: 'map-title' }, t('stores.map')),
        tools,
        h('p', { class: 'hint' }, t('stores.map_hint')),
        mapEl, swapBox),
      editorEl),
    h('section', { class: 'panel', 'aria-labelledby': 'list-title' },
      h('h2', { id: 'list-title' }, t('stores.list')),
      h('div', { class: 'row' },
        field(t('stores.filter'), filter).wrap,
        h('div', { class: 'field' },
          h('label', { for: 'import-file' }, t('stores.import')), fileInput),
        h('div', { class: 'field' },
          h('span', { class: 'label', id: 'export-label' }, t('stores.export')),
          h('button', { type: 'button', id: 'export-button', 'aria-describedby': 'export-label', onclick: exportStores }, t('stores.export_button')))),
      box, pager),
    previewEl);

  const view = parseView(query.get('view'));
  const map = createMap(mapEl, view || {});
  const group = L.featureGroup().addTo(map);
  map.on('moveend', () => {
    const url = new URL(window.location.href);
    url.hash = `#/stores?view=${viewString(map)}`;
    window.history.replaceState(null, '', url);
  });

  const editor = new StoreEditor({ root: editorEl, ctx, map, base, onSaved: reload, onDeleted: reload,
    onCancel: () => select(null), layerOf: (id) => state.layers.get(id),
    replaceLayer: (id, layer) => { const old = state.layers.get(id); if (old) group.removeLayer(old); wire(id, layer); } });
  const preview = new ImportPreview({ root: previewEl, ctx, map, base, existing: () => state.stores, onImported: reload });

  function drawButton(label, action, id) {
    return h('button', { type: 'button', id, onclick: action }, label);
  }
  replace(tools,
    drawButton(t('stores.draw_polygon'), () => { map.pm.enableDraw('Polygon'); announce(t('stores.drawing_polygon')); }, 'draw-polygon'),
    drawButton(t('stores.draw_circle'), () => { map.pm.enableDraw('Circle'); announce(t('stores.drawing_circle')); }, 'draw-circle'),
    drawButton(t('stores.stop_drawing'), () => { map.pm.disableDraw(); }, 'stop-drawing'));

  map.on('pm:create', ({ layer }) => {
    map.pm.disableDraw();
    select(null);
    editor.startNew(layer);
  });

  function wire(id, layer) {
    layer.setStyle(state.flagged.has(id) ? WARNING : STYLE);
    layer.on('click', () => select(id));
    const store = state.stores.find((s) => s.id === id);
    if (store) layer.bindTooltip(`${store.code} — ${store.name}`, { className: 'zone-label' });
    group.addLayer(layer);
    state.layers.set(id, layer);
  }

  const reasonOf = (s) => swapText(s.code, zoneCenter(s.zone), state.flagged.get(s.id), ctx.program.timezone);

  function drawAll() {
    group.clearLayers();
    state.layers.clear();
    state.flagged = likelySwapped(state.stores, ctx.program.timezone);
    for (const s of state.stores) wire(s.id, zoneToLayer(s.zone));
    const notes = [...state.flagged.keys()].map((id) => {
      const s = state.stores.find((x) => x.id === id);
      const layer = state.layers.get(id);
      const marker = L.marker(layer.getBounds ? layer.getBounds().getCenter() : layer.getLatLng(), {
        icon: L.divIcon({ className: 'warn-pin', iconSize: [18, 18] }), keyboard: false, title: reasonOf(s),
      }).bindTooltip(t('stores.swap_flag_on', { code: s.code }), { permanent: true, className: 'zone-warning', direction: 'top' });
      group.addLayer(marker);
      return h('li', {}, h('button', { type: 'button', class: 'link', onclick: () => select(id) }, s.code), ' — ', reasonOf(s));
    });
    replace(swapBox, notes.length ? h('div', { class: 'notice warn', role: 'status', id: 'swap-list' },
      h('strong', {}, t('stores.swap_title')), h('ul', {}, notes)) : '');
  }

  function select(id, { pan = true } = {}) {
    if (state.selected && state.layers.get(state.selected)) {
      state.layers.get(state.selected).setStyle(state.flagged.has(state.selected) ? WARNING : STYLE);
    }
    state.selected = id;
    const store = state.stores.find((s) => s.id === id);
    if (store) {
      const layer = state.layers.get(id);
      layer.setStyle(SELECTED);
      layer.bringToFront();
      if (pan) map.fitBounds(layer.getBounds().pad(0.5), { maxZoom: 18 });
      editor.show(store, { flagged: state.flagged.has(id) ? reasonOf(store) : null });
    } else {
      editor.idle();
    }
    renderTable();
  }

  function visible() {
    const q = state.filter.trim().toLowerCase();
    const rows = state.stores.filter((s) => !q || s.code.toLowerCase().includes(q) || s.name.toLowerCase().includes(q));
    const { key, dir } = state.sort;
    rows.sort((a, b) => String(a[key]).localeCompare(String(b[key]), undefined, { numeric: true }) * dir);
    return rows;
  }

  function sortHeader(key, label) {
    const active = state.sort.key === key;
    const button = h('button', { type: 'button', class: 'sort' }, label, active ? (state.sort.dir > 0 ? ' ▲' : ' ▼') : '');
    button.addEventListener('click', () => {
      state.sort = { key, dir: active ? -state.sort.dir : 1 };
      renderTable();
    });
    return h('th', { scope: 'col', 'aria-sort': active ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none' }, button);
  }

  function renderTable() {
    const rows = visible();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const shown = rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
    replace(box, h('table', { id: 'stores-table' },
      h('caption', { class: 'visually-hidden' }, t('stores.list')),
      h('thead', {}, h('tr', {}, sortHeader('code', t('stores.code')), sortHeader('name', t('stores.name')),
        h('th', { scope: 'col' }, t('stores.zone')), sortHeader('updated_at', t('stores.updated')))),
      h('tbody', {}, ...shown.map((s) => h('tr', { class: s.id === state.selected ? 'selected' : '', dataset: { storeId: s.id } },
        h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => select(s.id) }, s.code)),
        h('td', {}, s.name, state.flagged.has(s.id) ? h('span', { class: 'badge paused' }, ` ${t('stores.swap_badge')}`) : ''),
        h('td', {}, zoneSummary(s.zone)),
        h('td', {}, dateTime(s.updated_at)))))));
    if (!rows.length) box.append(h('p', {}, state.stores.length ? t('stores.no_match') : t('stores.none')));
    replace(pager,
      h('button', { type: 'button', disabled: state.page === 0, onclick: () => { state.page -= 1; renderTable(); } }, t('common.previous')),
      h('span', {}, t('common.page_of', { page: state.page + 1, pages, count: rows.length })),
      h('button', { type: 'button', disabled: state.page >= pages - 1, onclick: () => { state.page += 1; renderTable(); } }, t('common.next')));
  }

  async function reload({ focusId } = {}) {
    try {
      state.stores = await ctx.api.all(`${base}/stores`);
      replace(status);
    } catch (err) {
      replace(status, problemNotice(err));
      return;
    }
    drawAll();
    // After a save the zone is where the manager just worked: select it, keep the view.
    if (focusId && state.stores.some((s) => s.id === focusId)) select(focusId, { pan: false });
    else { state.selected = null; editor.idle(); renderTable(); }
  }

  async function exportStores() {
    try {
      const res = await ctx.api.request('GET', `${base}/stores.geojson`, { raw: true, accept: 'application/geo+json' });
      downloadBlob(await res.blob(), `stores-${ctx.program.name.replace(/[^\w-]+/g, '_')}.geojson`);
      announce(t('stores.exported'));
    } catch (err) {
      replace(status, problemNotice(err));
    }
  }

  filter.addEventListener('input', () => { state.filter = filter.value; state.page = 0; renderTable(); });
  fileInput.addEventListener('change', async () => {
    const file = fileInput.files[0];
    if (file) await preview.open(file);
    fileInput.value = '';
  });

  await reload();
  if (!view) fitTo(map, group);
  let removed = false;
  setTimeout(() => { if (!removed) map.invalidateSize(); }, 0);
  return () => { removed = true; map.stop(); map.remove(); };
}
