// The browser till for store staff: identify the member (camera QR or typed card number), then
// record a purchase (offers, points, stored value with the PIN pad; amount due), a top-up, a
// payout or a refund by receipt, and see the store's recent transactions. Built for a phone or
// a tablet at the counter (390 px and up).

import { Api, ApiError } from '../common/api.js';
import { announce, field, focusFirst, h, replace } from '../common/dom.js';
import { money, number, setProgram } from '../common/format.js';
import { initI18n, languageSelect, t, translateTree } from '../common/i18n.js';
import { loginView, problemNotice } from '../common/login.js';
import { Session } from '../common/session.js';
import { CameraUnavailable, Scanner } from './scanner.js';
import { purchaseForm, voucherForm, topUpForm, payoutForm, refundForm, recentList } from './operations.js';

const STORE_CHOICE = 'loyalty.till.store';
const main = document.getElementById('main');
const session = new Session('till');
const api = new Api(session);
const till = { api, session, program: null, store: null, member: null, card: null, scanner: null, tab: 'purchase' };

function renderAccount() {
  const account = document.getElementById('account');
  const lang = languageSelect(h, () => { translateTree(); if (till.store) renderTill(); });
  if (!session.account) { replace(account, lang); return; }
  replace(account,
    h('span', { class: 'who' }, till.store ? `${till.store.code} · ${session.account.email}` : session.account.email),
    lang,
    h('button', { type: 'button', class: 'link', onclick: () => session.logout().catch(() => {}) }, t('nav.logout')));
}

async function chooseStore() {
  const stores = (await api.get('/v1/pos/stores')).items;
  const saved = sessionStorage.getItem(STORE_CHOICE);
  const found = stores.find((s) => s.id === saved);
  if (found) return found;
  if (stores.length === 1) return stores[0];
  return new Promise((resolve) => {
    replace(main, h('section', { class: 'panel' }, h('h1', {}, t('till.choose_store')),
      stores.length ? h('ul', { class: 'store-list' }, ...stores.map((s) => h('li', {},
        h('button', { type: 'button', onclick: () => { sessionStorage.setItem(STORE_CHOICE, s.id); resolve(s); } }, `${s.code} — ${s.name}`))))
        : h('p', {}, t('till.no_stores'))));
    focusFirst(main);
  });
}

function memberPanel() {
  const m = till.member;
  if (!m) return null;
  return h('section', { class: 'panel', id: 'member', 'aria-labelledby': 'member-name' },
    h('h2', { id: 'member-name' }, m.first_name),
    h('div', { class: 'member-card' },
      h('div', {}, h('div', { class: 'label' }, t('till.tier')), h('div', { class: 'value', id: 'member-tier' }, m.tier || '—')),
      h('div', {}, h('div', { class: 'label' }, t('till.points')), h('div', { class: 'value', id: 'member-points' }, number(m.points_balance))),
      h('div', {}, h('div', { class: 'label' }, t('till.stored_value')), h('div', { class: 'value', id: 'member-stored-value' }, money(m.stored_value_balance)))),
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'next-customer', onclick: () => { clearMember(); renderTill(); } }, t('till.next_customer'))));
}

function clearMember() {
  till.member = null;
  till.card = null;
}

async function identify(card, status) {
  replace(status, h('p', { class: 'loading' }, t('till.looking_up')));
  try {
    const body = { store_id: till.store.id, ...card };
    till.member = await api.post('/v1/pos/scan', body, { idempotencyKey: crypto.randomUUID() });
    till.card = card;
    announce(t('till.found', { name: till.member.first_name }));
    renderTill();
  } catch (err) {
    if (err instanceof ApiError && err.type === '/problems/invalid-card-token') replace(status, h('div', { class: 'notice error', role: 'alert' }, t('till.qr_refused')));
    else replace(status, problemNotice(err));
  }
}

