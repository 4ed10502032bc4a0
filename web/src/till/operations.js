// Till operations. Every write carries an Idempotency-Key made once per action (kept while the
// same body is retried, e.g. after a lost answer), and a busy button ignores a second tap: a
// double tap or a retried request never counts twice.

import { ActionKey, ApiError, NetworkError } from '../common/api.js';
import { announce, clearFieldErrors, field, h, replace, setFieldError, tableBox } from '../common/dom.js';
import { dateTime, money, number, parseMoney } from '../common/format.js';
import { t } from '../common/i18n.js';
import { problemNotice } from '../common/login.js';
import { pinPad } from './pinpad.js';

function receiptId() {
  const d = new Date();
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const rand = crypto.getRandomValues(new Uint16Array(1))[0].toString(36).toUpperCase();
  return `W${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}-${rand}`;
}

/** A field the cashier must fix (already marked on the form). */
class Invalid extends Error {}

function moneyField(label, name, hint) {
  const input = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', name });
  return field(label, input, { hint, name });
}

/** The failure of a write, said for a cashier; the PIN problems say what is left. */
function failure(err) {
  if (err instanceof NetworkError) {
    return h('div', { class: 'notice error', role: 'alert' }, t('till.no_answer'));
  }
  if (err instanceof ApiError) {
    const p = err.problem;
    if (err.type === '/problems/wrong-pin') {
      return h('div', { class: 'notice error', role: 'alert', id: 'pin-error' },
        p.attempts_left !== undefined ? t('till.wrong_pin_left', { count: p.attempts_left }) : t('till.wrong_pin'));
    }
    if (err.type === '/problems/pin-locked') {
      return h('div', { class: 'notice error', role: 'alert', id: 'pin-error' },
        p.locked_until ? t('till.pin_locked_until', { at: dateTime(p.locked_until, { timeStyle: 'short' }) }) : t('till.pin_locked'));
    }
    if (err.type === '/problems/invalid-card-token') {
      return h('div', { class: 'notice error', role: 'alert' }, t('till.qr_expired'));
    }
  }
  return problemNotice(err);
}

function submitRow(label, id) {
  const button = h('button', { type: 'submit', class: 'primary', id }, label);
  return { button, row: h('div', { class: 'actions' }, button) };
}

/** Run a write once per tap, mark fields the API names, keep the key for a retry. */
async function send(form, button, message, work) {
  if (button.dataset.busy === 'true') return;
  button.dataset.busy = 'true';
  button.setAttribute('aria-disabled', 'true');
  clearFieldErrors(form);
  replace(message);
  try {
    await work();
  } catch (err) {
    if (err instanceof Invalid) {
      replace(message, h('div', { class: 'notice error', role: 'alert' }, t('common.fix_fields')));
      return;
    }
    replace(message, failure(err));
    if (err instanceof ApiError) {
      for (const e of [...(err.errors || []), ...(err.field ? [{ field: err.field, message: err.problem.detail }] : [])]) {
        const el = form.querySelector(`[data-field="${CSS.escape(e.field)}"]`);
        if (el) setFieldError(el, e.message || e.reason);
      }
    }
    announce(message.textContent, { error: true });
  } finally {
    button.dataset.busy = 'false';
    button.removeAttribute('aria-disabled');
  }
}

function resultPanel(title, rows, next) {
  return h('section', { class: 'notice ok', role: 'status', id: 'till-result' },
    h('h3', {}, title),
    h('dl', { class: 'result' }, ...rows.flatMap(([k, v, id]) => [h('dt', {}, k), h('dd', { id }, v)])),
    next);
}

