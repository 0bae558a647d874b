// The event log of one edge, filtered by kind, newest first; new events arrive from the stream.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { eventSummary, formatTime, newestFirst } from '../model.js';

export const EVENT_KINDS = ['state', 'action', 'limit', 'operator', 'schedule', 'link', 'module', 'config'];

export function eventRow(ev) {
  const level = ev.event?.reason?.level ?? (ev.kind === 'state' ? ev.event?.to : '');
  return h('tr', { class: `ev ev-${ev.kind} ${level ? `lvl-row-${level}` : ''}` },
    h('td', { class: 'ev-time' }, formatTime(ev.t)),
    h('td', {}, h('span', { class: `kind kind-${ev.kind}` }, ev.kind)),
    h('td', { class: 'ev-text' }, eventSummary(ev)));
}

export function eventsTab(root, id, on) {
  let kind = new URLSearchParams(location.search).get('kind') ?? '';
  let events = [];
  const table = h('tbody');
  const count = h('span', { class: 'muted' });
  const select = h('select', { id: 'event-kind', onchange: () => {
    kind = select.value;
    history.replaceState(null, '', kind ? `?kind=${kind}` : location.pathname);
    load();
  } }, h('option', { value: '' }, 'all kinds'), EVENT_KINDS.map((k) => h('option', { value: k, selected: k === kind }, k)));
  root.append(h('section', { class: 'card panel' },
    h('div', { class: 'panel-head' }, h('h2', {}, 'Event log'), h('label', { class: 'inline' }, 'kind ', select), count),
    h('table', { class: 'events events-full' }, h('thead', {}, h('tr', {}, h('th', {}, 'time'), h('th', {}, 'kind'), h('th', {}, 'event'))), table)));
  const render = () => {
    const shown = newestFirst(events.filter((e) => !kind || e.kind === kind));
    count.textContent = `${shown.length} event${shown.length === 1 ? '' : 's'}`;
    replace(table, shown.length ? shown.map(eventRow) : h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No events.')));
  };
  const load = () => api.events(id, { limit: 1000, kind: kind || undefined }).then((a) => {
    events = a.events ?? [];
    render();
  }).catch((e) => replace(table, h('tr', {}, h('td', { colspan: 3, class: 'form-error' }, e.message))));
  load();
  on('event', (ev) => {
    if (!ev) return;
    events.push(ev);
    render();
  });
}
