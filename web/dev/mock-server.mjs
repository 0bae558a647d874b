// A small stand-in for `cellguard server`'s HTTP API (docs: notes on issue 6, web/README.md), for
// developing the dashboard and for its unit tests only; it is not part of the product. It serves a
// simulated edge ("rig", 8 modules) and an offline one ("rig-02") per the API contract, the SSE
// stream, and the built dashboard from --web-root (index.html for unknown non-API paths).
//
//   node dev/mock-server.mjs [--port 8090] [--host 127.0.0.1] [--web-root ../build/web/dist] [--auth]
//
// Prints one JSON line {"ready":true,"http":"127.0.0.1:PORT"} when listening. Test hooks:
// POST /mock/fault {"kind":"cell_drift"} makes cell 5 of module 3 drift up (warning at 4.1 V, SAFE
// at 4.2 V); POST /mock/reset leaves SAFE. --auth requires a login (user "demo", password "demo").
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const port = Number(opt('--port', '8090'));
const host = opt('--host', '127.0.0.1');
const webRoot = opt('--web-root', '') && path.resolve(opt('--web-root', ''));
const requireAuth = args.includes('--auth');

const MS = 1_000_000;
const nowNs = () => Date.now() * MS;
const startNs = nowNs();
const MODULES = 8;
const CELLS = 14;

// ---- the simulated rig -------------------------------------------------------------------------
const channels = [];
const addChannel = (name, unit, module = 0, rig_column = '') =>
  channels.push({ id: channels.length, name, unit, module, rig_column });
for (let m = 1; m <= MODULES; ++m) {
  const p = `BMU${String(m).padStart(2, '0')}`;
  for (const [s, u] of [['CMA_Current', 'A'], ['CMA_Voltage', 'V'], ['Min_Cell_Voltage', 'V'], ['Max_Cell_Voltage', 'V'],
                        ['CMA_Min_Temp', 'degC'], ['CMA_Max_Temp', 'degC']]) addChannel(`${p}_pdo1.${s}`, u, m);
  for (const [s, u] of [['CMA_Status', ''], ['SOC', '%'], ['SOH', '%'], ['CellBalancingStatus', 'bit']])
    addChannel(`${p}_pdo2.${s}`, u, m);
  for (let c = 1; c <= CELLS; ++c) addChannel(`${p}_pdo${c <= 8 ? 3 : 4}.Cell_${c}_Voltage`, 'V', m);
  for (let k = 1; k <= 7; ++k) addChannel(`${p}_pdo6.CMA_Temp${k}`, 'degC', m);
}
for (const [n, u, col] of [['board.temp1_c', 'degC', 'Ardu_Temp1'], ['board.temp2_c', 'degC', 'Ardu_Temp2'],
                           ['board.pressure', 'bar', 'Ardu_Press'], ['inverter.battery_voltage_v', 'V', 'modbus_Voltage'],
                           ['inverter.dc_link_voltage_v', 'V', ''], ['inverter.dc_link_current_a', 'A', 'modbus_Current'],
                           ['inverter.dc_link_power_kw', 'kW', 'modbus_Power'], ['inverter.heatsink_c', 'degC', ''],
                           ['inverter.ambient_c', 'degC', ''], ['safety.state', '', '']])
  addChannel(n, u, 0, col);
const byName = new Map(channels.map((c) => [c.name, c]));

const STATE_CODES = { normal: 0, warning: 1, dangerous: 2, safe: 3 };
const rig = {
  state: 'normal', stateSince: startNs, reasons: [], drift: null, events: [], samples: 0, batches: 0,
  schedule: { running: false, step: 0, cycle: 0, setpoint: 0, changed: startNs },
  inverterMode: 'off', setpoint: 0, soc: 50,
};

function emit(kind, body) {
  const t = nowNs();
  const e = { t, kind, event: { t: t / 1e9, kind, ...body } };
  rig.events.push(e);
  if (rig.events.length > 5000) rig.events.shift();
  broadcast('event', e);
}

