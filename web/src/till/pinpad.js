// The PIN pad: a labelled password field (type on a keyboard) and large digit buttons (tap on a
// touch screen) filling the same field. 5 digits; the PIN is never stored or shown.

import { h, uid } from '../common/dom.js';
import { t } from '../common/i18n.js';

export function pinPad() {
  const id = uid('pin');
  const input = h('input', {
    type: 'password', id, inputmode: 'numeric', autocomplete: 'off', maxlength: 5,
    pattern: '[0-9]{5}', class: 'pin-display', 'aria-describedby': `${id}-hint ${id}-error`,
  });
  input.addEventListener('input', () => { input.value = input.value.replace(/\D/g, '').slice(0, 5); });
  const press = (digit) => {
    if (input.value.length < 5) input.value += digit;
    input.dispatchEvent(new Event('input'));
  };
  const key = (label, action, aria) => h('button', { type: 'button', 'aria-label': aria || label, onclick: action }, label);
  const digits = ['1', '2', '3', '4', '5', '6', '7', '8', '9'].map((d) => key(d, () => press(d)));
  const pad = h('div', { class: 'pinpad', role: 'group', 'aria-label': t('till.pin_pad') },
    ...digits,
    key('C', () => { input.value = ''; }, t('till.pin_clear')),
    key('0', () => press('0')),
    key('⌫', () => { input.value = input.value.slice(0, -1); }, t('till.pin_back')));
  const wrap = h('div', { class: 'field pin' },
    h('label', { for: id }, t('till.pin')),
    h('p', { class: 'hint', id: `${id}-hint` }, t('till.pin_hint')),
    input, pad,
    h('p', { class: 'field-error', id: `${id}-error`, hidden: true }));
  return { wrap, input, value: () => input.value, clear: () => { input.value = ''; } };
}
