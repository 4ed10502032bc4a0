// The browser session of /console or /till.
//
// The refresh token lives only in an HttpOnly, SameSite=Strict cookie scoped to the app's path
// (JavaScript never sees it); the access token lives in this object's memory only. Writes that
// the cookie authenticates (refresh, logout) carry the CSRF token the server bound to the
// session (a <meta> of the page, or the last session response). Tabs of the same app share
// the cookie: refreshes are serialised with the Web Locks API (a refresh token is single-use),
// and a logout in one tab ends the others through a BroadcastChannel.

import { ApiError, NetworkError } from './api.js';

export class Session {
  constructor(app) {
    this.app = app;
    this.base = `/${app}/session`;
    this.token = null;
    this.expiresAt = 0;
    this.account = null;
    const meta = document.querySelector('meta[name="csrf-token"]');
    this.csrf = meta ? meta.content : '';
    this.onEnded = () => {};
    this.channel = 'BroadcastChannel' in window ? new BroadcastChannel(`loyalty-${app}`) : null;
    if (this.channel) {
      this.channel.onmessage = (event) => {
        if (event.data === 'logout') this.end();
      };
    }
  }

  active() {
    return this.token !== null;
  }

  async login(email, password, programId) {
    const body = { email, password };
    if (programId) body.program_id = programId;
    this.take(await this.post('', body));
  }

  /** Resume the session of the cookie, if there is one. */
  async restore() {
    if (!this.csrf) return false;
    try {
      await this.refresh();
      return true;
    } catch (err) {
      if (err instanceof ApiError) return false;
      throw err;
    }
  }

  async refresh() {
    const run = async () => this.take(await this.post('/refresh'));
    try {
      if (navigator.locks) await navigator.locks.request(`loyalty-refresh-${this.app}`, run);
      else await run();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) this.end();
      throw err;
    }
  }

  async accessToken() {
    if (this.token && Date.now() > this.expiresAt - 30_000) await this.refresh();
    return this.token;
  }

  async logout() {
    try {
      await this.post('/logout');
    } finally {
      if (this.channel) this.channel.postMessage('logout');
      this.end();
    }
  }

  end() {
    const was = this.token !== null;
    this.token = null;
    this.account = null;
    this.expiresAt = 0;
    if (was) this.onEnded();
  }

  take(r) {
    this.token = r.access_token;
    this.expiresAt = Date.now() + r.expires_in * 1000;
    this.csrf = r.csrf_token;
    this.account = r.account;
  }

  async post(suffix, body) {
    let res;
    try {
      res = await fetch(this.base + suffix, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': this.csrf || '' },
        body: JSON.stringify(body || {}),
      });
    } catch (err) {
      throw new NetworkError(err.message);
    }
    if (!res.ok) throw await ApiError.from(res);
    return res.status === 204 ? null : res.json();
  }
}
