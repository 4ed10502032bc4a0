// Admins: the access-log search (who read whose data, when, why) and the member support lookup
// (by e-mail or card number; the read is logged in the member's access log like any other).

import { field, h, replace, tableBox } from '../common/dom.js';
import { dateTime, money, number, zonedToDate, dateToZoned } from '../common/format.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';

export async function render(main, ctx, { parts, query }) {
  if (parts[0] === 'members') return members(main, ctx);
  return accessLog(main, ctx, query);
}

async function accessLog(main, ctx, query) {
  const actor = h('input', { type: 'text', id: 'log-actor', value: query.get('actor_id') || '', spellcheck: 'false' });
  const member = h('input', { type: 'text', id: 'log-member', value: query.get('member_id') || '', spellcheck: 'false' });
  const from = h('input', { type: 'datetime-local', id: 'log-from', value: dateToZoned(new Date(Date.now() - 72 * 3600e3).toISOString()) });
  const to = h('input', { type: 'datetime-local', id: 'log-to', value: dateToZoned(new Date().toISOString()) });
  const out = h('div', { id: 'log-results' });
  const more = h('button', { type: 'button', hidden: true }, t('common.more'));
  let cursor = null;
  let body = null;
  const form = h('form', { class: 'panel', novalidate: true },
    h('div', { class: 'row' },
      field(t('log.actor'), actor, { hint: t('log.id_hint') }).wrap,
      field(t('log.member'), member, { hint: t('log.id_hint') }).wrap,
      field(t('log.from'), from).wrap,
      field(t('log.to'), to).wrap),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('log.search'))));
  replace(main, h('h1', {}, t('log.title')), h('p', {}, t('log.intro')), form, out, more);

  async function search(append) {
    const q = {
      actor_id: actor.value.trim(), member_id: member.value.trim(),
      from: zonedToDate(from.value)?.toISOString(), to: zonedToDate(to.value)?.toISOString(), limit: 100,
    };
    if (append) q.cursor = cursor;
    try {
      const page = await ctx.api.get('/v1/admin/access-log', q);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!append) {
        body = h('tbody', {});
        replace(out, page.items.length ? tableBox(t('nav.access_log'), h('table', { id: 'log-table' },
          h('thead', {}, h('tr', {}, ...['at', 'actor', 'role', 'action', 'purpose', 'member', 'store'].map((k) => h('th', { scope: 'col' }, t(`log.col_${k}`))))),
          body)) : h('p', {}, t('log.none')));
      }
      for (const e of page.items) {
        body.append(h('tr', {}, h('td', {}, dateTime(e.at, { dateStyle: 'short', timeStyle: 'medium' })), h('td', {}, h('code', {}, e.actor_id)),
          h('td', {}, t(`role.${e.actor_role}`)), h('td', {}, e.action), h('td', {}, e.purpose),
          h('td', {}, e.member_id ? h('code', {}, e.member_id) : t('log.erased')), h('td', {}, e.store_id || '')));
      }
    } catch (err) {
      replace(out, problemNotice(err));
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); search(false); });
  more.addEventListener('click', () => search(true));
  await search(false);
  return null;
}

async function members(main, ctx) {
  const by = h('select', { id: 'lookup-by' }, h('option', { value: 'email' }, t('lookup.by_email')), h('option', { value: 'card_number' }, t('lookup.by_card')));
  const value = h('input', { type: 'text', id: 'lookup-value', autocomplete: 'off', spellcheck: 'false' });
  const out = h('div', { id: 'lookup-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'panel', novalidate: true },
    h('p', { class: 'hint' }, t('lookup.logged')),
    h('div', { class: 'row' }, field(t('lookup.by'), by).wrap, field(t('lookup.value'), value).wrap),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('lookup.search'))));
  replace(main, h('h1', {}, t('lookup.title')), form, out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!value.value.trim()) return;
    try {
      const m = await ctx.api.get(`/v1/programs/${ctx.program.id}/members/lookup`, { [by.value]: value.value.trim() });
      const row = (label, v) => h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, v));
      replace(out, h('section', { class: 'panel', 'aria-labelledby': 'member-title' },
        h('h2', { id: 'member-title' }, m.first_name),
        h('table', { id: 'member-table' }, h('tbody', {},
          row(t('lookup.id'), h('code', {}, m.id)), row(t('lookup.email'), m.email), row(t('lookup.locale'), m.locale),
          row(t('lookup.joined'), dateTime(m.created_at)), row(t('lookup.tier'), m.tier || '—'),
          row(t('lookup.points'), number(m.points_balance)), row(t('lookup.stored_value'), money(m.stored_value_balance, m.currency)))),
        h('p', {}, h('a', { href: `#/access-log?member_id=${m.id}` }, t('lookup.who_read')))));
    } catch (err) {
      replace(out, problemNotice(err));
    }
  });
  return null;
}
