// One edge: a state banner with its reasons, then tabs. Live: the module grid with the per-cell
// voltage heat map, temperatures, SOC and freshness, the inverter, schedule and sensor board panels
// and the newest events, all updated from the stream (/api/v1/stream?edge=ID). History, Events and
// Export in views/history.js, views/events.js and views/export.js.
import { api, openStream } from '../api.js';
import { h, replace } from '../dom.js';
import {
  ageMs, cellColour, deriveControl, edgeLiveness, newestFirst, unpopulatedCells, formatAge, formatNumber, formatTime, modulesFromLatest,
  reasonText, resetVerdict, serverClock, stateName, statusText, textOn, CELLS, STALE_MS, STATE_BY_CODE,
} from '../model.js';
import { setConnection } from '../status.js';
import { stateBadge } from './overview.js';
import { historyTab } from './history.js';
import { eventsTab, eventRow } from './events.js';
import { exportTab } from './export.js';

const TABS = [['live', 'Live'], ['history', 'History'], ['events', 'Events'], ['export', 'Export']];

export function edgePage(root, route, navigate) {
  const id = route.id;
  const base = `/edges/${encodeURIComponent(id)}`;
  const banner = h('section', { class: 'banner state-unknown', id: 'state-banner' }, h('div', { class: 'banner-state' }, '…'));
  const tabs = h('nav', { class: 'tabs' }, TABS.map(([key, label]) =>
    h('a', { href: key === 'live' ? base : `${base}/${key}`, 'data-link': true, class: route.tab === key ? 'active' : '' }, label)));
  const body = h('div', { class: 'tab-body' });
  root.append(banner, tabs, body);

  const state = { summary: null, latest: null, events: [], closed: false };
  const listeners = { latest: [], event: [], summary: [], tick: [] };
  const on = (kind, fn) => listeners[kind].push(fn);

  const renderBanner = () => {
    const s = state.summary;
    if (!s) return;
    let st = stateName(s.state);
    let since = s.state_since_ns;
    // The newest safety.state sample can be ahead of the summary by up to a second.
    const code = state.latest?.values?.['safety.state'];
    if (code && STATE_BY_CODE[code.v] && STATE_BY_CODE[code.v] !== st && code.t > (since ?? 0)) {
      st = STATE_BY_CODE[code.v];
      since = code.t;
    }
    const now = serverClock.nowNs();
    // Ages against the server's clock: the newest value of any kind, else the link's last word.
    const newest = Math.max(state.latest?.t ?? 0, s.last_value_ns ?? 0);
    const live = edgeLiveness({ ...s, last_value_ns: newest }, now);
    const offline = live.status !== 'online';
    const reasons = s.reasons ?? [];
    const verdict = resetVerdict({ ...s, state: st });
    banner.className = `banner state-${st}${offline ? ' banner-offline' : ''}`;
    banner.dataset.state = st;
    banner.dataset.online = live.status;
    banner.dataset.reset = verdict.accepted === true ? 'accepted' : verdict.accepted === false ? 'refused' : 'unknown';
    replace(banner,
      h('div', { class: 'banner-main' },
        h('div', { class: 'banner-state' }, st.toUpperCase(), offline ? h('span', { class: 'offline-tag' }, 'OFFLINE') : null),
        h('div', { class: 'banner-since' }, since ? `since ${formatTime(since)} · ${formatAge((now - since) / 1e6)}` : ''),
        offline ? h('div', { class: 'banner-hint bad' }, `last known state; no data for ${formatAge(live.age_ms)}`) : null),
      h('div', { class: 'banner-reasons' },
        reasons.length ? h('ul', {}, reasons.map((r) => h('li', {}, h('span', { class: `lvl lvl-${r.level}` }, r.level ?? ''), ' ',
                                                         reasonText(r),
                                                         r.since_s && !r.text ? h('span', { class: 'muted' }, ` · since ${formatTime(r.since_s * 1e9)}`) : null)))
                       : h('span', { class: 'muted' }, st === 'normal' ? 'All limits in range.'
                         : st === 'unknown' ? 'The edge has reported no state change yet.' : 'No reasons reported.'),
        st === 'safe' ? h('div', { class: `reset-verdict reset-${verdict.accepted === true ? 'ok' : verdict.accepted === false ? 'refused' : 'unknown'}`, id: 'reset-verdict' },
          h('strong', {}, verdict.accepted === true ? 'Reset possible' : verdict.accepted === false ? 'Reset refused now' : 'Reset'), ' — ', verdict.text,
          verdict.causes.length ? h('ul', { class: 'blocking' }, verdict.causes.map((c) => h('li', {}, reasonText(c)))) : null,
          verdict.accepted === true ? h('div', { class: 'muted small' }, 'Latched until an operator resets: ', h('code', {}, 'cellguard edge reset')) : null)
          : null),
      h('div', { class: 'banner-link' },
        h('div', {}, h('span', { class: `dot ${s.connected && !offline ? 'up' : 'down'}` }),
          !s.connected ? 'edge offline (link closed)' : offline ? 'edge offline (link open, no data)' : 'edge connected'),
        h('div', { class: offline ? 'bad' : 'muted' }, newest ? `newest data ${formatAge(ageMs(newest, now))} ago` : 'no data yet'),
        s.backlog_batches ? h('div', { class: 'warn-text' }, `backlog ${s.backlog_batches} batches`) : null));
  };

  const setSummary = (s) => {
    serverClock.update(s.server_time_ns);
    state.summary = { ...(state.summary ?? {}), ...s };
    renderBanner();
    listeners.summary.forEach((fn) => fn(state.summary));
  };

  api.edge(id).then((s) => {
    setSummary(s);
    state.channels = s.channels ?? [];
    if (route.tab === 'history') historyTab(body, id, state.channels, onDestroy, s.limits ?? null);
  }).catch((e) => e.status !== 401 && replace(body, h('p', { class: 'form-error' }, e.message)));

  const destroyers = [];
  const onDestroy = (fn) => destroyers.push(fn);

  if (route.tab === 'live') liveTab(body, id, state, on);
  else if (route.tab === 'events') eventsTab(body, id, on);
  else if (route.tab === 'export') exportTab(body, id);

  api.latest(id).then((l) => {
    serverClock.update(l.server_time_ns);
    state.latest = l;
    renderBanner();
    listeners.latest.forEach((fn) => fn(l));
  }).catch(() => {});
  api.events(id, { limit: 300 }).then((a) => {
    state.events = a.events ?? [];
    listeners.event.forEach((fn) => fn(null, state.events));
  }).catch(() => {});

  const close = openStream(id, {
    latest: (l) => {
      serverClock.update(l.server_time_ns);
      state.latest = l;
      listeners.latest.forEach((fn) => fn(l));
      renderBanner();
    },
    edges: (a) => {
      serverClock.update(a.server_time_ns);
      const s = (a.edges ?? []).find((e) => e.id === id);
      if (s) setSummary(s);
    },
    event: (ev) => {
      state.events.push(ev);
      if (state.events.length > 2000) state.events.splice(0, state.events.length - 2000);
      // A state change shows at once, before the next summary.
      if (ev.kind === 'state' && ev.event?.to && state.summary)
        setSummary({ state: ev.event.to, state_since_ns: ev.t,
                     reasons: ev.event.to === 'normal' ? [] : ev.event.reason ? [ev.event.reason] : state.summary.reasons,
                     ...(Array.isArray(ev.event.active_causes) ? { active_causes: ev.event.active_causes, reset_possible: ev.event.reset_possible ?? null } : {}) });
      else if (ev.kind === 'limit' && Array.isArray(ev.event?.active_causes) && state.summary)
        setSummary({ active_causes: ev.event.active_causes, reset_possible: ev.event.reset_possible ?? null });
      listeners.event.forEach((fn) => fn(ev, state.events));
    },
  }, (up) => setConnection(up));
  // Ages grow while nothing arrives: redraw often enough that a silent edge is greyed within 2 s.
  const timer = setInterval(() => {
    renderBanner();
    listeners.tick.forEach((fn) => fn());
  }, 250);
  return {
    destroy() {
      close();
      clearInterval(timer);
      destroyers.forEach((fn) => fn());
    },
  };
}

