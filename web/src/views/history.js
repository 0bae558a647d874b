// History charts: pick channels (grouped by module and device), a time range, and uPlot draws the
// downsampled series from /series. Drag across the chart to zoom (the zoomed range is fetched again
// at full resolution); double-click or "Reset zoom" goes back. "Follow" refreshes every 5 s.
import uPlot from 'uplot';
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { groupChannels, seriesToColumns, NS_PER_MS } from '../model.js';

const RANGES = [['10 min', 600], ['1 h', 3600], ['6 h', 6 * 3600], ['24 h', 86400], ['7 d', 7 * 86400]];
const COLOURS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7d8c', '#57606a'];
const DEFAULTS = ['inverter.battery_voltage_v', 'inverter.dc_link_current_a'];

export function historyTab(root, id, channels, onDestroy) {
  const params = new URLSearchParams(location.search);
  const known = new Set(channels.map((c) => c.name));
  let selected = (params.get('channels')?.split(',') ?? DEFAULTS).filter((n) => known.has(n));
  if (!selected.length && channels.length) selected = [channels[0].name];
  let rangeS = Number(params.get('range')) || 3600;
  let zoom = null;  // [from_ns, to_ns] while zoomed
  let follow = true;
  let plot = null;
  let loading = 0;

  const chartBox = h('div', { class: 'chart', id: 'history-chart' });
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
      chips, chartBox,
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
    const axes = [{ stroke: '#57606a', grid: { stroke: '#eaeef2' } }];
    units.slice(0, 2).forEach((u, i) => axes.push({ scale: u, side: i === 0 ? 3 : 1, label: u === '-' ? '' : u, stroke: '#57606a',
                                                   grid: { show: i === 0, stroke: '#eaeef2' }, size: 60 }));
    const width = Math.max(300, chartBox.clientWidth || 800);
    plot = new uPlot({
      width, height: 380, series, axes, bands,
      scales: { x: { time: true } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false }, bind: { dblclick: () => () => { if (zoom) { zoom = null; changed(); } return null; } } },
      hooks: {
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
      const answers = await Promise.all(selected.map((c) => api.series(id, c, from, to, points)));
      if (ticket !== loading) return;
      const cols = seriesToColumns(answers, { bands: true });
      if (cols[0].length === 0) {
        plot?.destroy();
        plot = null;
        replace(chartBox, h('p', { class: 'muted' }, 'No data in this range.'));
      } else if (plot && plot.series.length === 1 + answers.length * 3 && plot.series[1].label === answers[0].channel) {
        plot.setData(cols);
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
