// Campaigns: the list (activate, pause), the editor and each campaign's revisions.

import { announce, h, replace, tableBox } from '../common/dom.js';
import { dateTime, number } from '../common/format.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';
import { campaignForm } from './campaign_form.js';

export async function render(main, ctx, { parts, query }) {
  const base = `/v1/programs/${ctx.program.id}/campaigns`;
  if (parts[1] === 'new') return campaignForm(main, ctx, null);
  if (parts[1] && parts[2] === 'revisions') return revisions(main, ctx, parts[1]);
  if (parts[1]) return campaignForm(main, ctx, await ctx.api.get(`${base}/${parts[1]}`));

  const status = h('div', { id: 'campaigns-status' });
  const box = tableBox(t('campaigns.title'));
  replace(main,
    h('h1', {}, t('campaigns.title')),
    status,
    h('div', { class: 'actions' }, h('a', { class: 'button primary', href: '#/campaigns/new', id: 'new-campaign' }, t('campaigns.new'))),
    h('section', { class: 'panel', 'aria-labelledby': 'campaigns-list' }, h('h2', { id: 'campaigns-list' }, t('campaigns.list')), box));
  if (query.get('saved')) replace(status, h('div', { class: 'notice ok', role: 'status' }, t('campaigns.saved_notice')));

  async function transition(c, action, button) {
    if (button.dataset.busy === 'true') return;
    button.dataset.busy = 'true';
    try {
      const updated = await ctx.api.post(`${base}/${c.id}/${action}`, {});
      replace(status, h('div', { class: 'notice ok', role: 'status' }, t(`campaigns.${action}d`, { name: updated.name })));
      announce(t(`campaigns.${action}d`, { name: updated.name }));
      await load();
    } catch (err) {
      replace(status, problemNotice(err));
    } finally {
      button.dataset.busy = 'false';
    }
  }

  async function load() {
    const campaigns = await ctx.api.all(base);
    if (!campaigns.length) {
      replace(box, h('p', {}, t('campaigns.none')));
      return;
    }
    replace(box, h('table', { id: 'campaigns-table' },
      h('thead', {}, h('tr', {}, ...['name', 'status', 'stores', 'schedule', 'issued', 'actions']
        .map((k) => h('th', { scope: 'col', class: k === 'issued' ? 'num' : '' }, t(`campaigns.col_${k}`))))),
      h('tbody', {}, ...campaigns.map((c) => {
        const toggle = c.status === 'active'
          ? h('button', { type: 'button', dataset: { action: 'pause' } }, t('campaigns.pause'))
          : h('button', { type: 'button', class: 'primary', dataset: { action: 'activate' } }, t('campaigns.activate'));
        toggle.addEventListener('click', () => transition(c, toggle.dataset.action, toggle));
        const budget = c.caps.max_issued ? ` / ${number(c.caps.max_issued)}` : '';
        return h('tr', { dataset: { campaignId: c.id } },
          h('td', {}, h('a', { href: `#/campaigns/${c.id}` }, c.name)),
          h('td', {}, h('span', { class: `badge ${c.status}` }, t(`status.${c.status}`))),
          h('td', {}, c.store_ids.length ? t('campaigns.n_stores', { count: c.store_ids.length }) : t('campaign.all_stores')),
          h('td', {}, `${dateTime(c.schedule.starts_at)} – ${dateTime(c.schedule.ends_at)}`),
          h('td', { class: 'num' }, `${number(c.issued)}${budget}`),
          h('td', {}, h('div', { class: 'actions' }, toggle,
            h('a', { class: 'button', href: `#/results/${c.id}` }, t('campaigns.results')),
            h('a', { class: 'button', href: `#/campaigns/${c.id}/revisions` }, t('campaigns.revisions')))));
      }))));
  }
  await load();
  return null;
}

function changes(before, after, path = '') {
  // Paths whose value differs between two campaign documents, with both values.
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((k) => changes(before[k], after[k], path ? `${path}.${k}` : k));
  }
  return [[path, before, after]];
}

async function revisions(main, ctx, campaignId) {
  const base = `/v1/programs/${ctx.program.id}/campaigns/${campaignId}`;
  const [campaign, page] = await Promise.all([ctx.api.get(base), ctx.api.get(`${base}/revisions`, { limit: 100 })]);
  const show = (v) => (v === undefined || v === null ? '—' : JSON.stringify(v));
  replace(main,
    h('h1', {}, t('revisions.title', { name: campaign.name })),
    h('p', {}, h('a', { href: '#/campaigns' }, t('revisions.back'))),
    h('ol', { class: 'revisions', reversed: true }, ...page.items.map((r) => h('li', { class: 'panel' },
      h('h2', {}, t('revisions.item', { n: r.revision, action: t(`revisions.action.${r.action}`), at: dateTime(r.changed_at) })),
      h('p', { class: 'hint' }, t('revisions.by', { id: r.changed_by })),
      r.before
        ? h('ul', { class: 'diff' }, ...changes(r.before, r.after).map(([path, b, a]) =>
          h('li', {}, h('code', {}, path), ': ', h('del', {}, show(b)), ' → ', h('ins', {}, show(a)))))
        : h('pre', { class: 'json' }, JSON.stringify(r.after, null, 2))))));
  return null;
}