function panel(title, ...content) {
  return h('section', { class: 'card panel' }, h('h2', {}, title), ...content);
}

function kv(rows) {
  return h('dl', { class: 'kv' }, rows.filter(Boolean).map(([k, v, cls]) => [h('dt', {}, k), h('dd', { class: cls ?? '' }, v)]));
}

function liveTab(root, id, state, on) {
  const grid = h('div', { class: 'module-grid-wrap' }, h('p', { class: 'muted' }, 'Waiting for module data…'));
  const temps = h('div', { class: 'module-grid-wrap' }, h('p', { class: 'muted' }, '—'));
  const inverter = h('div', { id: 'inverter-status' }, h('p', { class: 'muted' }, '—'));
  const schedule = h('div', { id: 'schedule-status' }, h('p', { class: 'muted' }, '—'));
  const board = h('div', { id: 'board-status' }, h('p', { class: 'muted' }, '—'));
  const recent = h('div', { class: 'recent-events' });
  const legend = h('div', { class: 'legend' }, 'cell voltage',
    [3.0, 3.4, 3.7, 3.9, 4.1, 4.2].map((v) => h('span', { class: 'legend-swatch', style: { background: cellColour(v), color: textOn(cellColour(v)) } }, v.toFixed(1))),
    h('span', { class: 'legend-stale' }, `grey: no data for > ${STALE_MS / 1000} s`));
  root.append(
    h('div', { class: 'live-layout' },
      h('div', { class: 'main-col' },
        h('section', { class: 'card panel modules-panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Modules · cell voltages (V)'), legend), grid),
        panel('Module temperatures (°C)', temps)),
      h('div', { class: 'side' }, panel('Inverter', inverter), panel('Schedule', schedule), panel('Sensor board', board))),
    panel('Newest events', recent));

  let control = deriveControl([]);
  const renderGrid = (l) => {
    const mods = modulesFromLatest(l, serverClock.nowNs());
    if (!mods.length) return;
    const cellCount = Math.max(CELLS, ...mods.map((m) => m.cells_v.length));
    const empty = unpopulatedCells(mods);
    const head = h('tr', {}, h('th', {}, 'Module'), Array.from({ length: cellCount }, (_, i) => h('th', { class: `cell-head${empty.has(i) ? ' muted-head' : ''}` }, `${i + 1}`)),
      h('th', {}, 'Δ mV'), h('th', {}, 'Σ V'), h('th', {}, 'I (A)'), h('th', {}, 'SOC'), h('th', {}, 'T min/max °C'), h('th', {}, 'Age'));
    const allStale = mods.every((m) => m.age_ms === null || m.age_ms > STALE_MS);
    grid.classList.toggle('all-stale', allStale);
    const rows = mods.map((m) => {
      const stale = m.age_ms !== null && m.age_ms > STALE_MS;
      const cells = m.cells_v.slice(0, cellCount);
      const used = cells.filter((v, i) => v !== null && !empty.has(i));
      const min = Math.min(...used);
      const max = Math.max(...used);
      // Outline the highest cell only when it stands out (not one of many equal readings).
      const maxAt = max - min >= 0.005 ? cells.findIndex((v, i) => v === max && !empty.has(i)) : -1;
      return h('tr', { class: stale ? 'stale' : '', 'data-module': m.module },
        h('th', { class: 'module-id' }, `M${m.module}`, m.balancing ? h('span', { class: 'balancing', title: `balancing mask ${m.balancing}` }, '⇄') : null),
        cells.map((v, i) => {
          if (empty.has(i))
            return h('td', { class: 'cell cell-empty', title: `cell ${i + 1}: ${formatNumber(v, 3)} V in every module (raw 0): not populated`, 'data-cell': `${m.module}.${i + 1}` }, '—');
          const fill = cellColour(v);
          return h('td', { class: `cell${i === maxAt ? ' cell-max' : ''}`, style: { background: fill, color: textOn(fill) },
                           title: `module ${m.module} cell ${i + 1}: ${formatNumber(v, 3)} V`, 'data-cell': `${m.module}.${i + 1}` },
            formatNumber(v, 3));
        }),
        h('td', { class: `num${max - min >= 0.05 ? ' warn-text' : ''}` }, Number.isFinite(max - min) ? Math.round((max - min) * 1000) : '—'),
        h('td', { class: 'num' }, formatNumber(m.voltage_v, 2)),
        h('td', { class: 'num' }, formatNumber(m.current_a, 1)),
        h('td', { class: 'num soc' }, m.soc_pct === null ? '—' : h('div', { class: 'soc-bar' }, h('span', { style: { width: `${Math.max(0, Math.min(100, m.soc_pct))}%` } }), h('em', {}, `${formatNumber(m.soc_pct, 0)} %`))),
        h('td', { class: 'num' }, `${formatNumber(m.min_temp_c, 0)} / ${formatNumber(m.max_temp_c, 0)}`),
        h('td', { class: `num age${stale ? ' bad' : ''}`, 'data-age-ms': m.age_ms === null ? '' : String(Math.round(m.age_ms)) },
          stale ? `${formatAge(m.age_ms)} old` : formatAge(m.age_ms)));
    });
    replace(grid, h('table', { class: 'module-grid', id: 'module-grid' }, h('thead', {}, head), h('tbody', {}, rows)));
    const tempCount = Math.max(...mods.map((m) => m.temps_c.length));
    replace(temps, h('table', { class: 'module-grid temp-grid' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Module'), Array.from({ length: tempCount }, (_, i) => h('th', {}, `T${i + 1}`)), h('th', {}, 'SOH'),
        h('th', { title: 'CMA_Status: raw code (no meaning in the DBC or the spec)' }, 'CMA_Status'), h('th', {}, 'Age'))),
      h('tbody', {}, mods.map((m) => {
        const stale = m.age_ms !== null && m.age_ms > STALE_MS;
        const status = statusText(m.status);
        return h('tr', { class: stale ? 'stale' : '' }, h('th', { class: 'module-id' }, `M${m.module}`),
          m.temps_c.map((t) => h('td', { class: `tcell${t !== null && t >= 30 ? ' hot' : ''}${t !== null && t >= 50 ? ' danger' : ''}` }, formatNumber(t, 1))),
          h('td', { class: 'num' }, m.soh_pct === null ? '—' : `${formatNumber(m.soh_pct, 0)} %`),
          h('td', { class: 'num mono status-code', title: status.title, 'data-status': m.status ?? '' }, status.text),
          h('td', { class: `num age${stale ? ' bad' : ''}` }, stale ? `${formatAge(m.age_ms)} old` : formatAge(m.age_ms)));
      }))));
  };

  const v = (l, name) => l?.values?.[name]?.v;
  // A panel's values are greyed with their age when its newest reading is older than STALE_MS.
  const freshness = (el, l, name) => {
    const age = ageMs(l?.values?.[name]?.t, serverClock.nowNs());
    const stale = age === null || age > STALE_MS;
    el.classList.toggle('stale-panel', Boolean(l?.values?.[name]) && stale);
    return ['age', age === null ? '—' : stale ? `${formatAge(age)} old (no new reading)` : formatAge(age), stale && age !== null ? 'bad' : ''];
  };
  const renderPanels = (l) => {
    const c = control;
    const inSafe = stateName(state.summary?.state) === 'safe';
    const mode = c.mode ?? 'unknown';
    // A setpoint only where the mode uses one (schedule steps, nudges, hold); off has none.
    const usesSetpoint = mode === 'schedule' || mode.startsWith('nudge') || mode === 'hold';
    replace(inverter, kv([
      ['mode', mode, `mode mode-${mode.replace(/\s/g, '-')}`],
      usesSetpoint ? ['setpoint', c.setpoint !== null ? `${formatNumber(c.setpoint, 1)} ${c.setpoint_unit}` : '—'] : null,
      ['battery', `${formatNumber(v(l, 'inverter.battery_voltage_v'), 1)} V`],
      ['DC link', `${formatNumber(v(l, 'inverter.dc_link_voltage_v'), 1)} V`],
      ['current', `${formatNumber(v(l, 'inverter.dc_link_current_a'), 1)} A`],
      ['power', `${formatNumber(v(l, 'inverter.dc_link_power_kw'), 2)} kW`],
      ['heatsink / ambient', `${formatNumber(v(l, 'inverter.heatsink_c'), 1)} / ${formatNumber(v(l, 'inverter.ambient_c'), 1)} °C`],
      ['link', c.link ? `${c.link.event ?? (c.link.up ? 'up' : 'down')}${c.link.message ? `: ${c.link.message}` : ''}` : (l?.values?.['inverter.battery_voltage_v'] ? 'answering' : '—'),
       c.link && /fail|timeout|disconnect/.test(c.link.event ?? '') ? 'bad' : ''],
      ['link quality', c.link_events ? `${c.link_failures} failed of ${c.link_events} link events` : '—'],
      freshness(inverter, l, 'inverter.battery_voltage_v'),
    ]));
    const s = c.schedule;
    const status = inSafe ? 'stopped in SAFE' : s.running ? 'running' : s.last ? (s.why ?? s.last) : 'not started';
    replace(schedule, kv([
      ['status', status, inSafe ? 'bad' : s.running ? 'ok' : ''],
      s.running && !inSafe ? ['step', s.step !== null && s.step !== undefined ? `${s.step}${s.cycle !== null && s.cycle !== undefined ? ` (cycle ${s.cycle})` : ''}` : '—'] : null,
      s.running && !inSafe ? ['setpoint', s.setpoint !== null && s.setpoint !== undefined ? `${formatNumber(s.setpoint, 1)} ${s.unit}` : '—'] : null,
      s.running && !inSafe ? ['in step for', s.step_since ? formatAge(ageMs(s.step_since, serverClock.nowNs())) : '—'] : null,
      ['readback', s.readback ? `${s.readback.event === 'readback_ok' ? 'ok' : 'FAILED'}: measured ${formatNumber(s.readback.measured)}, expected ${formatNumber(s.readback.expected)}` : '—',
       s.readback?.event === 'readback_failed' ? 'bad' : ''],
    ]));
    schedule.dataset.status = status;
    replace(board, kv([
      ['temperature 1', `${formatNumber(v(l, 'board.temp1_c'), 1)} °C`],
      ['temperature 2', `${formatNumber(v(l, 'board.temp2_c'), 1)} °C`],
      ['pressure', `${formatNumber(v(l, 'board.pressure'), 2)} ${l?.values?.['board.pressure']?.unit ?? ''}`],
      freshness(board, l, 'board.temp1_c'),
    ]));
  };
  const renderRecent = (events) => {
    const newest = newestFirst(events).slice(0, 10);
    replace(recent, newest.length ? h('table', { class: 'events' }, h('tbody', {}, newest.map(eventRow))) : h('p', { class: 'muted' }, 'No events yet.'));
  };

  on('latest', (l) => {
    renderGrid(l);
    renderPanels(l);
  });
  on('summary', () => renderPanels(state.latest));
  on('tick', () => {
    if (!state.latest) return;
    renderGrid(state.latest);
    renderPanels(state.latest);
  });
  on('event', (_ev, all) => {
    control = deriveControl(all);
    renderPanels(state.latest);
    renderRecent(all);
  });
}
