// Building DOM without innerHTML: text is always text, so data from the API cannot inject markup.

/** h('button', {type: 'button', onclick: f, class: 'x'}, 'text', child...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (key === 'checked' || key === 'selected' || key === 'disabled') {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

let liveTimer = 0;
/** Say something to screen readers (and show it in the status line). */
export function announce(message, { error = false } = {}) {
  const live = document.getElementById(error ? 'alert' : 'live');
  if (!live) return;
  live.textContent = '';
  clearTimeout(liveTimer);
  // A fresh text node after a tick makes screen readers read it even if it repeats.
  liveTimer = setTimeout(() => { live.textContent = message; }, 30);
}

let idCounter = 0;
export function uid(prefix = 'id') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled form field: returns {wrap, input, error}. `input` is the control element. */
export function field(label, control, { hint, name } = {}) {
  const id = control.id || uid('f');
  control.id = id;
  if (name) control.dataset.field = name;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const error = h('p', { class: 'field-error', id: errorId, hidden: true });
  const described = [hintId, errorId].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  const wrap = h('div', { class: 'field' },
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    control, error);
  return { wrap, input: control, error };
}

/** Show a validation message on a control (and mark it invalid for assistive technology). */
export function setFieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (message) {
    control.setAttribute('aria-invalid', 'true');
    if (error) { error.textContent = message; error.hidden = false; }
  } else {
    control.removeAttribute('aria-invalid');
    if (error) { error.textContent = ''; error.hidden = true; }
  }
}

export function clearFieldErrors(root) {
  for (const el of root.querySelectorAll('[aria-invalid="true"]')) setFieldError(el, '');
}

/** Download a Blob under a file name (the API needs a token, so a plain link cannot do it). */
export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Move focus to a heading or region after a view change (keyboard and screen reader users). */
export function focusFirst(root) {
  const target = root.querySelector('h1, h2, [data-autofocus]');
  if (target) {
    if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
    target.focus({ preventScroll: false });
  }
}

/** A box a wide table scrolls in sideways on a narrow screen: focusable, so the keyboard
 * scrolls it too, and named, so a screen reader says what it holds. */
export function tableBox(label, ...children) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label }, ...children);
}
