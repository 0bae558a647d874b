// All edges with their state: colour, since when, reasons, link and data counters. Live from the
// stream's `edges` events (every second).
import { api, openStream } from '../api.js';
import { h, replace } from '../dom.js';
import { formatAge, formatTime, reasonText, stateName, NS_PER_MS } from '../model.js';
import { setConnection } from '../status.js';

export function stateBadge(state) {
  const s = stateName(state);
  return h('span', { class: `badge state-${s}` }, s.toUpperCase());
}

export function overviewPage(root, navigate) {
  const list = h('div', { class: 'edge-list' }, h('p', { class: 'muted' }, 'Loading edges…'));
  const summary = h('p', { class: 'muted' });
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Edges'), summary), list);

  const show = (answer) => {
    const edges = answer?.edges ?? [];
    const now = Date.now() * NS_PER_MS;
    const connected = edges.filter((e) => e.connected).length;
    summary.textContent = `${edges.length} edge${edges.length === 1 ? '' : 's'}, ${connected} connected`;
    if (edges.length === 0) {
      replace(list, h('p', { class: 'muted' }, 'No edge has connected yet.'));
      return;
    }
    replace(list, edges.map((e) => {
      const s = stateName(e.state);
      return h('a', { class: `card edge-card state-edge-${s}`, href: `/edges/${encodeURIComponent(e.id)}`, 'data-link': true,
                      'data-edge': e.id },
        h('div', { class: 'edge-card-head' }, h('span', { class: 'edge-name' }, e.id), stateBadge(s)),
        h('div', { class: 'edge-card-since' },
          e.state_since_ns ? `since ${formatTime(e.state_since_ns)} (${formatAge((now - e.state_since_ns) / NS_PER_MS)})` : ''),
        e.reasons?.length
          ? h('ul', { class: 'reasons' }, e.reasons.map((r) => h('li', { class: `reason-${r.level}` }, reasonText(r))))
          : h('div', { class: 'muted small' }, s === 'normal' ? 'no active limit' : ''),
        h('dl', { class: 'facts' },
          h('dt', {}, 'link'), h('dd', {}, e.connected ? h('span', { class: 'ok' }, `connected ${e.peer ?? ''}`)
                                                          : h('span', { class: 'bad' }, 'offline')),
          h('dt', {}, 'last seen'), h('dd', {}, e.last_seen_ns ? `${formatAge((now - e.last_seen_ns) / NS_PER_MS)} ago` : '—'),
          h('dt', {}, 'samples'), h('dd', {}, (e.samples ?? 0).toLocaleString('en')),
          h('dt', {}, 'backlog'), h('dd', {}, `${e.backlog_batches ?? 0} batches`),
          e.lost_records ? [h('dt', {}, 'lost'), h('dd', { class: 'bad' }, String(e.lost_records))] : null,
          e.last_error ? [h('dt', {}, 'last error'), h('dd', { class: 'muted' }, e.last_error)] : null));
    }));
  };

  api.edges().then(show).catch((e) => e.status !== 401 && replace(list, h('p', { class: 'form-error' }, e.message)));
  const close = openStream(null, { edges: show }, (up) => setConnection(up));
  return { destroy: close };
}
