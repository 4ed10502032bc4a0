// The store panel beside the map: a new zone's form after drawing, or the selected store's
// form (code, name, zone as GeoJSON; edit the shape, move it, cut holes, swap a likely
// latitude/longitude mix-up, delete). A refused zone is shown on the shape itself.

import { ActionKey, ApiError } from '../common/api.js';
import { announce, clearFieldErrors, field, h, replace, setFieldError } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';
import { ERROR, PREVIEW, SELECTED, WARNING, layerToZone, problemPosition, swapZone, zoneToLayer } from './zones.js';

const L = window.L;

export class StoreEditor {
  constructor(opts) {
    Object.assign(this, opts);
    this.draft = null;
    this.marks = [];
    this.key = new ActionKey();
  }

  clearMarks() {
    for (const m of this.marks) m.remove();
    this.marks = [];
  }

  idle() {
    this.discardDraft();
    this.clearMarks();
    replace(this.root,
      h('h2', { id: 'editor-title' }, t('stores.editor')),
      h('p', {}, t('stores.editor_idle')));
  }

  discardDraft() {
    if (this.draft) {
      this.draft.pm?.disable();
      this.draft.remove();
      this.draft = null;
    }
  }

  form(store, layer) {
    const code = h('input', { type: 'text', name: 'code', value: store ? store.code : '', maxlength: 64, autocomplete: 'off', required: true });
    const name = h('input', { type: 'text', name: 'name', value: store ? store.name : '', maxlength: 200, autocomplete: 'off', required: true });
    const zone = h('textarea', { name: 'zone', rows: 6, spellcheck: 'false' });
    zone.value = JSON.stringify(store ? store.zone : layerToZone(layer));
    const message = h('div', { class: 'form-message' });
    return {
      code: field(t('stores.code'), code, { name: 'code' }),
      name: field(t('stores.name'), name, { name: 'name' }),
      zone: field(t('stores.zone_json'), zone, { name: 'zone', hint: t('stores.zone_hint') }),
      message,
    };
  }

