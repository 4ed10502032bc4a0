// The campaign managers' console: stores and zones on a map, campaigns, results, the rewards
// catalogue, weather and, for admins, the access log and the member support lookup. Hash
// routes, one view at a time.

import { Api, ApiError } from '../common/api.js';
import { announce, focusFirst, h, replace } from '../common/dom.js';
import { setProgram } from '../common/format.js';
import { initI18n, languageSelect, t, translateTree } from '../common/i18n.js';
import { loginView, problemNotice } from '../common/login.js';
import { Session } from '../common/session.js';

const ROUTES = [
  { path: 'stores', label: 'nav.stores', load: () => import('./stores.js') },
  { path: 'campaigns', label: 'nav.campaigns', load: () => import('./campaigns.js') },
  { path: 'results', label: 'nav.results', load: () => import('./results.js') },
  { path: 'rewards', label: 'nav.rewards', load: () => import('./rewards.js') },
  { path: 'weather', label: 'nav.weather', load: () => import('./weather.js') },
  { path: 'access-log', label: 'nav.access_log', load: () => import('./admin.js'), admin: true },
  { path: 'members', label: 'nav.members', load: () => import('./admin.js'), admin: true },
];
const PROGRAM_CHOICE = 'loyalty.console.program'; // an admin's chosen program (not a secret)

const main = document.getElementById('main');
const session = new Session('console');
const api = new Api(session);
const ctx = { api, session, program: null, account: null, cleanup: null };

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  return { parts, query: new URLSearchParams(query) };
}

function renderNav() {
  const { parts } = parseHash();
  const nav = document.getElementById('nav');
  const links = ROUTES.filter((r) => !r.admin || ctx.account?.role === 'admin').map((r) =>
    h('a', { href: `#/${r.path}`, 'aria-current': parts[0] === r.path ? 'page' : false }, t(r.label)));
  replace(nav, ...(ctx.account ? links : []));
  nav.setAttribute('aria-label', t('nav.main'));
  const account = document.getElementById('account');
  const lang = languageSelect(h, () => { translateTree(); renderNav(); route(); });
  if (!ctx.account) {
    replace(account, lang);
    return;
  }
  const logout = h('button', { type: 'button', class: 'link' }, t('nav.logout'));
  logout.addEventListener('click', async () => {
    await session.logout().catch(() => {});
  });
  const programName = ctx.program ? ctx.program.name : '';
  const switcher = ctx.account.role === 'admin'
    ? h('button', { type: 'button', class: 'link', onclick: () => { sessionStorage.removeItem(PROGRAM_CHOICE); start(); } }, t('nav.switch_program'))
    : null;
  replace(account,
    h('span', { class: 'who' }, `${ctx.account.email} · ${t(`role.${ctx.account.role}`)}${programName ? ` · ${programName}` : ''}`),
    switcher, lang, logout);
}

async function route() {
  if (!ctx.account || !ctx.program) return;
  const { parts, query } = parseHash();
  const found = ROUTES.find((r) => r.path === parts[0] && (!r.admin || ctx.account.role === 'admin'));
  if (!found) {
    window.location.hash = '#/stores';
    return;
  }
  renderNav();
  if (ctx.cleanup) {
    ctx.cleanup();
    ctx.cleanup = null;
  }
  replace(main, h('p', { class: 'loading' }, t('common.loading')));
  try {
    const page = await found.load();
    const cleanup = await page.render(main, ctx, { parts, query });
    if (typeof cleanup === 'function') ctx.cleanup = cleanup;
    document.title = `${t(found.label)} — ${t('console.brand')}`;
    focusFirst(main);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // the session ended: login shows
    replace(main, h('h1', {}, t(found.label)), problemNotice(err));
  }
}

async function chooseProgram() {
  // Admins act in any program: pick one (remembered for this tab).
  const saved = sessionStorage.getItem(PROGRAM_CHOICE);
  if (saved) return saved;
  const programs = await api.all('/v1/programs');
  if (programs.length === 1) return programs[0].id;
  return new Promise((resolve) => {
    const list = h('ul', { class: 'program-list' }, ...programs.map((p) => h('li', {},
      h('button', { type: 'button', onclick: () => { sessionStorage.setItem(PROGRAM_CHOICE, p.id); resolve(p.id); } },
        `${p.name} (${p.currency}, ${p.timezone})`))));
    replace(main, h('section', { class: 'panel' }, h('h1', {}, t('console.choose_program')),
      programs.length ? list : h('p', {}, t('console.no_programs'))));
    focusFirst(main);
  });
}

async function start() {
  ctx.account = session.account;
  ctx.program = null;
  const programId = ctx.account.program_id || await chooseProgram();
  ctx.program = await api.get(`/v1/programs/${programId}`);
  setProgram(ctx.program);
  renderNav();
  if (!window.location.hash || window.location.hash === '#') window.location.hash = '#/stores';
  else await route();
}

async function showLogin(refused) {
  ctx.account = null;
  ctx.program = null;
  if (ctx.cleanup) { ctx.cleanup(); ctx.cleanup = null; }
  renderNav();
  document.title = t('console.brand');
  await loginView(main, session, { title: t('console.login_title'), intro: t('console.login_intro'), refused });
  await start();
}

session.onEnded = () => {
  announce(t('login.ended'));
  showLogin();
};

window.addEventListener('hashchange', () => { route(); });

(async () => {
  await initI18n();
  translateTree();
  renderNav();
  if (await session.restore()) await start();
  else await showLogin();
})();
