// The rewards catalogue: the list (retire), the editor, each reward's figures and revisions,
// and the program's rule for expired vouchers (admins change it). Errors from the API land on
// the field they name.

import { ApiError } from '../common/api.js';
import { announce, clearFieldErrors, field, h, replace, setFieldError, tableBox } from '../common/dom.js';
import { currentProgram, dateTime, dateToZoned, money, moneyInput, number, parseMoney, zonedToDate } from '../common/format.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';

const KINDS = ['voucher', 'amount_off', 'stored_value'];
const UNITS = { hours: 3600, days: 86400 };

export async function render(main, ctx, { parts, query }) {
  if (parts[1] === 'new') return rewardForm(main, ctx, null);
  if (parts[1] && parts[2] === 'stats') return stats(main, ctx, parts[1]);
  if (parts[1] && parts[2] === 'revisions') return revisions(main, ctx, parts[1]);
  if (parts[1]) return rewardForm(main, ctx, await ctx.api.get(`${base(ctx)}/${parts[1]}`));
  return list(main, ctx, query);
}

function base(ctx) {
  return `/v1/programs/${ctx.program.id}/rewards`;
}

function valueText(r) {
  if (r.value === null || r.value === undefined) return '—';
  return money(r.value);
}

async function list(main, ctx, query) {
  const status = h('div', { id: 'rewards-status' });
  const box = tableBox(t('rewards.title'));
  const returns = h('input', { type: 'checkbox', id: 'returns-points', checked: ctx.program.voucher_expiry_returns_points, disabled: ctx.account.role !== 'admin' });
  returns.addEventListener('change', async () => {
    try {
      ctx.program = await ctx.api.patch(`/v1/programs/${ctx.program.id}`, { voucher_expiry_returns_points: returns.checked });
      announce(t('rewards.setting_saved'));
      replace(status, h('div', { class: 'notice ok', role: 'status' }, t('rewards.setting_saved')));
    } catch (err) {
      returns.checked = !returns.checked;
      replace(status, problemNotice(err));
    }
  });
  replace(main,
    h('h1', {}, t('rewards.title')),
    status,
    h('div', { class: 'actions' }, h('a', { class: 'button primary', href: '#/rewards/new', id: 'new-reward' }, t('rewards.new'))),
    h('section', { class: 'panel', 'aria-labelledby': 'rewards-list' }, h('h2', { id: 'rewards-list' }, t('rewards.list')), box),
    h('section', { class: 'panel', 'aria-labelledby': 'rewards-expiry' }, h('h2', { id: 'rewards-expiry' }, t('rewards.expiry_title')),
      h('label', {}, returns, t('rewards.returns_points')),
      h('p', { class: 'hint' }, ctx.account.role === 'admin' ? t('rewards.returns_hint') : t('rewards.returns_admin_only'))));
  if (query.get('saved')) replace(status, h('div', { class: 'notice ok', role: 'status' }, t('rewards.saved_notice')));

  async function retire(r, button) {
    if (button.dataset.busy === 'true') return;
    if (!window.confirm(t('rewards.retire_confirm', { name: r.name }))) return;
    button.dataset.busy = 'true';
    try {
      await ctx.api.post(`${base(ctx)}/${r.id}/retire`, {});
      const text = t('rewards.retired', { name: r.name });
      replace(status, h('div', { class: 'notice ok', role: 'status' }, text));
      announce(text);
      await load();
    } catch (err) {
      replace(status, problemNotice(err));
    } finally {
      button.dataset.busy = 'false';
    }
  }

  async function load() {
    const rewards = await ctx.api.all(base(ctx));
    if (!rewards.length) {
      replace(box, h('p', {}, t('rewards.none')));
      return;
    }
    replace(box, h('table', { id: 'rewards-table' },
      h('thead', {}, h('tr', {}, ...['name', 'kind', 'cost', 'value', 'stock', 'claimed', 'status', 'actions']
        .map((k) => h('th', { scope: 'col', class: ['cost', 'value', 'stock', 'claimed'].includes(k) ? 'num' : '' }, t(`rewards.col_${k}`))))),
      h('tbody', {}, ...rewards.map((r) => {
        const retireButton = r.status === 'active' ? h('button', { type: 'button', class: 'danger' }, t('rewards.retire')) : null;
        if (retireButton) retireButton.addEventListener('click', () => retire(r, retireButton));
        return h('tr', { dataset: { rewardId: r.id } },
          h('td', {}, h('a', { href: `#/rewards/${r.id}` }, r.name)),
          h('td', {}, t(`reward_kind.${r.kind}`)),
          h('td', { class: 'num' }, number(r.points_cost)),
          h('td', { class: 'num' }, valueText(r)),
          h('td', { class: 'num' }, r.stock === null ? t('rewards.unlimited') : `${number(r.stock_left)} / ${number(r.stock)}`),
          h('td', { class: 'num' }, number(r.claimed)),
          h('td', {}, h('span', { class: `badge ${r.status}` }, t(`reward_status.${r.status}`))),
          h('td', {}, h('div', { class: 'actions' },
            h('a', { class: 'button', href: `#/rewards/${r.id}/stats` }, t('rewards.stats')),
            h('a', { class: 'button', href: `#/rewards/${r.id}/revisions` }, t('rewards.revisions')),
            retireButton)));
      }))));
  }
  await load();
  return null;
}