function cellVoltage(m, c, tNs) {
  const s = tNs / 1e9;
  let v = 3.6 + rig.soc * 0.004 + 0.006 * Math.sin(s / 7 + m * 1.3 + c * 0.7) + 0.002 * Math.sin(s * 3 + c);
  if (rig.drift && m === rig.drift.module && c === rig.drift.cell && tNs >= rig.drift.since)
    v = Math.min(rig.drift.target, v + (s - rig.drift.since / 1e9) * rig.drift.rate);
  return v;
}

function setState(to, reason) {
  if (rig.state === to) return;
  emit('state', { from: rig.state, to, reason });
  rig.state = to;
  rig.stateSince = nowNs();
}

function latest() {
  const t = nowNs();
  const values = {};
  const put = (name, v, tt = t) => {
    const c = byName.get(name);
    values[name] = { t: tt, v, unit: c.unit, module: c.module };
  };
  const s = t / 1e9;
  const current = rig.inverterMode === 'off' ? 0 : rig.setpoint;
  for (let m = 1; m <= MODULES; ++m) {
    const p = `BMU${String(m).padStart(2, '0')}`;
    // Module 7 answers late now and then: its values are older (freshness).
    const tm = m === 7 ? t - (Math.floor(s) % 5) * 300 * MS : t - m * MS;
    const cells = [];
    for (let c = 1; c <= CELLS; ++c) {
      const v = cellVoltage(m, c, tm);
      cells.push(v);
      put(`${p}_pdo${c <= 8 ? 3 : 4}.Cell_${c}_Voltage`, Math.round(v * 1000) / 1000, tm);
    }
    const temps = [];
    for (let k = 1; k <= 7; ++k) {
      const temp = 22 + m * 0.4 + k * 0.2 + 0.3 * Math.sin(s / 20 + k);
      temps.push(temp);
      put(`${p}_pdo6.CMA_Temp${k}`, Math.round(temp * 10) / 10, tm);
    }
    put(`${p}_pdo1.CMA_Current`, current, tm);
    put(`${p}_pdo1.CMA_Voltage`, Math.round(cells.reduce((a, b) => a + b) * 100) / 100, tm);
    put(`${p}_pdo1.Min_Cell_Voltage`, Math.min(...cells), tm);
    put(`${p}_pdo1.Max_Cell_Voltage`, Math.max(...cells), tm);
    put(`${p}_pdo1.CMA_Min_Temp`, Math.round(Math.min(...temps)), tm);
    put(`${p}_pdo1.CMA_Max_Temp`, Math.round(Math.max(...temps)), tm);
    put(`${p}_pdo2.CMA_Status`, 3, tm);
    put(`${p}_pdo2.SOC`, Math.round(rig.soc * 10) / 10, tm);
    put(`${p}_pdo2.SOH`, 100, tm);
    put(`${p}_pdo2.CellBalancingStatus`, m === 3 && rig.drift ? 16 : 0, tm);
  }
  const pack = 8 * 14 * (3.6 + rig.soc * 0.004);
  put('board.temp1_c', 22 + 0.2 * Math.sin(s / 30));
  put('board.temp2_c', 23.5 + 0.2 * Math.sin(s / 25));
  put('board.pressure', 0.1);
  put('inverter.battery_voltage_v', Math.round(pack * 10) / 10);
  put('inverter.dc_link_voltage_v', Math.round(pack * 10) / 10 + 0.4);
  put('inverter.dc_link_current_a', current);
  put('inverter.dc_link_power_kw', Math.round(pack * current) / 1000);
  put('inverter.heatsink_c', 31 + 0.5 * Math.sin(s / 40));
  put('inverter.ambient_c', 24);
  put('safety.state', STATE_CODES[rig.state]);
  return { t, values };
}