function scanPanel() {
  const status = h('div', { id: 'scan-status' });
  const video = h('video', { id: 'scanner-video', 'aria-label': t('till.camera_view') });
  const videoBox = h('div', { class: 'scanner', hidden: true }, video,
    h('button', { type: 'button', onclick: () => { stopScanner(); videoBox.hidden = true; } }, t('till.stop_camera')));
  const scan = h('button', { type: 'button', class: 'primary', id: 'scan-button' }, t('till.scan'));
  scan.addEventListener('click', async () => {
    stopScanner();
    videoBox.hidden = false;
    replace(status, h('p', {}, t('till.point_camera')));
    till.scanner = new Scanner(video, (payload) => {
      videoBox.hidden = true;
      identify({ qr_payload: payload }, status);
    });
    try {
      await till.scanner.start();
      video.dataset.engine = till.scanner.engine();
    } catch (err) {
      videoBox.hidden = true;
      stopScanner();
      if (!(err instanceof CameraUnavailable)) throw err;
      replace(status, h('div', { class: 'notice warn', role: 'alert' }, t(`till.camera_${err.message}`)));
      cardInput.focus();
    }
  });
  const cardInput = h('input', { type: 'text', id: 'card-number', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false' });
  const find = h('button', { type: 'submit' }, t('till.find'));
  const form = h('form', { class: 'row', novalidate: true }, field(t('till.card_number'), cardInput).wrap, h('div', { class: 'field' }, find));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const number_ = cardInput.value.replace(/\s+/g, '');
    if (!number_) { replace(status, h('div', { class: 'notice error', role: 'alert' }, t('till.need_card'))); return; }
    stopScanner();
    identify({ card_number: number_ }, status);
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'scan-title' },
    h('h2', { id: 'scan-title' }, t('till.customer')),
    h('div', { class: 'actions' }, scan), videoBox, form, status);
}

function stopScanner() {
  if (till.scanner) till.scanner.stop();
  till.scanner = null;
}

const TABS = ['purchase', 'voucher', 'topup', 'payout', 'refund', 'recent'];

function renderTill() {
  stopScanner();
  renderAccount();
  const needsMember = ['purchase', 'topup', 'payout'];
  const panel = h('div', { id: 'tab-panel', role: 'tabpanel', 'aria-labelledby': `tab-${till.tab}`, tabindex: '0' });
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': t('till.operations') }, ...TABS.map((name) => {
    const b = h('button', { type: 'button', role: 'tab', id: `tab-${name}`, 'aria-selected': String(till.tab === name), 'aria-controls': 'tab-panel', tabindex: till.tab === name ? '0' : '-1' }, t(`till.tab_${name}`));
    b.addEventListener('click', () => { till.tab = name; renderTill(); document.getElementById(`tab-${name}`).focus(); });
    b.addEventListener('keydown', (e) => {
      const i = TABS.indexOf(name);
      const next = e.key === 'ArrowRight' ? TABS[(i + 1) % TABS.length] : e.key === 'ArrowLeft' ? TABS[(i + TABS.length - 1) % TABS.length] : null;
      if (next) { till.tab = next; renderTill(); document.getElementById(`tab-${next}`).focus(); }
    });
    return b;
  }));
  const refreshMember = (m) => {
    if (!till.member) return;
    Object.assign(till.member, m);
    const points = document.getElementById('member-points');
    const stored = document.getElementById('member-stored-value');
    if (points) points.textContent = number(till.member.points_balance);
    if (stored) stored.textContent = money(till.member.stored_value_balance);
  };
  const ops = { till, rerender: renderTill, refreshMember };
  if (needsMember.includes(till.tab) && !till.member) {
    panel.append(h('p', {}, t('till.scan_first')));
  } else {
    const build = { purchase: purchaseForm, voucher: voucherForm, topup: topUpForm, payout: payoutForm, refund: refundForm, recent: recentList }[till.tab];
    panel.append(build(ops));
  }
  replace(main,
    h('h1', { class: 'visually-hidden' }, t('till.title_store', { store: till.store.name })),
    h('div', { class: 'till-grid' },
      till.member ? memberPanel() : scanPanel(),
      h('section', { class: 'panel', 'aria-label': t('till.operations') }, tabs, panel)));
  document.title = `${t('till.brand')} — ${till.store.code}`;
}

async function start() {
  renderAccount();
  till.program = await api.get(`/v1/programs/${session.account.program_id}`);
  setProgram(till.program);
  till.store = await chooseStore();
  clearMember();
  renderTill();
  focusFirst(main);
}

async function showLogin() {
  stopScanner();
  clearMember();
  till.store = null;
  renderAccount();
  await loginView(main, session, { title: t('till.login_title'), intro: t('till.login_intro') });
  await start();
}

session.onEnded = () => { announce(t('login.ended')); showLogin(); };

(async () => {
  await initI18n();
  translateTree();
  renderAccount();
  if (await session.restore()) await start();
  else await showLogin();
})();

