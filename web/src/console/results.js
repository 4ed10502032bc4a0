// Results: what a campaign (or the whole program) achieved over a date range — issued, opened,
// redeemed, conversion, visits per store, a daily chart — and the same figures as CSV.

import uPlot from '/static/vendor/uplot/uPlot.esm.js';
import { announce, downloadBlob, field, h, replace, tableBox } from '../common/dom.js';
import { date, number, percent } from '../common/format.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';

const SERIES = [
  { key: 'issued', color: '#1f4e79' },
  { key: 'opened', color: '#b06d00' },
  { key: 'redeemed', color: '#0b6e4f' },
];

const COUNTS = ['issued', 'opened', 'redeemed'];
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];
const ratio = (part, whole) => (whole ? part / whole : 0);

/** A table of figures: a first column of names, then one column per key (numbers aligned). */
function figureTable(id, label, first, keys, rows) {
  const cell = (v) => h('td', { class: typeof v === 'number' || /%$/.test(v) ? 'num' : '' }, typeof v === 'number' ? number(v) : v);
  return tableBox(label, h('table', { id },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, first),
      ...keys.map((k) => h('th', { scope: 'col', class: k === 'status' ? '' : 'num' }, t(`results.${k}`))))),
    h('tbody', {}, ...rows.map(([name, ...values]) => h('tr', {}, h('th', { scope: 'row' }, name), ...values.map(cell))))));
}

