// Pure functions from the API's JSON to what the pages show (unit-tested in test/model.test.js).
// Times from the API are ns since the Unix epoch (JSON numbers: ~256 ns precision, enough here).

export const NS_PER_MS = 1e6;
export const NS_PER_S = 1e9;
export const CELLS = 14;
export const TEMPS = 7;

export const STATES = ['normal', 'warning', 'dangerous', 'safe', 'unknown'];
// safety.state channel values (the edge records the supervisor's enum as a number).
export const STATE_BY_CODE = ['normal', 'warning', 'dangerous', 'safe'];

// Values older than this (by the server's clock) are stale: greyed with their age. The server streams
// new values every 250 ms and the edge commits every 200 ms, so fresh data is under ~1 s old; a
// silent edge is greyed within 2 s of its last value.
export const STALE_MS = 1500;

// The server's clock as the page sees it: every answer carries server_time_ns; the offset to the
// browser's clock (which may be wrong by minutes) is kept, so ages are measured against the server.
export function makeServerClock(localNowMs = () => Date.now()) {
  let offsetMs = null;
  return {
    update(serverTimeNs) {
      if (typeof serverTimeNs === 'number' && serverTimeNs > 0) offsetMs = serverTimeNs / NS_PER_MS - localNowMs();
    },
    known: () => offsetMs !== null,
    offsetMs: () => offsetMs ?? 0,
    nowNs: () => (localNowMs() + (offsetMs ?? 0)) * NS_PER_MS,
  };
}
export const serverClock = makeServerClock();

// Age in ms of a time (ns) against `nowNs`; null when there is no time.
export function ageMs(t, nowNs) {
  return t && nowNs ? Math.max(0, (nowNs - t) / NS_PER_MS) : null;
}

// Whether an edge of the /edges list is online, from the server's point of view: "offline" when its
// link is down, "silent" when the link is up but nothing arrived for STALE_MS (a hung edge or a
// stalled network: the dashboard says offline too), else "online".
export function edgeLiveness(e, nowNs) {
  const age = ageMs(e?.last_value_ns || e?.last_seen_ns, nowNs);
  if (!e?.connected) return { status: 'offline', age_ms: age };
  if (age === null || age > STALE_MS) return { status: 'silent', age_ms: age };
  return { status: 'online', age_ms: age };
}

// What the SAFE banner says about an operator reset, from the summary's active_causes and
// reset_possible (the edge's own verdict, issue 13): {accepted: true|false|null, text, causes}.
export function resetVerdict(summary) {
  const causes = Array.isArray(summary?.active_causes) ? summary.active_causes : null;
  const blocking = (causes ?? []).filter((c) => c?.level === 'dangerous');
  if (summary?.state !== 'safe') return { accepted: null, text: '', causes: blocking };
  if (summary.reset_possible === true)
    return { accepted: true, text: 'The causes have cleared: a reset would be accepted now.', causes: [] };
  if (summary.reset_possible === false) {
    const n = blocking.length;
    return { accepted: false, causes: blocking,
             text: n ? `A reset would be refused now: ${n === 1 ? 'a dangerous cause is' : `${n} dangerous causes are`} still present.`
                     : 'A reset would be refused now.' };
  }
  return { accepted: null, causes: [], text: 'The edge does not report whether a reset would be accepted (older software).' };
}

// CMA_Status: neither the DBC (no VAL_ table for it, in the project's or the rig's vendor DBC) nor the
// rig's spec gives its values a meaning, so it is shown as the raw code. A table given to this
// function ({code: meaning}) is used when it has the code.
export function statusText(v, table = {}) {
  if (v === null || v === undefined || !Number.isFinite(v)) return { text: '—', title: '' };
  const code = Math.round(v);
  const hex = `0x${code.toString(16).toUpperCase().padStart(4, '0')}`;
  if (table[code] !== undefined) return { text: table[code], title: `CMA_Status ${code} (${hex})` };
  return { text: hex, title: `CMA_Status ${code} (${hex}): raw code; neither the DBC (no value table) nor the rig's spec gives its meaning` };
}