function num(value, attrs = {}) {
  return h('input', { type: 'number', inputmode: 'numeric', value: value ?? '', step: 1, ...attrs });
}

async function rewardForm(main, ctx, reward) {
  const stores = await ctx.api.all(`/v1/programs/${ctx.program.id}/stores`);
  const r = reward || { name: '', description: '', image_url: null, points_cost: 100, kind: 'voucher', value: null,
    stock: null, per_member_limit: null, claimable_from: null, claimable_until: null,
    voucher_valid_for_s: 30 * 86400, tiers: [], store_ids: [] };
  const days = r.voucher_valid_for_s % 86400 === 0;
  const inputs = {
    name: h('input', { type: 'text', value: r.name, maxlength: 200, required: true }),
    description: h('textarea', { maxlength: 2000, rows: 3 }),
    image_url: h('input', { type: 'url', value: r.image_url || '', maxlength: 2048 }),
    points_cost: num(r.points_cost, { min: 1 }),
    kind: h('select', {}, ...KINDS.map((k) => h('option', { value: k, selected: r.kind === k }, t(`reward_kind.${k}`)))),
    value: h('input', { type: 'text', inputmode: 'decimal', value: r.value === null ? '' : moneyInput(r.value) }),
    stock: num(r.stock, { min: 0 }),
    per_member_limit: num(r.per_member_limit, { min: 1 }),
    claimable_from: h('input', { type: 'datetime-local', value: r.claimable_from ? dateToZoned(r.claimable_from) : '' }),
    claimable_until: h('input', { type: 'datetime-local', value: r.claimable_until ? dateToZoned(r.claimable_until) : '' }),
    valid_for: num(r.voucher_valid_for_s / (days ? 86400 : 3600), { min: 1 }),
    unit: h('select', { 'aria-label': t('rewards.unit') }, ...Object.keys(UNITS).map((u) => h('option', { value: u, selected: (u === 'days') === days }, t(`unit.${u}`)))),
  };
  inputs.description.value = r.description;
  const tiers = (ctx.program.tiers || []).map((tier) => h('input', { type: 'checkbox', value: tier.name, checked: r.tiers.includes(tier.name) }));
  const storeBoxes = stores.map((s) => h('input', { type: 'checkbox', value: s.id, checked: r.store_ids.includes(s.id) }));
  const f = (key, label, opts = {}) => field(label, inputs[key], { name: key, ...opts }).wrap;
  const message = h('div', { id: 'reward-message' });
  const save = h('button', { type: 'submit', class: 'primary', id: 'save-reward' }, reward ? t('common.save') : t('rewards.create'));
  const form = h('form', { novalidate: true, id: 'reward-form' },
    h('h1', {}, reward ? t('rewards.edit_title', { name: reward.name }) : t('rewards.new_title')),
    message,
    f('name', t('rewards.name')),
    f('description', t('rewards.description')),
    f('image_url', t('rewards.image_url')),
    h('div', { class: 'row' },
      f('points_cost', t('rewards.points_cost')),
      f('kind', t('rewards.kind')),
      f('value', t('rewards.value', { currency: currentProgram().currency }), { hint: t('rewards.value_hint') })),
    h('div', { class: 'row' },
      f('stock', t('rewards.stock'), { hint: t('rewards.empty_unlimited') }),
      f('per_member_limit', t('rewards.per_member_limit'), { hint: t('rewards.empty_unlimited') })),
    h('div', { class: 'row' },
      f('claimable_from', t('rewards.claimable_from', { tz: ctx.program.timezone })),
      f('claimable_until', t('rewards.claimable_until', { tz: ctx.program.timezone }))),
    h('div', { class: 'row' },
      field(t('rewards.valid_for'), inputs.valid_for, { name: 'voucher_valid_for_s' }).wrap,
      h('div', { class: 'field' }, h('span', { class: 'label', 'aria-hidden': 'true' }, ' '), inputs.unit)),
    h('fieldset', { dataset: { field: 'tiers' } }, h('legend', {}, t('rewards.tiers')),
      h('p', { class: 'hint' }, t('rewards.tiers_hint')),
      tiers.length ? h('div', { class: 'choices' }, ...tiers.map((b) => h('label', {}, b, b.value))) : h('p', {}, t('campaign.no_tiers'))),
    h('fieldset', { dataset: { field: 'store_ids' } }, h('legend', {}, t('rewards.stores')),
      h('p', { class: 'hint' }, t('rewards.stores_hint')),
      h('ul', { class: 'choices store-choices' }, ...storeBoxes.map((b, i) => h('li', {}, h('label', {}, b, `${stores[i].code} — ${stores[i].name}`))))),
    h('div', { class: 'actions' }, save, h('a', { class: 'button', href: '#/rewards' }, t('common.cancel'))));
  replace(main, form);

  const intOrNull = (el) => (el.value === '' ? null : Number(el.value));
  function collect() {
    const problems = [];
    const rawValue = inputs.value.value.trim();
    const value = rawValue === '' ? null : parseMoney(rawValue);
    if (rawValue !== '' && value === null) problems.push(['value', t('rewards.need_amount')]);
    const at = (el) => (el.value ? zonedToDate(el.value)?.toISOString() ?? null : null);
    const validFor = intOrNull(inputs.valid_for);
    if (!validFor) problems.push(['voucher_valid_for_s', t('campaign.need_number')]);
    const body = {
      name: inputs.name.value.trim(), description: inputs.description.value.trim(),
      image_url: inputs.image_url.value.trim() || null, points_cost: intOrNull(inputs.points_cost),
      kind: inputs.kind.value, value, stock: intOrNull(inputs.stock),
      per_member_limit: intOrNull(inputs.per_member_limit),
      claimable_from: at(inputs.claimable_from), claimable_until: at(inputs.claimable_until),
      voucher_valid_for_s: (validFor || 0) * UNITS[inputs.unit.value],
      tiers: tiers.filter((b) => b.checked).map((b) => b.value),
      store_ids: storeBoxes.filter((b) => b.checked).map((b) => b.value),
    };
    return { body, problems };
  }

  function showErrors(list) {
    let first = null;
    for (const [path, text] of list) {
      const el = form.querySelector(`[data-field="${CSS.escape(path.replace(/\[\d+\]$/, ''))}"]`);
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
    if (reward) { // only what changed (a PATCH replaces each field given)
      payload = {};
      for (const [k, v] of Object.entries(body)) {
        const before = ['claimable_from', 'claimable_until'].includes(k) && reward[k] ? new Date(reward[k]).toISOString() : reward[k];
        if (JSON.stringify(before ?? null) !== JSON.stringify(v)) payload[k] = v;
      }
      if (!Object.keys(payload).length) {
        replace(message, h('div', { class: 'notice ok', role: 'status' }, t('campaign.no_change')));
        return;
      }
    } else {
      for (const k of Object.keys(payload)) if (payload[k] === null) delete payload[k];
    }
    save.dataset.busy = 'true';
    try {
      const saved = reward ? await ctx.api.patch(`${base(ctx)}/${reward.id}`, payload) : await ctx.api.post(base(ctx), payload);
      announce(t('rewards.saved', { name: saved.name }));
      window.location.hash = `#/rewards?saved=${saved.id}`;
    } catch (err) {
      if (err instanceof ApiError) {
        const found = (err.errors || []).map((e) => [e.field, e.message]);
        if (err.field) found.push([err.field, err.problem.detail]);
        const first = showErrors(found);
        if (first) first.focus();
      }
      replace(message, problemNotice(err));
    } finally {
      save.dataset.busy = 'false';
    }
  });
  return null;
}