function card(label, value, id) {
  return h('div', { class: 'card', id }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
}

const chartWidth = (el) => Math.max(240, Math.min(el.clientWidth || 800, 1100));

function chart(el, daily) {
  const xs = daily.map((d) => Date.parse(`${d.date}T12:00:00Z`) / 1000);
  const opts = {
    width: chartWidth(el), height: 260,
    // The period's days (one day alone: a day either side, or uPlot would stretch it to
    // a thousand days).
    scales: { x: { time: true, range: () => (xs.length > 1 ? [xs[0], xs[xs.length - 1]] : [xs[0] - 86_400, xs[0] + 86_400]) } },
    series: [{ label: t('results.date') }, ...SERIES.map((s) => ({ label: t(`results.${s.key}`), stroke: s.color, width: 2, points: { show: daily.length < 60 } }))],
    axes: [{}, { label: t('results.offers'), incrs: COUNT_STEPS }], // whole offers only
  };
  return new uPlot(opts, [xs, ...SERIES.map((s) => daily.map((d) => d[s.key] ?? 0))], el);
}

export async function render(main, ctx, { parts, query }) {
  const programBase = `/v1/programs/${ctx.program.id}`;
  const campaigns = await ctx.api.all(`${programBase}/campaigns`);
  const campaignId = parts[1] || '';
  const picker = h('select', { id: 'results-campaign' },
    h('option', { value: '', selected: !campaignId }, t('results.whole_program')),
    ...campaigns.map((c) => h('option', { value: c.id, selected: c.id === campaignId }, c.name)));
  // An empty range asks the API for its default period (a campaign: its schedule up to
  // today; the program: the last 30 days); the inputs then show the period it used.
  const from = h('input', { type: 'date', id: 'results-from', value: query.get('from') || '' });
  const to = h('input', { type: 'date', id: 'results-to', value: query.get('to') || '' });
  // Only the latest request may show its figures (another choice made meanwhile wins).
  let latest = 0;
  picker.addEventListener('change', () => { latest += 1; from.value = ''; to.value = ''; });
  const show = h('button', { type: 'submit', class: 'primary' }, t('results.show'));
  const csv = h('button', { type: 'button', id: 'results-csv' }, t('results.csv'));
  const out = h('div', { id: 'results-body' });
  let plot = null;
  // The chart follows its box's width (a phone turned, a window resized).
  const resized = new ResizeObserver(() => {
    const el = document.getElementById('results-chart');
    if (plot && el && chartWidth(el) !== plot.width) plot.setSize({ width: chartWidth(el), height: 260 });
  });

  const form = h('form', { class: 'panel', id: 'results-form' },
    h('div', { class: 'row' },
      field(t('results.campaign'), picker).wrap,
      field(t('results.from'), from).wrap,
      field(t('results.to'), to).wrap,
      h('div', { class: 'field' }, show)),
    h('p', { class: 'hint' }, t('results.tz_hint', { tz: ctx.program.timezone })));
  replace(main, h('h1', {}, t('results.title')), form, out);

  const statsPath = () => (picker.value ? `${programBase}/campaigns/${picker.value}/stats` : `${programBase}/stats`);
  const range = () => ({ from: from.value, to: to.value });

  async function load() {
    latest += 1;
    const mine = latest;
    resized.disconnect();
    if (plot) { plot.destroy(); plot = null; }
    replace(out, h('p', { class: 'loading' }, t('common.loading')));
    let stats;
    try {
      stats = await ctx.api.get(statsPath(), range());
    } catch (err) {
      if (mine === latest) replace(out, problemNotice(err));
      return;
    }
    if (mine !== latest) return;
    from.value = stats.from;
    to.value = stats.to;
    const daily = stats.daily || [];
    const chartEl = h('div', { class: 'chart', id: 'results-chart', role: 'img', 'aria-label': t('results.chart_label') });
    const byStore = stats.by_store || [];
    replace(out,
      h('div', { class: 'cards', id: 'results-cards' },
        card(t('results.issued'), number(stats.issued), 'figure-issued'),
        card(t('results.opened'), number(stats.opened ?? 0), 'figure-opened'),
        card(t('results.redeemed'), number(stats.redeemed), 'figure-redeemed'),
        card(t('results.conversion'), percent(stats.conversion_rate || 0), 'figure-conversion')),
      h('section', { class: 'panel', 'aria-labelledby': 'daily-title' },
        h('h2', { id: 'daily-title' }, t('results.daily')),
        chartEl,
        h('details', {}, h('summary', {}, t('results.daily_table')),
          tableBox(t('results.daily_table'), h('table', { id: 'daily-table' },
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('results.date')), ...SERIES.map((s) => h('th', { scope: 'col', class: 'num' }, t(`results.${s.key}`))))),
            h('tbody', {}, ...daily.map((d) => h('tr', {}, h('td', {}, date(`${d.date}T12:00:00Z`)),
              ...SERIES.map((s) => h('td', { class: 'num' }, number(d[s.key] ?? 0)))))))))),
      h('section', { class: 'panel', 'aria-labelledby': 'stores-title' },
        h('h2', { id: 'stores-title' }, t('results.by_store')),
        byStore.length ? figureTable('by-store-table', t('results.by_store'), t('results.store'), ['visits', ...COUNTS, 'conversion'],
          byStore.map((s) => [s.store_code ? `${s.store_code} — ${s.store_name}` : s.store_id,
            s.visits, s.issued, s.opened, s.redeemed, percent(ratio(s.redeemed, s.issued))]))
          : h('p', {}, t('results.no_stores'))),
      stats.by_campaign ? h('section', { class: 'panel', 'aria-labelledby': 'by-campaign-title' },
        h('h2', { id: 'by-campaign-title' }, t('results.by_campaign')),
        stats.by_campaign.length ? figureTable('by-campaign-table', t('results.by_campaign'), t('results.campaign'), ['status', ...COUNTS, 'expired', 'conversion'],
          stats.by_campaign.map((c) => [h('a', { href: `#/results/${c.campaign_id}` }, c.name),
            t(`status.${c.status}`), c.issued, c.opened, c.redeemed, c.expired, percent(c.conversion_rate)]))
          : h('p', {}, t('results.no_campaigns'))) : null,
      h('div', { class: 'actions' }, csv));
    if (daily.length) { plot = chart(chartEl, daily); resized.observe(chartEl); }
    else chartEl.append(h('p', {}, t('results.no_days')));
    announce(t('results.loaded'));
  }

  csv.addEventListener('click', async () => {
    try {
      const res = await ctx.api.request('GET', statsPath(), { query: range(), accept: 'text/csv', raw: true });
      const name = picker.value ? campaigns.find((c) => c.id === picker.value)?.name || 'campaign' : ctx.program.name;
      downloadBlob(await res.blob(), `${name.replace(/[^\w-]+/g, '_')}-${from.value}-${to.value}.csv`);
    } catch (err) {
      out.prepend(problemNotice(err));
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const url = new URL(window.location.href);
    url.hash = `#/results${picker.value ? `/${picker.value}` : ''}?from=${from.value}&to=${to.value}`;
    window.history.replaceState(null, '', url);
    load();
  });
  await load();
  return () => { resized.disconnect(); if (plot) plot.destroy(); };
}
