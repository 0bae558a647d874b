// Downloads of stored data (/export): CSV in the rig's layout or JSON lines, for a time range.
import { h, replace } from '../dom.js';
import { exportUrl, NS_PER_MS } from '../model.js';

const toLocalInput = (ms) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
};

export function exportTab(root, id) {
  const now = Date.now();
  const from = h('input', { type: 'datetime-local', value: toLocalInput(now - 3600_000), step: 60 });
  const to = h('input', { type: 'datetime-local', value: toLocalInput(now), step: 60 });
  const format = h('select', {}, h('option', { value: 'csv' }, 'CSV (rig layout)'), h('option', { value: 'jsonl' }, 'JSON lines'));
  const interval = h('input', { type: 'number', min: 0.1, step: 0.1, value: 1, class: 'narrow' });
  const converted = h('input', { type: 'checkbox', id: 'export-converted' });
  const extra = h('input', { type: 'checkbox', id: 'export-extra' });
  const link = h('a', { class: 'button primary', id: 'export-link', download: '' }, 'Download');
  const error = h('p', { class: 'form-error' });
  const update = () => {
    const f = new Date(from.value).getTime();
    const t = new Date(to.value).getTime();
    error.textContent = '';
    if (!(t > f)) {
      error.textContent = '"to" must be after "from".';
      link.removeAttribute('href');
      return;
    }
    link.href = exportUrl(id, f * NS_PER_MS, t * NS_PER_MS, format.value, Number(interval.value) || 1,
                          { boardConverted: converted.checked, extraColumns: extra.checked });
  };
  for (const el of [from, to, format, interval, converted, extra]) el.addEventListener('input', update);
  const quick = h('div', { class: 'quick' }, 'Quick: ', [['last hour', 3600e3], ['last 24 h', 86400e3], ['last 7 days', 7 * 86400e3]].map(([label, span]) =>
    [h('a', { href: exportUrl(id, (now - span) * NS_PER_MS, now * NS_PER_MS, 'csv', 1), download: '' }, `${label} (CSV)`), ' ']));
  root.append(h('section', { class: 'card panel export' }, h('h2', {}, 'Export'),
    h('div', { class: 'form-row' }, h('label', {}, 'from', from), h('label', {}, 'to', to), h('label', {}, 'format', format),
      h('label', {}, 'interval (s, CSV)', interval), link),
    h('div', { class: 'form-row options' },
      h('label', { class: 'inline' }, converted, ' board in °C / bar (default: raw ADC counts, as the rig logged them)'),
      h('label', { class: 'inline' }, extra, ' extra columns (CurrentState)')),
    error, quick,
    h('p', { class: 'muted small' }, 'CSV files have the rig\'s columns in its order with CRLF line ends (one row per interval); JSON lines hold every sample.')));
  update();
  return { destroy() { replace(root); } };
}
