// The v1 API from the browser: a bearer access token held in memory only (never in storage),
// problem+json errors as ApiError, one transparent retry after a refresh on 401.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.type = problem.type || '';
    this.field = problem.field || null;
    this.errors = problem.errors || [];
  }

  static async from(res) {
    let problem = {};
    try {
      problem = await res.json();
    } catch {
      problem = { title: res.statusText };
    }
    return new ApiError(res.status, problem);
  }
}

/** A network failure (no answer at all): the same request may be retried with its key. */
export class NetworkError extends Error {}

export class Api {
  constructor(session) {
    this.session = session;
  }

  async request(method, path, { body, query, idempotencyKey, accept, raw } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
    }
    const send = async () => {
      const headers = { Accept: accept || 'application/json' };
      const token = await this.session.accessToken();
      if (token) headers.Authorization = `Bearer ${token}`;
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
      try {
        return await fetch(url, {
          method, headers, credentials: 'omit',
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        throw new NetworkError(err.message);
      }
    };
    let res = await send();
    if (res.status === 401 && this.session.active()) {
      await this.session.refresh();
      res = await send();
    }
    if (!res.ok) throw await ApiError.from(res);
    if (raw) return res;
    if (res.status === 204) return null;
    return res.json();
  }

  get(path, query) { return this.request('GET', path, { query }); }
  post(path, body, opts = {}) { return this.request('POST', path, { body, ...opts }); }
  put(path, body, opts = {}) { return this.request('PUT', path, { body, ...opts }); }
  patch(path, body, opts = {}) { return this.request('PATCH', path, { body, ...opts }); }
  del(path, opts = {}) { return this.request('DELETE', path, opts); }

  /** Every item of a paged list (follows next_cursor), up to `max` items. */
  async all(path, query = {}, max = 20_000) {
    const items = [];
    let cursor = null;
    do {
      const page = await this.get(path, { ...query, limit: 500, cursor });
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < max);
    return items;
  }
}

/**
 * One Idempotency-Key per user action: the key is made when the action is first submitted and
 * kept while the same body is retried (a double tap, a timeout), so the server counts it once.
 * A different body, or a finished action, gets a new key.
 */
export class ActionKey {
  constructor() {
    this.key = null;
    this.body = null;
  }

  for(body) {
    const text = JSON.stringify(body);
    if (this.key === null || text !== this.body) {
      this.key = crypto.randomUUID();
      this.body = text;
    }
    return this.key;
  }

  done() {
    this.key = null;
    this.body = null;
  }
}

/** Run `work` once at a time for a button: a second tap while it runs does nothing. */
export function once(button, work) {
  return async (event) => {
    if (event) event.preventDefault();
    if (button.dataset.busy === 'true') return;
    button.dataset.busy = 'true';
    button.setAttribute('aria-disabled', 'true');
    try {
      await work();
    } finally {
      button.dataset.busy = 'false';
      button.removeAttribute('aria-disabled');
    }
  };
}