export function purchaseForm({ till, rerender, refreshMember }) {
  const key = new ActionKey();
  const m = till.member;
  const amount = moneyField(t('till.amount'), 'amount');
  const receipt = h('input', { type: 'text', name: 'receipt_id', value: receiptId(), autocomplete: 'off' });
  const receiptField = field(t('till.receipt'), receipt, { name: 'receipt_id', hint: t('till.receipt_hint') });
  const offers = m.offers.map((o) => ({ o, box: h('input', { type: 'checkbox', value: o.id, name: 'offer' }) }));
  const points = h('input', { type: 'number', min: 0, max: m.points_balance, step: 1, inputmode: 'numeric', name: 'points' });
  const pointsField = field(t('till.redeem_points'), points, { name: 'redeem.points', hint: t('till.redeem_points_hint', { count: m.points_balance }) });
  const sv = moneyField(t('till.pay_stored_value'), 'stored_value.amount', t('till.stored_value_hint', { balance: money(m.stored_value_balance) }));
  const pin = pinPad();
  pin.input.dataset.field = 'stored_value.pin';
  // A typed card number is static (a wallet pass's barcode, a screenshot): spending points or
  // offers with it needs the member's PIN too; the app's QR code does not.
  const byNumber = Boolean(till.card && till.card.card_number);
  const pinBox = h('div', { hidden: true },
    byNumber ? h('p', { class: 'hint' }, t('till.pin_for_card_number')) : null, pin.wrap);
  const spendsByNumber = () => byNumber
    && (offers.some(({ box }) => box.checked) || Number(points.value || 0) > 0);
  const voucherCodes = h('input', { type: 'text', name: 'vouchers', autocomplete: 'off', autocapitalize: 'characters' });
  const vouchersField = field(t('till.vouchers'), voucherCodes, { name: 'vouchers', hint: t('till.vouchers_hint') });
  const showPin = () => { pinBox.hidden = !(parseMoney(sv.input.value) > 0 || spendsByNumber()); };
  sv.input.addEventListener('input', showPin);
  points.addEventListener('input', showPin);
  offers.forEach(({ box }) => box.addEventListener('change', showPin));
  const message = h('div', { id: 'purchase-message' });
  const { button, row } = submitRow(t('till.record_purchase'), 'record-purchase');
  const form = h('form', { novalidate: true, id: 'purchase-form' },
    h('h2', {}, t('till.tab_purchase')),
    amount.wrap,
    offers.length ? h('fieldset', { dataset: { field: 'redeem.offer_ids' } }, h('legend', {}, t('till.offers')),
      h('ul', { class: 'offer-list' }, ...offers.map(({ o, box }) => h('li', {}, h('label', {}, box,
        h('span', {}, h('strong', {}, o.title), h('br'), rewardText(o), ' · ', t('till.valid_until', { at: dateTime(o.expires_at) }))))))) : h('p', { class: 'hint' }, t('till.no_offers')),
    vouchersField.wrap,
    m.points_balance > 0 ? pointsField.wrap : null,
    m.stored_value_balance > 0 ? sv.wrap : null,
    pinBox,
    receiptField.wrap,
    message, row);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send(form, button, message, async () => {
      const total = parseMoney(amount.input.value);
      if (total === null) { setFieldError(amount.input, t('till.need_amount')); throw new Invalid(); }
      const body = { store_id: till.store.id, ...till.card, receipt_id: receipt.value.trim(), amount: total, currency: till.program.currency };
      const chosen = offers.filter(({ box }) => box.checked).map(({ o }) => o.id);
      const redeemPoints = points.value ? Number(points.value) : 0;
      if (chosen.length || redeemPoints) body.redeem = { offer_ids: chosen, points: redeemPoints };
      const codes = voucherCodes.value.split(/[\s,;]+/).filter(Boolean);
      if (codes.length) body.vouchers = codes;
      const svAmount = parseMoney(sv.input.value || '0');
      if (svAmount) {
        pin.input.dataset.field = 'stored_value.pin';
        if (!/^\d{5}$/.test(pin.value())) { setFieldError(pin.input, t('till.need_pin')); throw new Invalid(); }
        body.stored_value = { amount: svAmount, pin: pin.value() };
      } else if (byNumber && body.redeem) {
        pin.input.dataset.field = 'redeem.pin';
        if (!/^\d{5}$/.test(pin.value())) { setFieldError(pin.input, t('till.need_pin')); throw new Invalid(); }
        body.redeem.pin = pin.value();
      }
      const r = await till.api.post('/v1/pos/purchases', body, { idempotencyKey: key.for(body) });
      key.done();
      pin.clear();
      refreshMember({ points_balance: r.points_balance, stored_value_balance: r.stored_value_balance });
      till.member.offers = till.member.offers.filter((o) => !(r.offers_redeemed || []).includes(o.id));
      const due = r.amount_due;
      announce(t('till.amount_due_is', { amount: money(due) }));
      replace(form.parentElement, resultPanel(t('till.purchase_done'), [
        [t('till.amount_due'), h('span', { class: 'amount-due' }, money(due)), 'amount-due'],
        [t('till.amount'), money(total), 'result-amount'],
        [t('till.discount'), money(r.discount), 'result-discount'],
        [t('till.stored_value_spent'), money(r.stored_value_spent), 'result-stored-value'],
        [t('till.points_redeemed'), number(r.points_redeemed), 'result-points-redeemed'],
        [t('till.points_earned'), number(r.points_earned + (r.points_bonus || 0)), 'result-points-earned'],
        [t('till.receipt'), body.receipt_id, 'result-receipt'],
        [t('till.new_balances'), `${number(r.points_balance)} ${t('till.points_unit')} · ${money(r.stored_value_balance)}`, 'result-balances'],
      ], h('div', { class: 'actions' }, h('button', { type: 'button', id: 'new-sale', onclick: rerender }, t('till.new_sale')))));
    });
  });
  return form;
}