function modules(l) {
  const out = [];
  for (let m = 1; m <= MODULES; ++m) {
    const p = `BMU${String(m).padStart(2, '0')}`;
    const g = (n) => l.values[`${p}_${n}`];
    const cells = [];
    for (let c = 1; c <= CELLS; ++c) cells.push(g(`pdo${c <= 8 ? 3 : 4}.Cell_${c}_Voltage`).v);
    const temps = [];
    for (let k = 1; k <= 7; ++k) temps.push(g(`pdo6.CMA_Temp${k}`).v);
    out.push({ module: m, age_ms: Math.round((l.t - g('pdo1.CMA_Voltage').t) / MS), voltage_v: g('pdo1.CMA_Voltage').v,
               current_a: g('pdo1.CMA_Current').v, soc_pct: g('pdo2.SOC').v, soh_pct: g('pdo2.SOH').v,
               min_temp_c: g('pdo1.CMA_Min_Temp').v, max_temp_c: g('pdo1.CMA_Max_Temp').v, cells_v: cells, temps_c: temps,
               balancing: g('pdo2.CellBalancingStatus').v });
  }
  return { modules: out };
}

// The safety logic of the mock: warning over 4.1 V, nudge, SAFE over 4.2 V.
function tick() {
  const l = latest();
  rig.samples += Object.keys(l.values).length;
  rig.batches += 1;
  if (rig.schedule.running) {
    rig.soc = Math.min(99, rig.soc + 0.002);
    if (l.t - rig.schedule.changed > 20_000 * MS) {
      rig.schedule.step = (rig.schedule.step + 1) % 4;
      if (rig.schedule.step === 0) rig.schedule.cycle += 1;
      rig.schedule.changed = l.t;
      if (rig.state === 'normal') rig.setpoint = [20, 40, -20, 0][rig.schedule.step];
      emit('schedule', { event: 'step', step: rig.schedule.step, cycle: rig.schedule.cycle, setpoint: rig.setpoint, unit: 'A' });
    }
  }
  let max = { v: 0 };
  for (const [name, val] of Object.entries(l.values))
    if (/Cell_\d+_Voltage$/.test(name) && val.v > max.v) max = { name, ...val };
  const reason = (level, threshold) => ({
    rule: 'limit_high', level, quantity: 'cell_voltage', channel: max.name, module: max.module, measured: max.v, threshold,
    since_s: l.t / 1e9, text: `${level} limit_high cell_voltage ${max.name} ${max.v.toFixed(3)} >= ${threshold}`,
  });
  if (rig.state !== 'safe') {
    if (max.v >= 4.2) {
      const r = reason('dangerous', 4.2);
      setState('dangerous', r);
      emit('action', { action: 'inverter_off', reason: r });
      rig.inverterMode = 'off';
      rig.schedule.running = false;
      emit('schedule', { event: 'stopped', why: 'safe' });
      setState('safe', r);
      emit('action', { action: 'contactors_open', emergency: false, reason: r });
      rig.reasons = [r];
    } else if (max.v >= 4.1) {
      if (rig.state !== 'warning') {
        const r = reason('warning', 4.1);
        setState('warning', r);
        emit('action', { action: 'inverter_nudge_discharge', setpoint_a: -5, reason: r });
        rig.inverterMode = 'current';
        rig.setpoint = -5;
        rig.reasons = [r];
      }
    } else if (rig.state === 'warning') {
      setState('normal', rig.reasons[0]);
      rig.reasons = [];
    }
  }
  return l;
}

function summary(id) {
  if (id === 'rig-02')
    return { id, connected: false, peer: '', last_seen_ns: startNs - 3600_000 * MS, connected_since_ns: 0,
             software_version: '0.1.0', config_sha256: 'b'.repeat(64), state: 'unknown', state_since_ns: 0, reasons: [],
             backlog_batches: 0, lost_records: 0, batches: 1200, samples: 1_900_000, last_error: 'connection reset by peer' };
  return { id: 'rig', connected: true, peer: '127.0.0.1:41234', last_seen_ns: nowNs(), connected_since_ns: startNs,
           software_version: '0.1.0', config_sha256: 'a'.repeat(64), state: rig.state, state_since_ns: rig.stateSince,
           reasons: rig.reasons, backlog_batches: 0, lost_records: 0, batches: rig.batches, samples: rig.samples,
           last_error: '' };
}
const edges = () => ({ edges: [summary('rig'), summary('rig-02')] });