// Which configured limit applies to a channel (the edge's "config"/"limits" event, by quantity).
export function channelQuantity(name) {
  const sig = name.slice(name.lastIndexOf('.') + 1);
  if (/^Cell_\d+_Voltage$/.test(sig) || sig === 'Max_Cell_Voltage' || sig === 'Min_Cell_Voltage') return 'cell_voltage';
  if (sig === 'CMA_Voltage') return 'module_voltage';
  if (sig === 'CMA_Max_Temp') return 'module_max_temperature';
  if (sig === 'CMA_Min_Temp') return 'module_min_temperature';
  return { 'inverter.battery_voltage_v': 'inverter_battery_voltage', 'inverter.dc_link_voltage_v': 'dc_link_voltage',
           'inverter.dc_link_current_a': 'pack_current', 'board.temp1_c': 'board_temperature', 'board.temp2_c': 'board_temperature',
           'board.pressure': 'board_pressure' }[name] ?? null;
}

// The limit lines of a channel: [{level: 'warning'|'dangerous', side: 'high'|'low', value}].
export function limitLines(limits, name) {
  const q = channelQuantity(name);
  const l = q && limits ? limits[q] : null;
  if (!l) return [];
  const out = [];
  for (const level of ['warning', 'dangerous'])
    for (const side of ['high', 'low']) {
      const v = l[`${level}_${side}`];
      if (typeof v === 'number' && Number.isFinite(v)) out.push({ level, side, value: v });
    }
  return out;
}

// 24-hour ISO labels for a time axis (s since the epoch, local time): "15:04:05" with the date
// ("2026-12-07") under the first label, where the day changes and on every label of long spans;
// seconds only when the span is short.
export function isoAxisLabels(splits, spanS) {
  const pad = (n) => String(n).padStart(2, '0');
  let lastDay = null;
  return splits.map((s) => {
    const d = new Date(s * 1000);
    const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    const time = spanS <= 600 ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    // The date under the first label, where the day changes and on every label of long spans.
    const label = spanS >= 2 * 86400 || day !== lastDay ? `${time}\n${day}` : time;
    lastDay = day;
    return label;
  });
}

export function stateName(s) {
  return STATES.includes(s) ? s : 'unknown';
}

// "3.2 s", "4 min", "2 h 5 min", "3 d" for an age in ms.
export function formatAge(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

export function formatNumber(v, digits = 2) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  return v.toFixed(digits);
}

// "2026-12-07 03:36:42" (24-hour, local time).
export function formatTime(ns) {
  if (!ns) return '—';
  const d = new Date(ns / NS_PER_MS);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// The text of one safety reason, as the edge words it when it gives "text".
export function reasonText(r) {
  if (!r) return '';
  if (r.text) return r.text;
  const parts = [r.level, r.rule, r.quantity, r.channel].filter(Boolean);
  if (r.measured !== undefined && r.threshold !== undefined) parts.push(`${formatNumber(r.measured, 3)} vs ${formatNumber(r.threshold, 3)}`);
  return parts.join(' ');
}

// Colour of a cell voltage: a fixed scale so the same colour means the same voltage on every page:
// blue (low) - green (nominal) - amber (warning) - red (at or over the dangerous limit).
export const CELL_SCALE = { low: 3.0, nominal: 3.7, warning: 4.1, dangerous: 4.2 };
export function cellColour(v, scale = CELL_SCALE) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '#d7dbe0';
  const stops = [
    [scale.low, [52, 101, 164]],
    [scale.nominal, [46, 160, 90]],
    [scale.warning, [236, 178, 46]],
    [scale.dangerous, [200, 40, 40]],
  ];
  if (v <= stops[0][0]) return rgb(stops[0][1]);
  for (let i = 1; i < stops.length; ++i) {
    if (v <= stops[i][0]) {
      const [v0, c0] = stops[i - 1];
      const [v1, c1] = stops[i];
      const f = (v - v0) / (v1 - v0);
      return rgb(c0.map((x, k) => x + (c1[k] - x) * f));
    }
  }
  return rgb([150, 20, 20]);
}
function rgb(c) {
  return `rgb(${c.map((x) => Math.round(x)).join(',')})`;
}
// Dark text on light fills, white on dark ones.
export function textOn(fill) {
  const m = /rgb\((\d+),(\d+),(\d+)\)/.exec(fill);
  if (!m) return '#111';
  const [r, g, b] = m.slice(1).map(Number);
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#111' : '#fff';
}

