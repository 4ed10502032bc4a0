// Money and figures in the program's currency and locale (a French program writes 12,50 €
// whatever the page's language), times in the program's timezone written the page's way.
// Money travels as integers in minor units (1250 = 12.50 EUR); never as floats.

let program = { currency: 'EUR', timezone: 'UTC', locale: 'en' };

export function setProgram(p) {
  program = { currency: p.currency, timezone: p.timezone, locale: p.locale || 'en' };
}

/** The page's language as a locale for dates ('fr' -> fr-FR, else en-GB). */
const pageLocale = () => (document.documentElement.lang === 'fr' ? 'fr-FR' : 'en-GB');

export function currentProgram() {
  return program;
}

export function fractionDigits(currency = program.currency) {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
    .maximumFractionDigits;
}

export function money(minor, currency = program.currency) {
  const digits = fractionDigits(currency);
  return new Intl.NumberFormat(program.locale, { style: 'currency', currency })
    .format(Number(minor) / 10 ** digits);
}

export function number(n, options = {}) {
  return new Intl.NumberFormat(program.locale, options).format(n);
}

export function percent(ratio) {
  return new Intl.NumberFormat(program.locale, { style: 'percent', maximumFractionDigits: 1 })
    .format(ratio);
}

/** "12,50" or "12.50" or "12" -> 1250 minor units; null when it is not an amount. */
export function parseMoney(text, currency = program.currency) {
  const digits = fractionDigits(currency);
  const s = String(text).trim().replace(/[\s\u00a0\u202f]/g, '');
  const pattern = digits > 0 ? new RegExp(`^(\\d{1,12})(?:[.,](\\d{1,${digits}}))?$`) : /^(\d{1,12})$/;
  const m = s.match(pattern);
  if (!m) return null;
  const frac = (m[2] || '').padEnd(digits, '0');
  return Number(m[1]) * 10 ** digits + Number(frac || 0);
}

/** Minor units -> the text an input shows ("12.50" in en, "12,50" in fr). */
export function moneyInput(minor, currency = program.currency) {
  const digits = fractionDigits(currency);
  const text = (Number(minor) / 10 ** digits).toFixed(digits);
  const comma = new Intl.NumberFormat(program.locale).format(1.5).includes(',');
  return comma ? text.replace('.', ',') : text;
}

export function dateTime(iso, options = { dateStyle: 'medium', timeStyle: 'short' }) {
  if (!iso) return '';
  return new Intl.DateTimeFormat(pageLocale(), { timeZone: program.timezone, ...options })
    .format(new Date(iso));
}

export function date(iso) {
  return dateTime(iso, { dateStyle: 'medium' });
}

function partsIn(ms, tz) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return { y: get('year'), mo: get('month'), d: get('day'), h: get('hour'), mi: get('minute'), s: get('second') };
}

function offsetMs(ms, tz) {
  const p = partsIn(ms, tz);
  return Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s) - Math.floor(ms / 1000) * 1000;
}

/** 'YYYY-MM-DDTHH:MM' read as a wall-clock time in `tz` -> a Date (the instant). */
export function zonedToDate(local, tz = program.timezone) {
  const m = String(local).match(/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/);
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  let guess = wall - offsetMs(wall, tz);
  guess = wall - offsetMs(guess, tz); // second pass settles DST edges
  return new Date(guess);
}

/** An instant -> 'YYYY-MM-DDTHH:MM' on the wall clock of `tz` (for datetime-local inputs). */
export function dateToZoned(iso, tz = program.timezone) {
  const p = partsIn(new Date(iso).getTime(), tz);
  const pad = (n) => String(n).padStart(2, '0');
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}`;
}
