// History charts: pick channels (grouped by module and device), a time range, and uPlot draws the
// downsampled series from /series. Drag across the chart to zoom (the zoomed range is fetched again
// at full resolution); double-click or "Reset zoom" goes back. "Follow" refreshes every 5 s.
// Times are 24-hour ISO (local time); the edge's configured warning and dangerous levels of the shown
// channels are drawn as dashed lines (from its "limits" event) and the edge's events as markers.
import uPlot from 'uplot';
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { eventSummary, formatTime, groupChannels, isoAxisLabels, limitLines, seriesToColumns, NS_PER_MS } from '../model.js';

const RANGES = [['10 min', 600], ['1 h', 3600], ['6 h', 6 * 3600], ['24 h', 86400], ['7 d', 7 * 86400]];
const COLOURS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7d8c', '#57606a'];
const DEFAULTS = ['inverter.battery_voltage_v', 'inverter.dc_link_current_a'];

const LIMIT_COLOURS = { warning: '#bf8700', dangerous: '#cf222e' };
const MARKER_COLOURS = { state: '#8250df', action: '#9a6700', limit: '#cf222e', operator: '#0550ae', schedule: '#1a7f37' };
const MARKER_KINDS = new Set(Object.keys(MARKER_COLOURS));

export function historyTab(root, id, channels, onDestroy, limits = null) {
  const params = new URLSearchParams(location.search);
  const known = new Set(channels.map((c) => c.name));
  let selected = (params.get('channels')?.split(',') ?? DEFAULTS).filter((n) => known.has(n));
  if (!selected.length && channels.length) selected = [channels[0].name];
  let rangeS = Number(params.get('range')) || 3600;
  let zoom = null;  // [from_ns, to_ns] while zoomed
  let follow = true;
  let plot = null;
  let loading = 0;
  let markers = [];  // events in the shown range: {t (s), kind, text}
  let lines = [];    // limit lines of the shown series: {scale, level, side, value, channel}

  const chartBox = h('div', { class: 'chart', id: 'history-chart' });
  const chartNote = h('div', { class: 'chart-note', id: 'history-note' });
  const status = h('span', { class: 'muted small' });
  const chips = h('div', { class: 'chips' });
  const filter = h('input', { type: 'search', placeholder: 'filter channels (e.g. Cell_5, inverter)', class: 'channel-filter' });
  const picker = h('select', { multiple: true, size: 14, class: 'channel-picker', id: 'channel-picker' });
  const rangeButtons = h('div', { class: 'segmented' });
  const followBox = h('input', { type: 'checkbox', checked: true, onchange: () => { follow = followBox.checked; } });

  const fillPicker = () => {
    const f = filter.value.trim().toLowerCase();
    replace(picker, groupChannels(channels).map(([group, list]) => {
      const shown = list.filter((c) => !f || c.name.toLowerCase().includes(f));
      return shown.length ? h('optgroup', { label: group }, shown.map((c) =>
        h('option', { value: c.name, selected: selected.includes(c.name) }, `${c.name}${c.unit ? ` [${c.unit}]` : ''}`))) : null;
    }));
  };
  const renderChips = () => replace(chips, selected.map((n, i) => h('span', { class: 'chip', style: { borderColor: COLOURS[i % COLOURS.length] } },
    h('i', { style: { background: COLOURS[i % COLOURS.length] } }), n,
    h('button', { class: 'chip-x', title: 'remove', onclick: () => { selected = selected.filter((x) => x !== n); changed(); } }, '×'))));
  const renderRanges = () => replace(rangeButtons, RANGES.map(([label, s]) =>
    h('button', { class: rangeS === s && !zoom ? 'active' : '', onclick: () => { rangeS = s; zoom = null; changed(); } }, label)),
  zoom ? h('button', { class: 'active', onclick: () => { zoom = null; changed(); } }, 'Reset zoom') : null);

  filter.addEventListener('input', fillPicker);
  picker.addEventListener('change', () => {
    selected = [...picker.selectedOptions].map((o) => o.value).slice(0, 8);
    changed();
  });

  root.append(h('div', { class: 'history-layout' },
    h('section', { class: 'card panel picker-panel' }, h('h2', {}, 'Channels'), filter, picker,
      h('p', { class: 'muted small' }, 'Ctrl/Shift-click to pick several (up to 8).')),
    h('section', { class: 'card panel chart-panel' },
      h('div', { class: 'panel-head' }, rangeButtons, h('label', { class: 'inline' }, followBox, ' follow'), status),
      chips, chartBox, chartNote,
      h('p', { class: 'muted small' }, 'Drag across the chart to zoom, double-click to go back. Downsampled series show the mean per bucket with the min–max band.'))));

  const changed = () => {
    const q = new URLSearchParams({ channels: selected.join(','), range: String(rangeS) });
    history.replaceState(null, '', `${location.pathname}?${q}`);
    fillPicker();
    renderChips();
    renderRanges();
    load();
  };

  const build = (answers, data) => {
    plot?.destroy();
    const units = [...new Set(answers.map((a) => a.unit || '-'))];
    const series = [{ label: 'time' }];
    const bands = [];
    answers.forEach((a, i) => {
      const colour = COLOURS[i % COLOURS.length];
      series.push({ label: a.channel, stroke: colour, width: 1.5, scale: a.unit || '-', spanGaps: false,
                    value: (u, v) => (v === null || v === undefined ? '—' : `${v.toFixed(3)} ${a.unit ?? ''}`) });
      const base = series.length - 1;
      series.push({ label: `${a.channel} min`, stroke: 'transparent', scale: a.unit || '-', points: { show: false }, value: () => '' });
      series.push({ label: `${a.channel} max`, stroke: 'transparent', scale: a.unit || '-', points: { show: false }, value: () => '' });
      bands.push({ series: [base + 2, base + 1], fill: `${colour}22` });
    });
    // space: our labels ("15:04:05") are wider than uPlot's defaults assume; keep them apart.
    const axes = [{ stroke: '#57606a', grid: { stroke: '#eaeef2' }, size: 46, space: 80,
                    values: (u, splits) => isoAxisLabels(splits, (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0)) }];
    series[0].value = (u, v) => (v === null || v === undefined ? '—' : formatTime(v * 1e9));
    units.slice(0, 2).forEach((u, i) => axes.push({ scale: u, side: i === 0 ? 3 : 1, label: u === '-' ? '' : u, stroke: '#57606a',
                                                   grid: { show: i === 0, stroke: '#eaeef2' }, size: 60 }));
    const width = Math.max(300, chartBox.clientWidth || 800);
    plot = new uPlot({
      width, height: 380, series, axes, bands,
      scales: { x: { time: true }, ...Object.fromEntries(units.map((unit) => [unit, { range: (u, lo, hi) => rangeWithLimits(unit, lo, hi) }])) },
      legend: { live: true },
      cursor: { drag: { x: true, y: false }, bind: { dblclick: () => () => { if (zoom) { zoom = null; changed(); } return null; } } },
      hooks: {
        draw: [drawOverlays],
        // The min/max band series have no legend row of their own.
        init: [(u) => u.root.querySelectorAll('.u-legend .u-series').forEach((row, i) => {
          if (i > 0 && (i - 1) % 3 !== 0) row.style.display = 'none';
        })],
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const a = u.posToVal(u.select.left, 'x');
          const b = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          zoom = [a * 1e9, b * 1e9];
          changed();
        }],
      },
    }, data, chartBox);
  };

  // The y range of a unit: the data and that unit's limit lines, so the levels are always in view.
  function rangeWithLimits(unit, lo, hi) {
    const values = lines.filter((l) => l.scale === unit).map((l) => l.value);
    if (lo === null || lo === undefined || !Number.isFinite(lo)) return values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
    let min = Math.min(lo, ...values);
    let max = Math.max(hi, ...values);
    if (max === min) {
      min -= 1;
      max += 1;
    }
    const pad = (max - min) * 0.04;
    return [min - pad, max + pad];
  }

  // Limit lines across the plot on their series' scale; event markers as thin vertical lines with a
  // coloured tick at the top (hover the chart's legend time to read them in the Events tab).
  function drawOverlays(u) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const l of lines) {
      const sc = u.scales[l.scale];
      if (!sc || sc.min === undefined || l.value < sc.min || l.value > sc.max) continue;
      const y = Math.round(u.valToPos(l.value, l.scale, true)) + 0.5;
      ctx.strokeStyle = LIMIT_COLOURS[l.level];
      ctx.lineWidth = l.level === 'dangerous' ? 2 : 1.5;
      ctx.setLineDash(l.level === 'dangerous' ? [8, 4] : [4, 4]);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = LIMIT_COLOURS[l.level];
      ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'bottom';
      ctx.fillText(`${l.level} ${l.side} ${l.value} ${l.scale === '-' ? '' : l.scale}`, left + 6 * devicePixelRatio, y - 3 * devicePixelRatio);
    }
    for (const m of markers) {
      if (m.t < u.scales.x.min || m.t > u.scales.x.max) continue;
      const x = Math.round(u.valToPos(m.t, 'x', true)) + 0.5;
      ctx.strokeStyle = `${MARKER_COLOURS[m.kind]}66`;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.fillStyle = MARKER_COLOURS[m.kind];
      ctx.beginPath();
      ctx.moveTo(x - 5 * devicePixelRatio, top);
      ctx.lineTo(x + 5 * devicePixelRatio, top);
      ctx.lineTo(x, top + 8 * devicePixelRatio);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  }

  const renderNote = () => {
    chartBox.dataset.limitLines = String(lines.length);
    chartBox.dataset.markers = String(markers.length);
    const kinds = [...new Set(markers.map((m) => m.kind))];
    replace(chartNote,
      lines.length ? [...new Set(lines.map((l) => l.level))].map((level) =>
        h('span', {}, h('i', { style: { borderColor: LIMIT_COLOURS[level] } }), `${level} level (edge configuration)`)) : null,
      !limits && selected.length ? h('span', {}, 'no limits known (the edge has not reported its configuration)') : null,
      kinds.map((k) => h('span', {}, h('i', { style: { borderColor: MARKER_COLOURS[k], borderTopStyle: 'solid' } }), `${k} events`)),
      markers.length ? h('span', { title: markers.slice(-20).map((m) => `${formatTime(m.t * 1e9)} ${m.text}`).join('\n') }, `${markers.length} event markers`) : null);
  };

  async function load() {
    if (!selected.length) {
      plot?.destroy();
      plot = null;
      replace(chartBox, h('p', { class: 'muted' }, 'Pick a channel.'));
      status.textContent = '';
      return;
    }
    const ticket = ++loading;
    const to = zoom ? zoom[1] : Date.now() * NS_PER_MS;
    const from = zoom ? zoom[0] : to - rangeS * 1e9;
    const points = Math.min(2000, Math.max(200, Math.round(chartBox.clientWidth || 800)));
    status.textContent = 'loading…';
    try {
      const [answers, evs] = await Promise.all([
        Promise.all(selected.map((c) => api.series(id, c, from, to, points))),
        api.events(id, { from, to, limit: 500 }).catch(() => ({ events: [] })),
      ]);
      if (ticket !== loading) return;
      // State changes drawn last: on top of the limit and action events at the same instant.
      const order = (k) => (k === 'state' ? 1 : 0);
      markers = (evs.events ?? []).filter((e) => MARKER_KINDS.has(e.kind)).map((e) => ({ t: e.t / 1e9, kind: e.kind, text: eventSummary(e) }))
        .sort((a, b) => order(a.kind) - order(b.kind));
      lines = answers.flatMap((a) => limitLines(limits, a.channel).map((l) => ({ ...l, scale: a.unit || '-', channel: a.channel })));
      // One line per level and value (several cells share the same limits).
      lines = lines.filter((l, i) => lines.findIndex((k) => k.scale === l.scale && k.value === l.value) === i);
      renderNote();
      const cols = seriesToColumns(answers, { bands: true });
      if (cols[0].length === 0) {
        plot?.destroy();
        plot = null;
        replace(chartBox, h('p', { class: 'muted' }, 'No data in this range.'));
      } else if (plot && plot.series.length === 1 + answers.length * 3 && plot.series[1].label === answers[0].channel) {
        plot.setData(cols);
        plot.redraw(false, false);
      } else {
        replace(chartBox);
        build(answers, cols);
      }
      const n = answers.reduce((s, a) => s + (a.points?.length ?? a.buckets?.length ?? 0), 0);
      const ds = answers.some((a) => a.downsampled);
      status.textContent = `${n.toLocaleString('en')} ${ds ? 'buckets' : 'points'}${ds ? ` of ${formatBucket(answers.find((a) => a.downsampled).bucket_ns)}` : ''}`;
    } catch (e) {
      if (ticket === loading) status.textContent = e.message;
    }
  }
  const formatBucket = (ns) => (ns >= 60e9 ? `${(ns / 60e9).toFixed(1)} min` : `${(ns / 1e9).toFixed(ns < 10e9 ? 1 : 0)} s`);

  const timer = setInterval(() => { if (follow && !zoom && document.visibilityState === 'visible') load(); }, 5000);
  const resize = new ResizeObserver(() => plot?.setSize({ width: Math.max(300, chartBox.clientWidth), height: 380 }));
  resize.observe(chartBox);
  onDestroy(() => {
    clearInterval(timer);
    resize.disconnect();
    plot?.destroy();
  });
  changed();
}