/** A reward voucher used on its own (the card, when scanned, must be its member's). */
export function voucherForm({ till, rerender }) {
  const key = new ActionKey();
  const code = h('input', { type: 'text', name: 'code', autocomplete: 'off', autocapitalize: 'characters' });
  const codeField = field(t('till.voucher_code'), code, { name: 'code', hint: t('till.voucher_code_hint') });
  const message = h('div', { id: 'voucher-message' });
  const { button, row } = submitRow(t('till.do_voucher'), 'do-voucher');
  const form = h('form', { novalidate: true, id: 'voucher-form' },
    h('h2', {}, t('till.tab_voucher')), codeField.wrap, message, row);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send(form, button, message, async () => {
      if (!code.value.trim()) { setFieldError(code, t('till.need_code')); throw new Invalid(); }
      const body = { store_id: till.store.id, code: code.value.trim(), ...(till.card || {}) };
      const r = await till.api.post('/v1/pos/vouchers/redeem', body, { idempotencyKey: key.for(body) });
      key.done();
      announce(t('till.voucher_done', { name: r.name }));
      replace(form.parentElement, resultPanel(t('till.voucher_done', { name: r.name }), [
        [t('till.voucher_reward'), r.name, 'voucher-name'],
        [t('till.voucher_value'), r.value === null ? '—' : money(r.value), 'voucher-value'],
        [t('till.voucher_code'), r.code, 'voucher-code'],
      ], h('div', { class: 'actions' }, h('button', { type: 'button', id: 'new-operation', onclick: rerender }, t('till.done')))));
    });
  });
  return form;
}

function rewardText(o) {
  switch (o.reward_kind) {
    case 'percent_off': return t('reward.text.percent_off', { value: o.reward_value });
    case 'amount_off': return t('reward.text.amount_off', { value: money(o.reward_value) });
    case 'bonus_points': return t('reward.text.bonus_points', { value: number(o.reward_value) });
    case 'points_multiplier': return t('reward.text.points_multiplier', { value: o.reward_value });
    default: return o.reward_kind;
  }
}

function simpleMoneyOp({ till, rerender, refreshMember }, { kind, path, withPin }) {
  const key = new ActionKey();
  const amount = moneyField(t('till.amount'), 'amount');
  const pin = withPin ? pinPad() : null;
  if (pin) pin.input.dataset.field = 'pin';
  const message = h('div', { id: `${kind}-message` });
  const { button, row } = submitRow(t(`till.do_${kind}`), `do-${kind}`);
  const form = h('form', { novalidate: true, id: `${kind}-form` },
    h('h2', {}, t(`till.tab_${kind}`)),
    h('p', { class: 'hint' }, t(`till.${kind}_hint`, { balance: money(till.member.stored_value_balance) })),
    amount.wrap, pin ? pin.wrap : null, message, row);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send(form, button, message, async () => {
      const value = parseMoney(amount.input.value);
      if (!value) { setFieldError(amount.input, t('till.need_amount')); throw new Invalid(); }
      const body = { store_id: till.store.id, ...till.card, amount: value, currency: till.program.currency };
      if (pin) {
        if (!/^\d{5}$/.test(pin.value())) { setFieldError(pin.input, t('till.need_pin')); throw new Invalid(); }
        body.pin = pin.value();
      }
      const r = await till.api.post(path, body, { idempotencyKey: key.for(body) });
      key.done();
      if (pin) pin.clear();
      refreshMember({ stored_value_balance: r.stored_value_balance, ...(r.points_balance !== undefined ? { points_balance: r.points_balance } : {}) });
      announce(t(`till.${kind}_done`, { amount: money(value) }));
      replace(form.parentElement, resultPanel(t(`till.${kind}_done`, { amount: money(value) }), [
        [t('till.stored_value'), money(r.stored_value_balance), 'result-stored-value-balance'],
      ], h('div', { class: 'actions' }, h('button', { type: 'button', id: 'new-operation', onclick: rerender }, t('till.done')))));
    });
  });
  return form;
}

export function topUpForm(ops) {
  return simpleMoneyOp(ops, { kind: 'topup', path: '/v1/pos/stored-value/top-ups', withPin: false });
}

export function payoutForm(ops) {
  return simpleMoneyOp(ops, { kind: 'payout', path: '/v1/pos/stored-value/payouts', withPin: true });
}

