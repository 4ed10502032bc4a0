// English and French from one message catalogue (../messages.json: {"en": {...}, "fr": {...}}).
// A message is a string with {placeholders}, or {"one": ..., "other": ...} chosen by `count`.

export const LANGUAGES = ['en', 'fr'];
const PREF = 'loyalty.lang'; // a display preference, never a credential

let catalogue = { en: {} };
let current = 'en';

export async function initI18n() {
  const res = await fetch(new URL('../messages.json', import.meta.url), { credentials: 'omit' });
  catalogue = await res.json();
  current = pickLanguage();
  document.documentElement.lang = current;
}

function pickLanguage() {
  let saved = null;
  try { saved = localStorage.getItem(PREF); } catch { /* storage disabled */ }
  if (LANGUAGES.includes(saved)) return saved;
  const serverChoice = document.documentElement.lang;
  if (LANGUAGES.includes(serverChoice)) return serverChoice;
  for (const tag of navigator.languages || [navigator.language || 'en']) {
    const base = String(tag).slice(0, 2).toLowerCase();
    if (LANGUAGES.includes(base)) return base;
  }
  return 'en';
}

export function language() {
  return current;
}

export function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) return;
  current = lang;
  document.documentElement.lang = lang;
  try { localStorage.setItem(PREF, lang); } catch { /* storage disabled */ }
}

/** The message `key` in the current language, with {name} placeholders filled from `params`. */
export function t(key, params = {}) {
  let msg = catalogue[current]?.[key] ?? catalogue.en?.[key];
  if (msg === undefined) return key;
  if (typeof msg === 'object') {
    const rule = new Intl.PluralRules(current).select(Number(params.count ?? 0));
    msg = msg[rule] ?? msg.other;
  }
  return msg.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Fill static markup: data-i18n="key" sets the text, data-i18n-attr="attr:key;attr:key". */
export function translateTree(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

/** A language switcher (a labelled select) that calls `onChange` after switching. */
export function languageSelect(h, onChange) {
  const select = h('select', { id: 'lang-select', class: 'lang-select' },
    ...LANGUAGES.map((l) => h('option', { value: l, selected: l === current }, t(`lang.${l}`))));
  select.addEventListener('change', () => { setLanguage(select.value); onChange(); });
  return h('div', { class: 'lang' },
    h('label', { for: 'lang-select', class: 'visually-hidden' }, t('lang.label')), select);
}
