// Weather input: the current observation per store, as an integration would send it (PUT
// /v1/programs/{id}/weather). Campaign weather conditions use the latest observation.

import { announce, h, replace, tableBox } from '../common/dom.js';
import { dateToZoned, zonedToDate } from '../common/format.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';
import { CONDITIONS } from './campaign_form.js';

export async function render(main, ctx) {
  const base = `/v1/programs/${ctx.program.id}`;
  const stores = await ctx.api.all(`${base}/stores`);
  const message = h('div', { id: 'weather-message' });
  const observed = h('input', { type: 'datetime-local', id: 'weather-at', value: dateToZoned(new Date().toISOString()) });
  const rows = stores.map((s) => {
    const temp = h('input', { type: 'number', step: '0.5', min: '-100', max: '70', inputmode: 'decimal', 'aria-label': t('weather.temp_for', { code: s.code }), dataset: { storeId: s.id, role: 'temp' } });
    const cond = h('select', { 'aria-label': t('weather.condition_for', { code: s.code }), dataset: { storeId: s.id, role: 'condition' } },
      h('option', { value: '' }, '—'), ...CONDITIONS.map((c) => h('option', { value: c }, t(`condition.${c}`))));
    return { s, temp, cond, tr: h('tr', {}, h('th', { scope: 'row' }, `${s.code} — ${s.name}`), h('td', {}, temp), h('td', {}, cond)) };
  });
  const all = h('select', { id: 'weather-all', 'aria-label': t('weather.all_condition') },
    h('option', { value: '' }, t('weather.all_condition')), ...CONDITIONS.map((c) => h('option', { value: c }, t(`condition.${c}`))));
  const allTemp = h('input', { type: 'number', step: '0.5', id: 'weather-all-temp', 'aria-label': t('weather.all_temp'), placeholder: t('weather.all_temp') });
  const apply = h('button', { type: 'button', onclick: () => {
    for (const r of rows) {
      if (allTemp.value !== '') r.temp.value = allTemp.value;
      if (all.value) r.cond.value = all.value;
    }
  } }, t('weather.apply_all'));
  const send = h('button', { type: 'submit', class: 'primary', id: 'weather-send' }, t('weather.send'));
  const form = h('form', { class: 'panel', novalidate: true },
    h('p', { class: 'hint' }, t('weather.hint')),
    h('div', { class: 'field' }, h('label', { for: 'weather-at' }, t('weather.observed_at', { tz: ctx.program.timezone })), observed),
    h('div', { class: 'row' }, allTemp, all, apply),
    tableBox(t('nav.weather'), h('table', { id: 'weather-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('weather.store')), h('th', { scope: 'col' }, t('weather.temp')), h('th', { scope: 'col' }, t('weather.condition')))),
      h('tbody', {}, ...rows.map((r) => r.tr)))),
    message,
    h('div', { class: 'actions' }, send));
  replace(main, h('h1', {}, t('weather.title')), form);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (send.dataset.busy === 'true') return;
    const at = zonedToDate(observed.value);
    const observations = rows.filter((r) => r.temp.value !== '' && r.cond.value)
      .map((r) => ({ store_id: r.s.id, temp_c: Number(r.temp.value), condition: r.cond.value, observed_at: at.toISOString() }));
    if (!observations.length) {
      replace(message, h('div', { class: 'notice error', role: 'alert' }, t('weather.nothing')));
      return;
    }
    send.dataset.busy = 'true';
    try {
      const res = await ctx.api.put(`${base}/weather`, { observations });
      const text = t('weather.sent', { count: res.stored });
      replace(message, h('div', { class: 'notice ok', role: 'status' }, text));
      announce(text);
    } catch (err) {
      replace(message, problemNotice(err));
    } finally {
      send.dataset.busy = 'false';
    }
  });
  return null;
}