  /** A zone just drawn on the map: ask for its code and name. */
  startNew(layer) {
    this.discardDraft();
    this.clearMarks();
    this.draft = layer;
    layer.setStyle(PREVIEW);
    const f = this.form(null, layer);
    const save = h('button', { type: 'submit', class: 'primary', id: 'save-store' }, t('stores.create'));
    const form = h('form', { novalidate: true },
      h('h2', { id: 'editor-title' }, t('stores.new_store')),
      f.code.wrap, f.name.wrap, f.zone.wrap, f.message,
      h('div', { class: 'actions' }, save,
        h('button', { type: 'button', onclick: () => { this.discardDraft(); this.idle(); } }, t('common.discard'))));
    this.syncLayerToText(layer, f.zone.input);
    f.zone.input.addEventListener('change', () => this.textToDraft(f.zone.input));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.create(f, save);
    });
    replace(this.root, form);
    f.code.input.focus();
    announce(t('stores.drawn'));
  }

  syncLayerToText(layer, textarea) {
    const update = () => { textarea.value = JSON.stringify(layerToZone(layer)); };
    layer.on('pm:edit pm:dragend pm:markerdragend', update);
  }

  textToDraft(textarea) {
    const zone = this.parseZone(textarea);
    if (!zone || !this.draft) return;
    const map = this.map;
    this.discardDraft();
    this.draft = zoneToLayer(zone, PREVIEW).addTo(map);
    this.syncLayerToText(this.draft, textarea);
  }

  parseZone(textarea) {
    try {
      const zone = JSON.parse(textarea.value);
      setFieldError(textarea, '');
      return zone;
    } catch {
      setFieldError(textarea, t('stores.zone_not_json'));
      return null;
    }
  }

  async create(f, button, confirm = false) {
    if (button.dataset.busy === 'true') return;
    clearFieldErrors(this.root);
    this.clearMarks();
    replace(f.message);
    const zone = this.parseZone(f.zone.input);
    if (!zone) return;
    const body = { code: f.code.input.value.trim(), name: f.name.input.value.trim(), zone };
    button.dataset.busy = 'true';
    try {
      const created = await this.ctx.api.post(`${this.base}/stores`, body, { query: confirm ? { confirm_location: 'true' } : {} });
      this.discardDraft();
      announce(t('stores.created', { code: created.code }));
      await this.onSaved({ focusId: created.id });
    } catch (err) {
      this.showError(err, f, this.draft, () => this.create(f, button, true), (swapped) => {
        f.zone.input.value = JSON.stringify(swapped);
        this.textToDraft(f.zone.input);
        this.create(f, button);
      });
    } finally {
      button.dataset.busy = 'false';
    }
  }

  /** The selected store: its form and the tools that change its zone. */
  show(store, { flagged }) {
    this.discardDraft();
    this.clearMarks();
    const layer = this.layerOf(store.id);
    const f = this.form(store, layer);
    this.syncLayerToText(layer, f.zone.input);
    const save = h('button', { type: 'submit', class: 'primary', id: 'save-store' }, t('common.save'));
    const edit = h('button', { type: 'button', 'aria-pressed': 'false', id: 'edit-shape' }, t('stores.edit_shape'));
    const move = h('button', { type: 'button', 'aria-pressed': 'false', id: 'move-shape' }, t('stores.move_shape'));
    const cut = store.zone.type === 'Circle' ? null
      : h('button', { type: 'button', id: 'cut-hole' }, t('stores.cut_hole'));
    const swap = flagged ? h('button', { type: 'button', id: 'swap-store' }, t('stores.swap_fix')) : null;
    const del = h('button', { type: 'button', class: 'danger', id: 'delete-store' }, t('stores.delete'));
    edit.addEventListener('click', () => {
      const on = edit.getAttribute('aria-pressed') !== 'true';
      edit.setAttribute('aria-pressed', String(on));
      if (on) layer.pm.enable({ allowSelfIntersection: true });
      else layer.pm.disable();
    });
    move.addEventListener('click', () => {
      const on = move.getAttribute('aria-pressed') !== 'true';
      move.setAttribute('aria-pressed', String(on));
      if (on) layer.pm.enableLayerDrag();
      else layer.pm.disableLayerDrag();
    });
    if (cut) {
      cut.addEventListener('click', () => {
        this.map.pm.enableGlobalCutMode({ layersToCut: [layer], allowSelfIntersection: false });
        announce(t('stores.cutting'));
        this.map.once('pm:cut', ({ layer: result }) => {
          this.map.pm.disableGlobalCutMode();
          result.remove();
          const replaced = zoneToLayer(layerToZone(result), SELECTED);
          this.replaceLayer(store.id, replaced);
          replaced.setStyle(SELECTED);
          f.zone.input.value = JSON.stringify(layerToZone(replaced));
          announce(t('stores.cut_done'));
        });
      });
    }
    if (swap) {
      swap.addEventListener('click', () => {
        f.zone.input.value = JSON.stringify(swapZone(JSON.parse(f.zone.input.value)));
        announce(t('stores.swapped_unsaved'));
        f.zone.input.dispatchEvent(new Event('change'));
      });
    }
    f.zone.input.addEventListener('change', () => {
      const zone = this.parseZone(f.zone.input);
      if (!zone) return;
      layer.pm?.disable();
      const replaced = zoneToLayer(zone, SELECTED);
      this.replaceLayer(store.id, replaced);
      replaced.setStyle(SELECTED);
    });
    del.addEventListener('click', () => this.remove(store, del));
    const form = h('form', { novalidate: true },
      h('h2', { id: 'editor-title' }, t('stores.store_title', { code: store.code })),
      flagged ? h('div', { class: 'notice warn', id: 'swap-flag' }, flagged) : null,
      f.code.wrap, f.name.wrap, f.zone.wrap, f.message,
      h('div', { class: 'actions' }, edit, move, cut, swap),
      h('div', { class: 'actions' }, save, del,
        h('button', { type: 'button', onclick: () => { layer.pm?.disable(); this.onCancel(); this.onSaved({ focusId: null }); } }, t('common.close'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.update(store, f, save);
    });
    replace(this.root, form);
  }

  async update(store, f, button, confirm = false) {
    if (button.dataset.busy === 'true') return;
    clearFieldErrors(this.root);
    this.clearMarks();
    replace(f.message);
    const zone = this.parseZone(f.zone.input);
    if (!zone) return;
    const body = {};
    const code = f.code.input.value.trim();
    const name = f.name.input.value.trim();
    if (code !== store.code) body.code = code;
    if (name !== store.name) body.name = name;
    if (JSON.stringify(zone) !== JSON.stringify(store.zone)) body.zone = zone;
    if (!Object.keys(body).length) {
      replace(f.message, h('div', { class: 'notice ok' }, t('stores.no_change')));
      return;
    }
    button.dataset.busy = 'true';
    try {
      const saved = await this.ctx.api.patch(`${this.base}/stores/${store.id}`, body, { query: confirm ? { confirm_location: 'true' } : {} });
      announce(t('stores.saved', { code: saved.code }));
      await this.onSaved({ focusId: saved.id });
    } catch (err) {
      this.showError(err, f, this.layerOf(store.id), () => this.update(store, f, button, true), (swapped) => {
        f.zone.input.value = JSON.stringify(swapped);
        f.zone.input.dispatchEvent(new Event('change'));
        this.update(store, f, button);
      });
    } finally {
      button.dataset.busy = 'false';
    }
  }

  async remove(store, button) {
    if (!window.confirm(t('stores.confirm_delete', { code: store.code }))) return;
    button.dataset.busy = 'true';
    try {
      await this.ctx.api.del(`${this.base}/stores/${store.id}`);
      announce(t('stores.deleted', { code: store.code }));
      await this.onDeleted({});
    } catch (err) {
      replace(this.root.querySelector('.form-message'), problemNotice(err));
    } finally {
      button.dataset.busy = 'false';
    }
  }

  /** A refused save: on the shape (zone problems), on the fields, or as a notice. */
  showError(err, f, layer, saveAnyway, saveSwapped) {
    if (!(err instanceof ApiError)) {
      replace(f.message, problemNotice(err));
      return;
    }
    const zoneProblem = err.type === '/problems/invalid-zone' || String(err.field || '').startsWith('zone');
    if (err.type === '/problems/likely-swapped-coordinates') {
      // The API refuses what looks swapped until the manager says which it is.
      const zone = JSON.parse(f.zone.input.value);
      const reason = (err.errors[0] || {}).reason || err.problem.detail;
      replace(f.message, h('div', { class: 'notice warn', role: 'alert', id: 'swap-problem' },
        h('p', {}, h('strong', {}, t('stores.swap_title')), ' ', reason),
        h('div', { class: 'actions' },
          h('button', { type: 'button', id: 'swap-and-save', onclick: () => saveSwapped(swapZone(zone)) }, t('stores.swap_and_save')),
          h('button', { type: 'button', id: 'save-as-drawn', onclick: saveAnyway }, t('stores.keep_location')))));
      if (layer) {
        // Where the zone is as given, and where it would be swapped: both in view, joined.
        this.markOnMap(layer, reason, 'zone-warning');
        const at = layer.getBounds ? layer.getBounds().getCenter() : layer.getLatLng();
        const other = L.latLng(at.lng, at.lat);
        this.marks.push(L.polyline([at, other], { ...WARNING, interactive: false }).addTo(this.map),
          L.circleMarker(other, { ...WARNING, radius: 8, interactive: false }).addTo(this.map));
        this.map.fitBounds(L.latLngBounds([at, other]).pad(0.3));
      }
      announce(reason, { error: true });
      return;
    }
    if (zoneProblem && layer) {
      const message = t('stores.zone_refused', { detail: err.problem.detail || err.message });
      setFieldError(f.zone.input, message);
      this.markOnMap(layer, message, 'zone-error');
      announce(message, { error: true });
      replace(f.message, h('div', { class: 'notice error', id: 'zone-error' }, message));
      return;
    }
    let placed = false;
    for (const e of err.errors || []) {
      const name = String(e.field || '').split('.')[0];
      const target = { code: f.code.input, name: f.name.input, zone: f.zone.input }[name];
      if (target) { setFieldError(target, e.message || e.reason); placed = true; }
    }
    if (err.status === 409 && String(err.field || 'code').startsWith('code')) {
      setFieldError(f.code.input, err.problem.detail);
      placed = true;
    }
    replace(f.message, placed ? h('div', { class: 'notice error', role: 'alert' }, t('common.fix_fields')) : problemNotice(err));
  }

  markOnMap(layer, message, className) {
    layer.setStyle(className === 'zone-error' ? ERROR : { ...ERROR, color: '#b06d00' });
    const where = problemPosition(message) || layer.getBounds().getCenter();
    const pin = L.marker(where, {
      icon: L.divIcon({ className: className === 'zone-error' ? 'error-pin' : 'warn-pin', iconSize: [18, 18] }),
      keyboard: false, interactive: false,
    }).bindTooltip(message, { permanent: true, direction: 'top', className }).addTo(this.map);
    this.marks.push(pin);
  }
}