// Deterministic history for /series: the live formulas evaluated at past times.
function seriesValue(name, tNs) {
  const m = /^BMU(\d+)_pdo\d\.Cell_(\d+)_Voltage$/.exec(name);
  if (m) return cellVoltage(Number(m[1]), Number(m[2]), tNs);
  const s = tNs / 1e9;
  if (name === 'safety.state') return tNs >= rig.stateSince ? STATE_CODES[rig.state] : 0;
  if (name.includes('Temp') || name.endsWith('_c')) return 22 + 0.5 * Math.sin(s / 60 + name.length);
  if (name.includes('Current') || name.includes('current')) return 20 * Math.sin(s / 300);
  if (name.includes('power')) return 7 * Math.sin(s / 300);
  return 50 + 5 * Math.sin(s / 600 + name.length);
}

function series(id, q) {
  const c = byName.get(q.get('channel') ?? '');
  if (!c) return [404, { error: `series: no channel "${q.get('channel')}" on edge "${id}"` }];
  const to = Number(q.get('to') ?? nowNs());
  const from = Number(q.get('from') ?? to - 3600e9);
  const points = Math.min(10000, Number(q.get('points') ?? 1000));
  if (!(to > from)) return [400, { error: 'series: "to" must be after "from"' }];
  const step = 500 * MS;  // raw samples every 500 ms
  const raw = Math.floor((to - Math.max(from, startNs - 86400e9)) / step);
  if (raw <= points) {
    const pts = [];
    for (let t = Math.ceil(from / step) * step; t <= to; t += step) pts.push([t, seriesValue(c.name, t)]);
    return [200, { channel: c.name, unit: c.unit, downsampled: false, bucket_ns: 0, points: pts }];
  }
  const bucket = Math.ceil((to - from) / points);
  const buckets = [];
  for (let b = from; b < to; b += bucket) {
    const vs = [];
    for (let k = 0; k < 8; ++k) vs.push(seriesValue(c.name, b + (k * bucket) / 8));
    buckets.push([b, Math.min(...vs), Math.max(...vs), vs.reduce((a, x) => a + x) / vs.length, Math.round(bucket / step)]);
  }
  return [200, { channel: c.name, unit: c.unit, downsampled: true, bucket_ns: bucket, buckets }];
}

// ---- HTTP --------------------------------------------------------------------------------------
const sessions = new Set();
const clients = new Set();
function broadcast(event, data) {
  for (const res of clients) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function authed(req) {
  if (!requireAuth) return true;
  const m = /(?:^|;\s*)cg_session=([^;]+)/.exec(req.headers.cookie ?? '');
  return m !== null && sessions.has(m[1]);
}

const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml',
               '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2' };
function serveStatic(req, res, pathname) {
  if (!webRoot) return send(res, 404, { error: 'no --web-root' });
  let file = path.join(webRoot, path.normalize(decodeURIComponent(pathname)).replace(/^(\.\.[/\\])+/, ''));
  if (!file.startsWith(path.resolve(webRoot)) || !fs.existsSync(file) || fs.statSync(file).isDirectory())
    file = path.join(webRoot, 'index.html');
  res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
}