// The module table from a /latest answer: channels grouped by their module number (never by name),
// the quantity from the signal name's tail. Ages are relative to `nowNs` (the newest value of the
// edge by default, so a slow browser clock does not make everything look stale).
export function modulesFromLatest(latest, nowNs = latest?.t) {
  const mods = new Map();
  const get = (m) => {
    if (!mods.has(m))
      mods.set(m, { module: m, newest_t: 0, age_ms: null, voltage_v: null, current_a: null, soc_pct: null, soh_pct: null,
                    min_temp_c: null, max_temp_c: null, min_cell_v: null, max_cell_v: null, status: null, balancing: null,
                    cells_v: new Array(CELLS).fill(null), temps_c: new Array(TEMPS).fill(null) });
    return mods.get(m);
  };
  for (const [name, val] of Object.entries(latest?.values ?? {})) {
    if (!val || !val.module) continue;
    const mod = get(val.module);
    if (val.t > mod.newest_t) mod.newest_t = val.t;
    const sig = name.slice(name.lastIndexOf('.') + 1);
    let k;
    if ((k = /^Cell_(\d+)_Voltage$/.exec(sig))) {
      const i = Number(k[1]) - 1;
      if (i >= 0 && i < 64) mod.cells_v[i] = val.v;
    } else if ((k = /^CMA_Temp(\d+)$/.exec(sig))) {
      const i = Number(k[1]) - 1;
      if (i >= 0 && i < 64) mod.temps_c[i] = val.v;
    } else {
      const key = { CMA_Voltage: 'voltage_v', CMA_Current: 'current_a', SOC: 'soc_pct', SOH: 'soh_pct', CMA_Min_Temp: 'min_temp_c',
                    CMA_Max_Temp: 'max_temp_c', Min_Cell_Voltage: 'min_cell_v', Max_Cell_Voltage: 'max_cell_v',
                    CMA_Status: 'status', CellBalancingStatus: 'balancing' }[sig];
      if (key) mod[key] = val.v;
    }
  }
  const out = [...mods.values()].sort((a, b) => a.module - b.module);
  for (const m of out) m.age_ms = nowNs && m.newest_t ? (nowNs - m.newest_t) / NS_PER_MS : null;
  return out;
}

// Cell slots that a rig does not populate: the modules carry 14 cell signals, a rig may wire fewer
// (data/edge/rig.toml `cells`), and an empty slot reads as the signal's raw 0 (2.2 V in the rig's
// DBC). A slot counts as empty when every module (two or more) reports the same value there and it
// is below the colour scale's low end: one real cell at that value still shows (and alarms).
export function unpopulatedCells(mods, scale = CELL_SCALE) {
  const empty = new Set();
  if (mods.length < 2) return empty;
  const n = Math.max(...mods.map((m) => m.cells_v.length));
  for (let i = 0; i < n; ++i) {
    const v = mods[0].cells_v[i];
    if (v === null || v === undefined || !(v < scale.low)) continue;
    if (mods.every((m) => m.cells_v[i] !== null && Math.abs(m.cells_v[i] - v) < 1e-9)) empty.add(i);
  }
  return empty;
}