async function stats(main, ctx, rewardId) {
  const [reward, s] = await Promise.all([ctx.api.get(`${base(ctx)}/${rewardId}`), ctx.api.get(`${base(ctx)}/${rewardId}/stats`)]);
  const figure = (key, value) => h('div', { class: 'card', id: `figure-${key}` },
    h('div', { class: 'label' }, t(`rewards.figure_${key}`)), h('div', { class: 'value' }, value));
  replace(main,
    h('h1', {}, t('rewards.stats_title', { name: reward.name })),
    h('p', {}, h('a', { href: '#/rewards' }, t('rewards.back'))),
    h('section', { class: 'cards', 'aria-label': t('rewards.stats') },
      figure('claimed', number(s.claimed)), figure('active', number(s.active)),
      figure('used', number(s.used)), figure('expired', number(s.expired)),
      figure('cancelled', number(s.cancelled)), figure('points_spent', number(s.points_spent)),
      figure('points_returned', number(s.points_returned)),
      figure('stock_left', s.stock === null ? t('rewards.unlimited') : `${number(s.stock_left)} / ${number(s.stock)}`)));
  return null;
}

async function revisions(main, ctx, rewardId) {
  const [reward, page] = await Promise.all([ctx.api.get(`${base(ctx)}/${rewardId}`), ctx.api.get(`${base(ctx)}/${rewardId}/revisions`, { limit: 100 })]);
  const show = (v) => (v === undefined || v === null ? '—' : JSON.stringify(v));
  const changed = (before, after) => Object.keys({ ...before.spec, ...after.spec })
    .filter((k) => JSON.stringify(before.spec[k]) !== JSON.stringify(after.spec[k]))
    .map((k) => [`spec.${k}`, before.spec[k], after.spec[k]])
    .concat(before.status !== after.status ? [['status', before.status, after.status]] : []);
  replace(main,
    h('h1', {}, t('revisions.title', { name: reward.name })),
    h('p', {}, h('a', { href: '#/rewards' }, t('rewards.back'))),
    h('ol', { class: 'revisions', reversed: true }, ...page.items.map((r) => h('li', { class: 'panel' },
      h('h2', {}, t('revisions.item', { n: r.revision, action: t(`revisions.action.${r.action}`), at: dateTime(r.changed_at) })),
      h('p', { class: 'hint' }, t('revisions.by', { id: r.changed_by })),
      r.before
        ? h('ul', { class: 'diff' }, ...changed(r.before, r.after).map(([path, b, a]) =>
          h('li', {}, h('code', {}, path), ': ', h('del', {}, show(b)), ' → ', h('ins', {}, show(a)))))
        : h('pre', { class: 'json' }, JSON.stringify(r.after.spec, null, 2))))));
  return null;
}
