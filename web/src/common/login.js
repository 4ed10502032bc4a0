// The sign-in form shared by the console and the till.

import { ApiError, NetworkError } from './api.js';
import { announce, field, focusFirst, h, replace } from './dom.js';
import { t } from './i18n.js';

/** Render the sign-in form into `main`; resolves once `session` holds a session. */
export function loginView(main, session, { title, intro, refused }) {
  return new Promise((resolve) => {
    const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
    const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
    const program = h('select', { name: 'program_id' });
    const programField = field(t('login.program'), program);
    programField.wrap.hidden = true;
    const message = h('div', { class: 'notice error', hidden: true, role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'primary' }, t('login.submit'));
    const form = h('form', { class: 'panel login', novalidate: true },
      h('h1', {}, title),
      intro ? h('p', {}, intro) : null,
      refused ? h('div', { class: 'notice error', role: 'alert' }, refused) : null,
      field(t('login.email'), email).wrap,
      field(t('login.password'), password).wrap,
      programField.wrap,
      message,
      h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (submit.dataset.busy === 'true') return;
      message.hidden = true;
      if (!email.value || !password.value) {
        message.textContent = t('login.missing');
        message.hidden = false;
        return;
      }
      submit.dataset.busy = 'true';
      submit.setAttribute('aria-disabled', 'true');
      try {
        await session.login(email.value.trim(), password.value, programField.wrap.hidden ? null : program.value);
        announce(t('login.welcome'));
        resolve();
      } catch (err) {
        if (err instanceof ApiError && err.type === '/problems/choose-program') {
          replace(program, ...(err.problem.programs || []).map((p) => h('option', { value: p.id }, p.name)));
          programField.wrap.hidden = false;
          message.textContent = t('login.choose_program');
        } else if (err instanceof ApiError && err.status === 403) {
          message.textContent = err.problem.detail || t('login.not_allowed');
        } else if (err instanceof ApiError && err.status === 429) {
          message.textContent = t('login.rate_limited');
        } else if (err instanceof ApiError) {
          message.textContent = t('login.failed');
        } else if (err instanceof NetworkError) {
          message.textContent = t('common.offline');
        } else {
          throw err;
        }
        message.hidden = false;
        password.focus();
      } finally {
        submit.dataset.busy = 'false';
        submit.removeAttribute('aria-disabled');
      }
    });
    replace(main, form);
    focusFirst(main);
  });
}

/** The problem of a failed call as a notice element (validation errors listed by field). */
export function problemNotice(err) {
  if (err instanceof NetworkError) return h('div', { class: 'notice error', role: 'alert' }, t('common.offline'));
  if (!(err instanceof ApiError)) throw err;
  const items = (err.errors || []).map((e) => h('li', {}, `${e.field}: ${e.message}`));
  return h('div', { class: 'notice error', role: 'alert' },
    h('strong', {}, err.problem.title || t('common.error')), ' ',
    err.problem.detail || '',
    items.length ? h('ul', {}, items) : null);
}