// Accepts the /modules answer too (same shape, minus newest_t), so either source feeds the grid.
export function normaliseModules(answer) {
  return (answer?.modules ?? []).map((m) => ({ ...m, cells_v: m.cells_v ?? [], temps_c: m.temps_c ?? [] }));
}

// What the edge's events say about the inverter and the schedule: the newest of each that matters.
// `events` are {t, kind, event} envelopes in any order.
export function deriveControl(events) {
  const sorted = [...events].sort((a, b) => a.t - b.t);
  const out = {
    mode: null, setpoint: null, setpoint_unit: 'A', mode_since: null,
    schedule: { running: false, step: null, cycle: null, setpoint: null, unit: 'A', since: null, last: null, readback: null },
    link: null, link_events: 0, link_failures: 0,
  };
  let nudging = false;  // while the supervisor nudges, schedule steps do not reach the inverter
  for (const { t, kind, event: e = {} } of sorted) {
    if (kind === 'action') {
      if (e.action === 'inverter_off') {
        nudging = false;
        Object.assign(out, { mode: 'off', setpoint: 0, mode_since: t });
      } else if (e.action === 'inverter_nudge_charge' || e.action === 'inverter_nudge_discharge' || e.action === 'inverter_hold') {
        Object.assign(out, { mode: e.action.replace('inverter_', '').replace('_', ' '), setpoint: e.setpoint_a ?? null,
                             setpoint_unit: 'A', mode_since: t });
        nudging = true;
      }
    } else if (kind === 'state') {
      if (e.to === 'normal') nudging = false;
    } else if (kind === 'schedule') {
      const s = out.schedule;
      s.last = e.event ?? null;
      if (e.event === 'started') Object.assign(s, { running: true, since: t, step: null, cycle: null });
      else if (e.event === 'step') {
        Object.assign(s, { running: true, step: e.step ?? null, cycle: e.cycle ?? null, setpoint: e.setpoint ?? null,
                           unit: e.unit ?? 'A', step_since: t });
        if (!nudging) Object.assign(out, { mode: 'schedule', setpoint: e.setpoint ?? null, setpoint_unit: e.unit ?? 'A', mode_since: t });
      } else if (e.event === 'stopped' || e.event === 'ended') Object.assign(s, { running: false, why: e.why ?? e.event });
      else if (e.event === 'readback_ok' || e.event === 'readback_failed') s.readback = e;
    } else if (kind === 'link' && e.link === 'inverter') {
      out.link = { t, ...e };
      out.link_events += 1;
      if (/fail|timeout|disconnect/.test(e.event ?? '')) out.link_failures += 1;
    }
  }
  return out;
}

// A one-line summary of an event for the log.
export function eventSummary(env) {
  const e = env?.event ?? {};
  switch (env?.kind) {
    case 'state':
      return `${e.from ?? '?'} → ${e.to ?? '?'}${e.reason ? ` (${reasonText(e.reason)})` : ''}`;
    case 'action':
      return `${e.action}${e.setpoint_a !== undefined ? ` ${e.setpoint_a} A` : ''}${e.reason ? ` — ${reasonText(e.reason)}` : ''}`;
    case 'limit':
      return `${e.event}: ${reasonText(e.reason)}`;
    case 'config':
      if (e.event === 'limits') return `limits: ${Object.keys(e.limits ?? {}).join(', ')}`;
      return `${e.event ?? 'config'}`;
    case 'schedule':
      if (e.event === 'step') return `step ${e.step} (cycle ${e.cycle}): ${e.setpoint} ${e.unit ?? ''}`.trim();
      if (e.event === 'readback_ok' || e.event === 'readback_failed')
        return `${e.event}: expected ${formatNumber(e.expected)} ± ${formatNumber(e.tolerance)}, measured ${formatNumber(e.measured)}`;
      return `${e.event}${e.why ? ` (${e.why})` : ''}${e.file ? ` ${e.file}` : ''}`;
    case 'link':
      if (e.up !== undefined) return `${e.link} ${e.up ? 'up' : 'down'}${e.detail ? `: ${e.detail}` : ''}`;
      if (e.sensor) return `${e.link} ${e.sensor} ${e.in_range ? 'in range' : 'out of range'} (${formatNumber(e.value)})`;
      return `${e.link} ${e.event ?? ''}${e.message ? `: ${e.message}` : ''}`;
    case 'module':
      if (e.modules) return `${e.event}: modules ${e.modules.join(', ')}`;
      return `module ${e.module} ${e.event ?? ''}${e.abort_code !== undefined ? ` (abort 0x${Number(e.abort_code).toString(16)})` : ''}`;
    case 'operator':
      return `${e.operator}${e.origin ? ` (${e.origin})` : ''}${e.reason ? ` — ${reasonText(e.reason)}` : ''}`;
    default: {
      const { t, kind, ...rest } = e;
      return JSON.stringify(rest);
    }
  }
}