export function refundForm({ till, rerender, prefill }) {
  const key = new ActionKey();
  const receipt = h('input', { type: 'text', name: 'receipt_id', autocomplete: 'off', value: till.refundReceipt || prefill || '' });
  till.refundReceipt = null;
  const receiptField = field(t('till.receipt'), receipt, { name: 'receipt_id' });
  const amount = moneyField(t('till.refund_amount'), 'amount', t('till.refund_amount_hint'));
  const message = h('div', { id: 'refund-message' });
  const { button, row } = submitRow(t('till.do_refund'), 'do-refund');
  const form = h('form', { novalidate: true, id: 'refund-form' },
    h('h2', {}, t('till.tab_refund')), receiptField.wrap, amount.wrap, message, row);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send(form, button, message, async () => {
      if (!receipt.value.trim()) { setFieldError(receipt, t('till.need_receipt')); throw new Invalid(); }
      const body = { store_id: till.store.id, receipt_id: receipt.value.trim() };
      if (amount.input.value.trim()) {
        const value = parseMoney(amount.input.value);
        if (!value) { setFieldError(amount.input, t('till.need_amount')); throw new Invalid(); }
        body.amount = value;
      }
      const r = await till.api.post('/v1/pos/refunds', body, { idempotencyKey: key.for(body) });
      key.done();
      // What goes back, and how: cash_back by card or in cash, stored_value_back to the purse.
      announce(t('till.refund_done', { amount: money(r.refunded_amount) }));
      replace(form.parentElement, resultPanel(t('till.refund_done', { amount: money(r.refunded_amount) }), [
        [t('till.cash_back'), h('span', { class: 'amount-due' }, money(r.cash_back)), 'refund-cash'],
        [t('till.stored_value_back'), money(r.stored_value_back), 'refund-stored-value'],
        [t('till.refunded_amount'), money(r.refunded_amount), 'refund-total'],
        [t('till.remaining_refundable'), money(r.remaining_refundable), 'refund-remaining'],
        [t('till.points_taken_back'), number(r.points_taken_back), 'refund-points-taken'],
        ...(r.points_shortfall ? [[t('till.points_shortfall'), number(r.points_shortfall), 'refund-points-shortfall']] : []),
        [t('till.points_returned'), number(r.points_returned), 'refund-points-returned'],
        ...(r.vouchers_restored.length ? [[t('till.vouchers_restored'), number(r.vouchers_restored.length), 'refund-vouchers']] : []),
        [t('till.new_balances'), `${number(r.points_balance)} ${t('till.points_unit')} · ${money(r.stored_value_balance)}`, 'refund-balances'],
      ], h('div', { class: 'actions' }, h('button', { type: 'button', id: 'new-operation', onclick: rerender }, t('till.done')))));
    });
  });
  return form;
}

/** What a transaction did to the member's purse (minor units, signed). */
function storedValueDelta(x) {
  switch (x.kind) {
    case 'purchase': return -x.stored_value_spent;
    case 'refund': return x.stored_value_returned;
    case 'topup': return x.amount;
    case 'payout': return -x.amount;
    default: return x.stored_value_returned - x.stored_value_spent;
  }
}

const signed = (n, format) => (n > 0 ? `+${format(n)}` : n < 0 ? `−${format(-n)}` : format(0));

export function recentList({ till, rerender }) {
  const box = h('div', { id: 'recent' }, h('p', { class: 'loading' }, t('common.loading')));
  const load = async () => {
    try {
      const page = await till.api.get(`/v1/pos/stores/${till.store.id}/transactions`, { limit: 25 });
      if (!page.items.length) { replace(box, h('p', {}, t('till.no_transactions'))); return; }
      replace(box, tableBox(t('till.tab_recent'), h('table', { id: 'recent-table' },
        h('thead', {}, h('tr', {}, ...['at', 'kind', 'receipt', 'amount', 'stored_value', 'points', ''].map((k) =>
          h('th', { scope: 'col', class: ['amount', 'stored_value', 'points'].includes(k) ? 'num' : '' }, k ? t(`till.col_${k}`) : h('span', { class: 'visually-hidden' }, t('till.col_actions')))))),
        h('tbody', {}, ...page.items.map((x) => h('tr', { dataset: { transactionId: x.id } },
          h('td', {}, dateTime(x.at, { timeStyle: 'short', dateStyle: 'short' })),
          h('td', {}, t(`till.kind_${x.kind}`)),
          h('td', {}, x.receipt_id || ''),
          h('td', { class: 'num' }, money(x.amount)),
          h('td', { class: 'num' }, signed(storedValueDelta(x), money)),
          h('td', { class: 'num' }, signed(x.points_earned - x.points_redeemed + x.points_returned - x.points_taken_back, number)),
          h('td', {}, x.kind === 'purchase' && x.refundable
            ? h('button', { type: 'button', onclick: () => { till.refundReceipt = x.receipt_id; till.tab = 'refund'; rerender(); } }, t('till.refund_this'))
            : '')))))));
    } catch (err) {
      replace(box, problemNotice(err));
    }
  };
  load();
  return h('div', {}, h('h2', {}, t('till.tab_recent')),
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: load }, t('common.refresh'))), box);
}

