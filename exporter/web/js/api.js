// The HTTP API of API.md §3, with the bearer token of this tab.

export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail ? `${error}: ${detail}` : error || `HTTP ${status}`);
    this.status = status;
    this.error = error || '';
    this.detail = detail || '';
  }
}

const TOKEN_KEY = 'licmon.token';
const ORG_KEY = 'licmon.org';
const ORGS_KEY = 'licmon.orgs';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
  get org() { return sessionStorage.getItem(ORG_KEY) || ''; },
  set(token, org) {
    sessionStorage.setItem(TOKEN_KEY, token);
    this.setOrg(org);
  },
  setOrg(org) {
    sessionStorage.setItem(ORG_KEY, org);
    const seen = this.orgs().filter((o) => o !== org);
    seen.unshift(org);
    sessionStorage.setItem(ORGS_KEY, JSON.stringify(seen.slice(0, 20)));
  },
  orgs() {
    try { return JSON.parse(sessionStorage.getItem(ORGS_KEY) || '[]'); } catch { return []; }
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ORG_KEY);
  },
};

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {}))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

// One request; resolves to the parsed JSON (or the Response when raw), rejects
// with an ApiError carrying the API's {"error","detail"}.
export async function request(path, { method = 'GET', params, body, raw = false, token, signal } = {}) {
  const headers = { Authorization: `Bearer ${token || session.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path + query(params), {
      method, headers, cache: 'no-store', signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'unreachable', 'the licmon server did not answer');
  }
  if (!r.ok) {
    let j = {};
    try { j = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, j.error || r.statusText, j.detail);
  }
  return raw ? r : r.json();
}

// GET /v1/orgs: {"orgs":[{"org","timezone"}, …]}, the orgs the token may see.
export function listOrgs(opts) {
  return request('/v1/orgs', opts);
}

export function orgPath(org, what) {
  return `/v1/orgs/${encodeURIComponent(org)}/${what}`;
}

// The API of one org.
export function orgApi(org) {
  const get = (what, params, opts) => request(orgPath(org, what), { params, ...opts });
  return {
    licenses: () => get('licenses'),
    current: () => get('current'),
    settings: () => get('settings'),
    putSettings: (partial) => request(orgPath(org, 'settings'), { method: 'PUT', body: partial }),
    usageDays: (type, from, to, opts) => get('usage', { type, granularity: 'day', from, to }, opts),
    usageHours: (type, date, opts) => get('usage', { type, granularity: 'hour', date }, opts),
    usageMinutes: (type, date, hour, opts) => get('usage', { type, granularity: 'minute', date, hour }, opts),
    stats: (type, from, to, thresholdPct, opts) =>
      get('stats', { type, from, to, threshold_pct: thresholdPct }, opts),
    exportFile: (format, type, from, to) => get('export', { format, type, from, to }, { raw: true }),
    report: (type, from, to) => get('report', { type, from, to }, { raw: true }),
  };
}