// uPlot data from /series answers on one time axis (s), one column per series: the mean of each
// bucket when downsampled (min/max go into band columns when `bands`). Series with different time
// stamps are merged on the union of times with nulls where a series has no value.
export function seriesToColumns(answers, { bands = false } = {}) {
  const times = new Set();
  const perSeries = answers.map((a) => {
    const m = new Map();
    const min = new Map();
    const max = new Map();
    if (a?.downsampled && Array.isArray(a.buckets)) {
      for (const [t, lo, hi, mean, count] of a.buckets) {
        if (!count) continue;
        const ts = t / NS_PER_S;
        times.add(ts);
        m.set(ts, mean);
        min.set(ts, lo);
        max.set(ts, hi);
      }
    } else {
      for (const [t, v] of a?.points ?? []) {
        const ts = t / NS_PER_S;
        times.add(ts);
        m.set(ts, v);
      }
    }
    return { m, min, max };
  });
  const xs = [...times].sort((a, b) => a - b);
  const cols = [xs];
  for (const s of perSeries) {
    cols.push(xs.map((x) => (s.m.has(x) ? s.m.get(x) : null)));
    if (bands) {
      cols.push(xs.map((x) => (s.min.has(x) ? s.min.get(x) : null)));
      cols.push(xs.map((x) => (s.max.has(x) ? s.max.get(x) : null)));
    }
  }
  return cols;
}

// Channel names for the picker, grouped: modules first (by module number), then devices.
export function groupChannels(channels) {
  const groups = new Map();
  for (const c of channels ?? []) {
    const g = c.module ? `Module ${c.module}` : c.name.includes('.') ? c.name.slice(0, c.name.indexOf('.')) : 'other';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(c);
  }
  const key = (g) => (g.startsWith('Module ') ? Number(g.slice(7)) : 1000);
  return [...groups.entries()].sort((a, b) => key(a[0]) - key(b[0]) || a[0].localeCompare(b[0]));
}

// CSV options (issue 13): boardConverted (Ardu_* in degC/bar instead of the rig's ADC counts) and
// extraColumns (CurrentState); without them the file has exactly the rig's columns.
export function exportUrl(edgeId, fromNs, toNs, format = 'csv', intervalS = 1, { boardConverted = false, extraColumns = false } = {}) {
  const q = new URLSearchParams({ from: String(Math.round(fromNs)), to: String(Math.round(toNs)), format });
  if (format === 'csv') q.set('interval_s', String(intervalS));
  if (format === 'csv' && boardConverted) q.set('board', 'converted');
  if (format === 'csv' && extraColumns) q.set('extra', '1');
  return `/api/v1/edges/${encodeURIComponent(edgeId)}/export?${q}`;
}

// Newest first; events with the same time stay in their arrival order (the later one first).
export function newestFirst(events) {
  return events.map((e, i) => [e, i]).sort((a, b) => b[0].t - a[0].t || b[1] - a[1]).map(([e]) => e);
}
