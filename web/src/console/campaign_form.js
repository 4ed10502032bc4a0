// The campaign editor: every field of the contract, schedule in the program's local time,
// stores picked on the map or in the list. Errors from the API land on the field they name.

import { ApiError } from '../common/api.js';
import { announce, clearFieldErrors, field, h, replace, setFieldError, uid } from '../common/dom.js';
import { currentProgram, dateToZoned, moneyInput, parseMoney, zonedToDate } from '../common/format.js';
import { language, t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';
import { createMap, fitTo } from './map.js';
import { SELECTED, STYLE, zoneToLayer } from './zones.js';

const L = window.L;
export const CONDITIONS = ['clear', 'clouds', 'rain', 'snow', 'storm', 'fog'];
const KINDS = ['bonus_points', 'points_multiplier', 'percent_off', 'amount_off'];
const UNITS = { minutes: 60, hours: 3600, days: 86400 };

function weekdayName(iso) {
  // 2024-01-01 was a Monday: ISO weekday n is 2024-01-0n.
  return new Intl.DateTimeFormat(language(), { weekday: 'long', timeZone: 'UTC' }).format(new Date(Date.UTC(2024, 0, iso)));
}

function group(legend, name, ...children) {
  const id = uid('g');
  return h('fieldset', { id, dataset: { field: name } }, h('legend', {}, legend), ...children,
    h('p', { class: 'field-error', id: `${id}-error`, hidden: true }));
}

function num(value, attrs = {}) {
  return h('input', { type: 'number', inputmode: 'decimal', value: value ?? '', ...attrs });
}

function bestUnit(seconds) {
  if (!seconds) return ['hours', ''];
  if (seconds % 86400 === 0) return ['days', seconds / 86400];
  if (seconds % 3600 === 0) return ['hours', seconds / 3600];
  return ['minutes', Math.round(seconds / 60)];
}

export async function campaignForm(main, ctx, campaign) {
  const base = `/v1/programs/${ctx.program.id}`;
  const stores = await ctx.api.all(`${base}/stores`);
  const c = campaign || {
    name: '', store_ids: [], trigger: { event: 'enter' },
    schedule: { starts_at: new Date().toISOString(), ends_at: new Date(Date.now() + 30 * 86400e3).toISOString() },
    audience: { tiers: null }, context: {}, offer: { title: '', body: '', reward: { kind: 'bonus_points', value: 50 }, valid_for_s: 7200 },
    caps: {},
  };
  const inputs = {};

  // --- basics, trigger -------------------------------------------------------------------
  inputs.name = h('input', { type: 'text', value: c.name, maxlength: 200, required: true });
  const eventRadios = ['enter', 'dwell'].map((ev) => h('input', { type: 'radio', name: 'trigger-event', value: ev, checked: c.trigger.event === ev }));
  inputs.dwell = num(c.trigger.dwell_s ? c.trigger.dwell_s / 60 : '', { min: 1, step: 1 });
  const dwellField = field(t('campaign.dwell_minutes'), inputs.dwell, { name: 'trigger.dwell_s' });
  const syncDwell = () => { dwellField.wrap.hidden = !eventRadios[1].checked; };
  eventRadios.forEach((r) => r.addEventListener('change', syncDwell));
  syncDwell();

  // --- schedule ----------------------------------------------------------------------------
  inputs.starts = h('input', { type: 'datetime-local', value: dateToZoned(c.schedule.starts_at) });
  inputs.ends = h('input', { type: 'datetime-local', value: dateToZoned(c.schedule.ends_at) });
  const weekdays = [1, 2, 3, 4, 5, 6, 7].map((d) => h('input', { type: 'checkbox', value: String(d), checked: (c.schedule.weekdays || []).includes(d) }));
  const hoursList = h('div', { class: 'hours-list' });
  const addHours = (w = { from: '11:00', to: '15:00' }) => {
    const from = h('input', { type: 'time', value: w.from });
    const to = h('input', { type: 'time', value: w.to });
    const i = hoursList.children.length;
    const row = h('div', { class: 'row hours-row' },
      field(t('campaign.hours_from'), from, { name: `schedule.hours[${i}].from` }).wrap,
      field(t('campaign.hours_to'), to, { name: `schedule.hours[${i}].to` }).wrap,
      h('button', { type: 'button', class: 'danger', onclick: () => row.remove() }, t('common.remove')));
    hoursList.append(row);
  };
  (c.schedule.hours || []).forEach(addHours);

  // --- audience, weather ------------------------------------------------------------------
  const tiers = (ctx.program.tiers || []).map((tier) => h('input', { type: 'checkbox', value: tier.name, checked: (c.audience.tiers || []).includes(tier.name) }));
  inputs.minTemp = num(c.context.min_temp_c, { step: 0.5, min: -100, max: 70 });
  inputs.maxTemp = num(c.context.max_temp_c, { step: 0.5, min: -100, max: 70 });
  const conditions = CONDITIONS.map((cond) => h('input', { type: 'checkbox', value: cond, checked: (c.context.conditions || []).includes(cond) }));

  // --- offer ---------------------------------------------------------------------------------
  inputs.title = h('input', { type: 'text', value: c.offer.title, maxlength: 120, required: true });
  inputs.body = h('textarea', { maxlength: 1000, rows: 3 });
  inputs.body.value = c.offer.body;
  inputs.kind = h('select', {}, ...KINDS.map((k) => h('option', { value: k, selected: c.offer.reward.kind === k }, t(`reward.${k}`))));
  inputs.value = h('input', { type: 'text', inputmode: 'decimal', value: c.offer.reward.kind === 'amount_off' ? moneyInput(c.offer.reward.value) : String(c.offer.reward.value) });
  const valueHint = h('p', { class: 'hint', id: uid('hint') });
  const syncKind = () => { valueHint.textContent = t(`reward.hint.${inputs.kind.value}`, { currency: currentProgram().currency }); };
  inputs.kind.addEventListener('change', () => {
    syncKind();
  });
  syncKind();
  const [unit, amount] = bestUnit(c.offer.valid_for_s);
  inputs.validFor = num(amount, { min: 1, step: 1 });
  inputs.validUnit = h('select', { 'aria-label': t('campaign.unit') }, ...Object.keys(UNITS).map((u) => h('option', { value: u, selected: u === unit }, t(`unit.${u}`))));

  // --- caps ------------------------------------------------------------------------------------
  inputs.perDay = num(c.caps.per_member_per_day, { min: 1, step: 1 });
  inputs.perMember = num(c.caps.per_member_total, { min: 1, step: 1 });
  inputs.cooldown = num(c.caps.member_cooldown_s ? c.caps.member_cooldown_s / 3600 : '', { min: 0, step: 0.25 });
  inputs.budget = num(c.caps.max_issued, { min: 1, step: 1 });

  // --- stores: map and list ---------------------------------------------------------------------
  const chosen = new Set(c.store_ids);
  const allStores = h('input', { type: 'radio', name: 'store-scope', value: 'all', checked: chosen.size === 0 });
  const someStores = h('input', { type: 'radio', name: 'store-scope', value: 'some', checked: chosen.size > 0 });
  const mapEl = h('div', { class: 'map small', id: 'campaign-map', 'aria-label': t('campaign.stores_map') });
  const storeList = h('ul', { class: 'choices store-choices' });
  const storeBoxes = new Map();
  const layers = new Map();
  const paint = () => {
    for (const [id, layer] of layers) layer.setStyle(chosen.has(id) && someStores.checked ? SELECTED : STYLE);
    for (const [id, box] of storeBoxes) box.checked = chosen.has(id);
  };
  const toggle = (id, on) => {
    if (on) chosen.add(id); else chosen.delete(id);
    if (chosen.size) someStores.checked = true;
    paint();
  };
  for (const s of stores) {
    const box = h('input', { type: 'checkbox', value: s.id, checked: chosen.has(s.id) });
    box.addEventListener('change', () => toggle(s.id, box.checked));
    storeBoxes.set(s.id, box);
    storeList.append(h('li', {}, h('label', {}, box, `${s.code} — ${s.name}`)));
  }
  allStores.addEventListener('change', paint);
  someStores.addEventListener('change', paint);

  const message = h('div', { id: 'campaign-message' });
  const save = h('button', { type: 'submit', class: 'primary', id: 'save-campaign' }, campaign ? t('common.save') : t('campaign.create'));
  const form = h('form', { novalidate: true, id: 'campaign-form' },
    h('h1', {}, campaign ? t('campaign.edit_title', { name: campaign.name }) : t('campaign.new_title')),
    message,
    field(t('campaign.name'), inputs.name, { name: 'name' }).wrap,
    group(t('campaign.trigger'), 'trigger',
      h('div', { class: 'choices' }, ...eventRadios.map((r) => h('label', {}, r, t(`trigger.${r.value}`)))),
      dwellField.wrap),
    group(t('campaign.schedule'), 'schedule',
      h('p', { class: 'hint' }, t('campaign.schedule_hint', { tz: ctx.program.timezone })),
      h('div', { class: 'row' },
        field(t('campaign.starts'), inputs.starts, { name: 'schedule.starts_at' }).wrap,
        field(t('campaign.ends'), inputs.ends, { name: 'schedule.ends_at' }).wrap),
      group(t('campaign.weekdays'), 'schedule.weekdays',
        h('p', { class: 'hint' }, t('campaign.weekdays_hint')),
        h('div', { class: 'choices' }, ...weekdays.map((w) => h('label', {}, w, weekdayName(Number(w.value)))))),
      group(t('campaign.hours'), 'schedule.hours',
        h('p', { class: 'hint' }, t('campaign.hours_hint')),
        hoursList,
        h('button', { type: 'button', onclick: () => addHours() }, t('campaign.add_hours')))),
    group(t('campaign.audience'), 'audience.tiers',
      h('p', { class: 'hint' }, t('campaign.audience_hint')),
      tiers.length ? h('div', { class: 'choices' }, ...tiers.map((b) => h('label', {}, b, b.value))) : h('p', {}, t('campaign.no_tiers'))),
    group(t('campaign.weather'), 'context',
      h('p', { class: 'hint' }, t('campaign.weather_hint')),
      h('div', { class: 'row' },
        field(t('campaign.min_temp'), inputs.minTemp, { name: 'context.min_temp_c' }).wrap,
        field(t('campaign.max_temp'), inputs.maxTemp, { name: 'context.max_temp_c' }).wrap),
      group(t('campaign.conditions'), 'context.conditions',
        h('div', { class: 'choices' }, ...conditions.map((b) => h('label', {}, b, t(`condition.${b.value}`)))))),
    group(t('campaign.offer'), 'offer',
      field(t('campaign.title'), inputs.title, { name: 'offer.title' }).wrap,
      field(t('campaign.body'), inputs.body, { name: 'offer.body' }).wrap,
      h('div', { class: 'row' },
        field(t('campaign.reward_kind'), inputs.kind, { name: 'offer.reward.kind' }).wrap,
        (() => { const f = field(t('campaign.reward_value'), inputs.value, { name: 'offer.reward.value' }); f.wrap.insertBefore(valueHint, inputs.value); return f.wrap; })()),
      h('div', { class: 'row' },
        field(t('campaign.valid_for'), inputs.validFor, { name: 'offer.valid_for_s' }).wrap,
        h('div', { class: 'field' }, h('span', { class: 'label', 'aria-hidden': 'true' }, ' '), inputs.validUnit))),
    group(t('campaign.caps'), 'caps',
      h('div', { class: 'row' },
        field(t('campaign.per_day'), inputs.perDay, { name: 'caps.per_member_per_day' }).wrap,
        field(t('campaign.per_member'), inputs.perMember, { name: 'caps.per_member_total' }).wrap,
        field(t('campaign.cooldown_hours'), inputs.cooldown, { name: 'caps.member_cooldown_s' }).wrap,
        field(t('campaign.budget'), inputs.budget, { name: 'caps.max_issued' }).wrap)),
    group(t('campaign.stores'), 'store_ids',
      h('div', { class: 'choices' }, h('label', {}, allStores, t('campaign.all_stores')), h('label', {}, someStores, t('campaign.some_stores'))),
      h('p', { class: 'hint' }, t('campaign.stores_hint')),
      mapEl, storeList),
    h('div', { class: 'actions' }, save, h('a', { class: 'button', href: '#/campaigns' }, t('common.cancel'))));

  replace(main, form);
  const map = createMap(mapEl);
  const storeGroup = L.featureGroup().addTo(map);
  for (const s of stores) {
    const layer = zoneToLayer(s.zone).bindTooltip(`${s.code} — ${s.name}`, { className: 'zone-label' });
    layer.on('click', () => toggle(s.id, !chosen.has(s.id)));
    layers.set(s.id, layer);
    storeGroup.addLayer(layer);
  }
  fitTo(map, storeGroup);
  paint();
  let removed = false;
  setTimeout(() => { if (!removed) map.invalidateSize(); }, 0);

  const intOrNull = (el) => (el.value === '' ? null : Number(el.value));
  function collect() {
    const hours = [...hoursList.querySelectorAll('.hours-row')].map((row) => {
      const [from, to] = row.querySelectorAll('input');
      return { from: from.value, to: to.value };
    });
    const days = weekdays.filter((w) => w.checked).map((w) => Number(w.value));
    const kind = inputs.kind.value;
    const rawValue = inputs.value.value.trim();
    const value = kind === 'amount_off' ? parseMoney(rawValue) : (/^\d+$/.test(rawValue) ? Number(rawValue) : NaN);
    const startsAt = zonedToDate(inputs.starts.value);
    const endsAt = zonedToDate(inputs.ends.value);
    const cond = conditions.filter((b) => b.checked).map((b) => b.value);
    const audienceTiers = tiers.filter((b) => b.checked).map((b) => b.value);
    const cooldownHours = intOrNull(inputs.cooldown);
    const validFor = intOrNull(inputs.validFor);
    const context = {};
    if (inputs.minTemp.value !== '') context.min_temp_c = Number(inputs.minTemp.value);
    if (inputs.maxTemp.value !== '') context.max_temp_c = Number(inputs.maxTemp.value);
    if (cond.length) context.conditions = cond;
    const caps = {};
    if (inputs.perDay.value !== '') caps.per_member_per_day = intOrNull(inputs.perDay);
    if (inputs.perMember.value !== '') caps.per_member_total = intOrNull(inputs.perMember);
    if (cooldownHours) caps.member_cooldown_s = Math.round(cooldownHours * 3600);
    if (inputs.budget.value !== '') caps.max_issued = intOrNull(inputs.budget);
    const problems = [];
    if (!startsAt) problems.push(['schedule.starts_at', t('campaign.need_date')]);
    if (!endsAt) problems.push(['schedule.ends_at', t('campaign.need_date')]);
    if (!Number.isFinite(value) || value === null) problems.push(['offer.reward.value', t('campaign.need_number')]);
    if (!validFor) problems.push(['offer.valid_for_s', t('campaign.need_number')]);
    const body = {
      name: inputs.name.value.trim(),
      store_ids: someStores.checked ? [...chosen] : [],
      trigger: eventRadios[1].checked ? { event: 'dwell', dwell_s: Math.round(Number(inputs.dwell.value || 0) * 60) } : { event: 'enter' },
      schedule: {
        starts_at: startsAt ? startsAt.toISOString() : null,
        ends_at: endsAt ? endsAt.toISOString() : null,
        ...(days.length ? { weekdays: days } : {}),
        ...(hours.length ? { hours } : {}),
      },
      audience: audienceTiers.length ? { tiers: audienceTiers } : {},
      context,
      offer: {
        title: inputs.title.value.trim(), body: inputs.body.value.trim(),
        reward: { kind, value }, valid_for_s: (validFor || 0) * UNITS[inputs.validUnit.value],
      },
      caps,
    };
    return { body, problems };
  }

  function fieldElement(path) {
    let p = path;
    while (p) {
      const el = form.querySelector(`[data-field="${CSS.escape(p)}"]`);
      if (el) return el;
      p = p.replace(/(\[\d+\]|\.[^.[\]]+)$/, '');
    }
    return null;
  }

  function showErrors(list) {
    let first = null;
    for (const [path, text] of list) {
      const el = fieldElement(path);
      if (el) { setFieldError(el, text); first = first || el; }
    }
    return first;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (save.dataset.busy === 'true') return;
    clearFieldErrors(form);
    replace(message);
    const { body, problems } = collect();
    if (problems.length) {
      const first = showErrors(problems);
      replace(message, h('div', { class: 'notice error', role: 'alert' }, t('common.fix_fields')));
      if (first) first.focus();
      return;
    }
    let payload = body;
    if (campaign) { // only the parts that changed: each part replaces the stored one whole
      payload = {};
      for (const part of Object.keys(body)) {
        const before = part === 'audience' ? (campaign.audience.tiers ? { tiers: campaign.audience.tiers } : {}) : campaign[part];
        if (JSON.stringify(canon(before)) !== JSON.stringify(canon(body[part]))) payload[part] = body[part];
      }
      if (!Object.keys(payload).length) {
        replace(message, h('div', { class: 'notice ok', role: 'status' }, t('campaign.no_change')));
        return;
      }
    }
    save.dataset.busy = 'true';
    try {
      const saved = campaign
        ? await ctx.api.patch(`${base}/campaigns/${campaign.id}`, payload)
        : await ctx.api.post(`${base}/campaigns`, payload);
      announce(t('campaign.saved', { name: saved.name }));
      window.location.hash = `#/campaigns?saved=${saved.id}`;
    } catch (err) {
      if (err instanceof ApiError) {
        const list = (err.errors || []).map((e) => [e.field, e.message || e.reason]);
        if (err.field) list.push([err.field, err.problem.detail]);
        const first = showErrors(list);
        replace(message, problemNotice(err));
        if (first) first.focus();
      } else {
        replace(message, problemNotice(err));
      }
    } finally {
      save.dataset.busy = 'false';
    }
  });
  return () => { removed = true; map.stop(); map.remove(); };
}

function canon(value) {
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) return new Date(value).getTime();
  if (Array.isArray(value)) return value.map(canon);
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value).sort()) if (value[k] !== null && value[k] !== undefined) out[k] = canon(value[k]);
    return out;
  }
  return value;
}

