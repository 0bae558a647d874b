// The client of cellguard server's HTTP API (/api/v1, issue 6). Every call rejects with ApiError; a 401 also
// fires `onUnauthorized` so the app can show the login form.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorizedHandler = () => {};
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export async function request(path, { method = 'GET', body, base = '' } = {}) {
  let res;
  try {
    res = await fetch(base + path, {
      method,
      credentials: 'same-origin',
      headers: body !== undefined ? { 'Content-Type': 'application/json' } : {},
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, `${path}: the server does not answer (${e.message})`);
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    if (res.status === 401 && !path.endsWith('/login')) unauthorizedHandler();
    throw new ApiError(res.status, json?.error ?? `${path}: HTTP ${res.status}`);
  }
  if (json === null) throw new ApiError(res.status, `${path}: the answer is not JSON`);
  return json;
}

const e = encodeURIComponent;
const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
};

export const api = {
  health: () => request('/api/v1/health'),
  edges: () => request('/api/v1/edges'),
  edge: (id) => request(`/api/v1/edges/${e(id)}`),
  latest: (id) => request(`/api/v1/edges/${e(id)}/latest`),
  modules: (id) => request(`/api/v1/edges/${e(id)}/modules`),
  inverter: (id) => request(`/api/v1/edges/${e(id)}/inverter`),
  board: (id) => request(`/api/v1/edges/${e(id)}/board`),
  series: (id, channel, from, to, points) =>
    request(`/api/v1/edges/${e(id)}/series${query({ channel, from: from && Math.round(from), to: to && Math.round(to), points })}`),
  events: (id, { from, to, limit, kind } = {}) =>
    request(`/api/v1/edges/${e(id)}/events${query({ from: from && Math.round(from), to: to && Math.round(to), limit, kind })}`),
  login: (user, password) => request('/api/v1/login', { method: 'POST', body: { user, password } }),
  logout: () => request('/api/v1/logout', { method: 'POST', body: {} }),
};

// The live stream: one EventSource per page; `handlers` maps SSE event names (latest, edges, event)
// to callbacks with the parsed JSON. `onStatus(connected)` reports the connection. Returns close().
export function openStream(edgeId, handlers, onStatus = () => {}) {
  const url = `/api/v1/stream${edgeId ? `?edge=${e(edgeId)}` : ''}`;
  const source = new EventSource(url, { withCredentials: true });
  source.onopen = () => onStatus(true);
  source.onerror = () => {
    onStatus(false);
    // EventSource reconnects by itself; a 401 closes it for good, so ask once whether we are logged out.
    if (source.readyState === EventSource.CLOSED) request('/api/v1/edges').catch(() => {});
  };
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (m) => {
      let data;
      try {
        data = JSON.parse(m.data);
      } catch {
        return;
      }
      fn(data);
    });
  }
  return () => source.close();
}