function readBody(req) {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      try { resolve(JSON.parse(body || '{}')); } catch { resolve(null); }
    });
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const q = url.searchParams;
  if (p === '/mock/fault' && req.method === 'POST') {
    const body = await readBody(req);
    rig.drift = { module: body?.module ?? 3, cell: body?.cell ?? 5, rate: body?.rate_v_per_s ?? 0.05,
                  target: body?.target_v ?? 4.3, since: nowNs() };
    return send(res, 200, { ok: true });
  }
  if (p === '/mock/reset' && req.method === 'POST') {
    rig.drift = null;
    emit('operator', { operator: 'reset_accepted' });
    setState('normal', null);
    rig.reasons = [];
    return send(res, 200, { ok: true });
  }
  if (p === '/mock/schedule' && req.method === 'POST') {
    rig.schedule = { running: true, step: 0, cycle: 0, setpoint: 20, changed: nowNs() };
    rig.inverterMode = 'current';
    rig.setpoint = 20;
    emit('schedule', { event: 'started', file: 'schedule-current-example.csv' });
    emit('schedule', { event: 'step', step: 0, cycle: 0, setpoint: 20, unit: 'A' });
    return send(res, 200, { ok: true });
  }
  if (!p.startsWith('/api/') && p !== '/metrics') return serveStatic(req, res, p);
  if (p === '/api/v1/health')
    return send(res, 200, { ok: true, version: '0.1.0', edges: 2, connected: 1, store: { file_bytes: 1 << 20, samples: rig.samples } });
  if (p === '/api/v1/login' && req.method === 'POST') {
    const body = await readBody(req);
    if (body?.user !== 'demo' || body?.password !== 'demo') return send(res, 401, { error: 'login: wrong user or password' });
    const token = Math.random().toString(36).slice(2);
    sessions.add(token);
    return send(res, 200, { ok: true, user: body.user }, { 'Set-Cookie': `cg_session=${token}; HttpOnly; SameSite=Strict; Path=/` });
  }
  if (p === '/api/v1/logout' && req.method === 'POST')
    return send(res, 200, { ok: true }, { 'Set-Cookie': 'cg_session=; Max-Age=0; Path=/' });
  if (!authed(req)) return send(res, 401, { error: 'login required' });
  if (p === '/api/v1/stream') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write(': cellguard mock\n\n');
    const edge = q.get('edge');
    clients.add(res);
    const send1 = () => {
      if (edge === 'rig') res.write(`event: latest\ndata: ${JSON.stringify(lastLatest)}\n\n`);
    };
    send1();
    res.write(`event: edges\ndata: ${JSON.stringify(edges())}\n\n`);
    const a = setInterval(send1, 500);
    const b = setInterval(() => res.write(`event: edges\ndata: ${JSON.stringify(edges())}\n\n`), 1000);
    req.on('close', () => { clearInterval(a); clearInterval(b); clients.delete(res); });
    return undefined;
  }
  if (p === '/api/v1/edges') return send(res, 200, edges());
  const m = /^\/api\/v1\/edges\/([^/]+)(?:\/([a-z]+))?$/.exec(p);
  if (!m) return send(res, 404, { error: `no such API path ${p}` });
  const [, id, what] = m;
  if (id !== 'rig' && id !== 'rig-02') return send(res, 404, { error: `no edge "${id}"` });
  if (!what) return send(res, 200, { ...summary(id), channels });
  if (id === 'rig-02') return send(res, 200, what === 'events' ? { events: [] } : { t: 0, values: {}, modules: [] });
  if (what === 'latest') return send(res, 200, lastLatest);
  if (what === 'modules') return send(res, 200, modules(lastLatest));
  if (what === 'inverter' || what === 'board') {
    const out = { t: lastLatest.t };
    for (const [name, v] of Object.entries(lastLatest.values)) if (name.startsWith(`${what}.`)) out[name.slice(what.length + 1)] = v.v;
    return send(res, 200, out);
  }
  if (what === 'series') {
    const [status, body] = series(id, q);
    return send(res, status, body);
  }
  if (what === 'events') {
    const from = Number(q.get('from') ?? 0), to = Number(q.get('to') ?? Infinity), limit = Number(q.get('limit') ?? 1000);
    const kind = q.get('kind');
    const list = rig.events.filter((e) => e.t >= from && e.t <= to && (!kind || e.kind === kind));
    return send(res, 200, { events: list.slice(-limit) });
  }
  if (what === 'export') {
    const format = q.get('format') ?? 'csv';
    res.writeHead(200, { 'Content-Type': format === 'csv' ? 'text/csv' : 'application/x-ndjson',
                         'Content-Disposition': `attachment; filename="${id}.${format}"` });
    return res.end(format === 'csv' ? 'Time,modbus_Voltage\n0,360.1\n' : '{"t":0}\n');
  }
  return send(res, 404, { error: `no such API path ${p}` });
});

let lastLatest = tick();
setInterval(() => {
  lastLatest = tick();
}, 200);
emit('module', { event: 'discovered', modules: [1, 2, 3, 4, 5, 6, 7, 8] });
emit('link', { link: 'inverter', event: 'started', message: 'inverter started (mode off)' });
server.listen(port, host, () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ ready: true, http: `${a.address}:${a.port}` })}\n`);
});
const stop = () => { for (const c of clients) c.end(); server.close(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
