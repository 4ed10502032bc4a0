// GeoJSON import with a preview: the file's features on the map and in a table, checked by the
// server before anything is written; each bad feature is marked (map and table) with the reason.
// Only a collection with no bad feature can be imported; features whose latitude and longitude
// look swapped are marked too, and the manager swaps them or keeps them as they are.

import { ApiError } from '../common/api.js';
import { announce, h, replace, tableBox } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';
import { ERROR, PREVIEW, WARNING, swapZone, zoneToLayer } from './zones.js';

const L = window.L;

export class ImportPreview {
  constructor(opts) {
    Object.assign(this, opts);
    this.group = null;
  }

  close() {
    if (this.group) this.group.remove();
    this.group = null;
    this.root.hidden = true;
    replace(this.root);
  }

  async open(file) {
    this.close();
    this.root.hidden = false;
    let collection;
    try {
      collection = JSON.parse(await file.text());
    } catch {
      this.fail(t('import.not_json', { file: file.name }));
      return;
    }
    if (!collection || collection.type !== 'FeatureCollection' || !Array.isArray(collection.features)) {
      this.fail(t('import.not_collection', { file: file.name }));
      return;
    }
    await this.check(file.name, collection);
  }

  /** Ask the server to check the collection (nothing written), then show the preview. */
  async check(fileName, collection) {
    const features = collection.features;
    const bad = new Map(); // index -> reasons
    const swaps = new Map(); // index -> reason (the import needs confirm_location)
    let checked = false;
    let failure = null;
    try {
      const result = await this.ctx.api.post(`${this.base}/stores/import/check`, collection);
      for (const s of result.likely_swapped || []) swaps.set(s.index, s.reason);
      checked = true;
    } catch (err) {
      if (err instanceof ApiError && err.type === '/problems/invalid-features') {
        for (const e of err.errors) {
          const list = bad.get(e.index) || [];
          list.push(`${e.field}: ${e.reason || e.message}`);
          bad.set(e.index, list);
        }
        checked = true;
      } else {
        failure = err;
      }
    }
    this.close();
    this.root.hidden = false;
    this.show(fileName, collection, features, { bad, swaps, checked, failure });
  }

  /** The same collection with the flagged features' latitude and longitude exchanged. */
  swapped(collection, swaps) {
    return {
      ...collection,
      features: collection.features.map((f, i) => (swaps.has(i) ? { ...f, geometry: swapZone(f.geometry) } : f)),
    };
  }

  fail(message) {
    replace(this.root, h('h2', { id: 'import-title' }, t('import.title')),
      h('div', { class: 'notice error', role: 'alert' }, message),
      h('button', { type: 'button', onclick: () => this.close() }, t('common.close')));
    this.root.scrollIntoView({ block: 'nearest' });
  }

  show(fileName, collection, features, { bad, swaps, checked, failure }) {
    const existing = new Set(this.existing().map((s) => s.code));
    this.group = L.featureGroup().addTo(this.map);
    const rows = features.map((f, i) => {
      const reasons = bad.get(i);
      const swap = swaps.get(i);
      const code = f?.properties?.code ?? '';
      let layer = null;
      try {
        layer = zoneToLayer(f.geometry, reasons ? ERROR : swap ? WARNING : PREVIEW);
        const tip = reasons ? `#${i + 1} ${code}: ${reasons.join('; ')}` : swap ? `#${i + 1} ${code}: ${t('stores.swap_title')}` : `#${i + 1} ${code}`;
        layer.bindTooltip(tip, { permanent: Boolean(reasons || swap), className: reasons ? 'zone-error' : swap ? 'zone-warning' : 'zone-label' });
        this.group.addLayer(layer);
      } catch { /* a geometry Leaflet cannot draw: the table says why */ }
      const outcome = reasons ? t('import.bad') : existing.has(code) ? t('import.update') : t('import.new');
      return h('tr', { class: reasons ? 'bad' : swap ? 'warn' : '', dataset: { index: String(i) } },
        h('td', { class: 'num' }, String(i + 1)),
        h('td', {}, String(code)),
        h('td', {}, String(f?.properties?.name ?? '')),
        h('td', {}, String(f?.geometry?.type ?? '?')),
        h('td', {}, reasons ? h('span', { class: 'badge bad' }, outcome) : outcome,
          reasons ? h('ul', {}, ...reasons.map((r) => h('li', {}, r))) : null,
          swap ? h('p', { class: 'swap-reason' }, h('span', { class: 'badge paused' }, t('stores.swap_badge')), ' ', swap) : null));
    });
    if (this.group.getLayers().length) this.map.fitBounds(this.group.getBounds().pad(0.2));
    const keep = swaps.size > 0;
    const importButton = h('button', { type: 'button', class: 'primary', id: 'import-confirm', disabled: !checked || bad.size > 0 },
      t(keep ? 'import.confirm_keep' : 'import.confirm', { count: features.length }));
    importButton.addEventListener('click', () => this.commit(collection, importButton, keep));
    const swapButton = keep && !bad.size
      ? h('button', { type: 'button', id: 'import-swap', onclick: () => this.check(fileName, this.swapped(collection, swaps)) },
        t('import.swap', { count: swaps.size }))
      : null;
    const summary = failure ? problemNotice(failure)
      : bad.size ? h('div', { class: 'notice error', role: 'alert', id: 'import-errors' },
        t('import.bad_summary', { count: bad.size }))
        : keep ? h('div', { class: 'notice warn', role: 'alert', id: 'import-swaps' }, t('import.swap_summary', { count: swaps.size }))
          : h('div', { class: 'notice ok', role: 'status' }, t('import.good_summary', { count: features.length }));
    replace(this.root,
      h('h2', { id: 'import-title' }, t('import.title_file', { file: fileName })),
      summary,
      tableBox(t('import.title'), h('table', { id: 'import-table' },
        h('thead', {}, h('tr', {}, h('th', { class: 'num', scope: 'col' }, '#'), h('th', { scope: 'col' }, t('stores.code')),
          h('th', { scope: 'col' }, t('stores.name')), h('th', { scope: 'col' }, t('import.geometry')), h('th', { scope: 'col' }, t('import.outcome')))),
        h('tbody', {}, ...rows))),
      h('div', { class: 'actions' }, swapButton, importButton,
        h('button', { type: 'button', onclick: () => this.close() }, t('common.cancel'))));
    this.root.scrollIntoView({ block: 'nearest' });
    announce(bad.size ? t('import.bad_summary', { count: bad.size })
      : keep ? t('import.swap_summary', { count: swaps.size }) : t('import.good_summary', { count: features.length }), { error: bad.size > 0 || keep });
  }

  async commit(collection, button, confirmLocation) {
    if (button.dataset.busy === 'true') return;
    button.dataset.busy = 'true';
    try {
      const query = confirmLocation ? { confirm_location: 'true' } : {};
      const result = await this.ctx.api.post(`${this.base}/stores/import`, collection, { query });
      this.close();
      const parts = ['created', 'updated', 'unchanged'].filter((k) => k in result)
        .map((k) => t(`import.result_${k}`, { count: result[k] }));
      announce(parts.join(', '));
      await this.onImported({});
    } catch (err) {
      this.root.prepend(problemNotice(err));
    } finally {
      button.dataset.busy = 'false';
    }
  }
}
