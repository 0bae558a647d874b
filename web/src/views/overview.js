// All edges with their state: colour, since when, reasons, link and data counters. Live from the
// stream's `edges` events (every 500 ms); redrawn every 250 ms so an edge that falls silent reads
// OFFLINE within 2 s (ages against the server's clock).
import { api, openStream } from '../api.js';
import { h, replace } from '../dom.js';
import { ageMs, edgeLiveness, formatAge, formatTime, reasonText, serverClock, stateName } from '../model.js';
import { setConnection } from '../status.js';

export function stateBadge(state) {
  const s = stateName(state);
  return h('span', { class: `badge state-${s}` }, s.toUpperCase());
}

export function overviewPage(root, navigate) {
  const list = h('div', { class: 'edge-list' }, h('p', { class: 'muted' }, 'Loading edges…'));
  const summary = h('p', { class: 'muted' });
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Edges'), summary), list);

  let last = null;
  const show = (answer) => {
    if (answer !== last) serverClock.update(answer?.server_time_ns);
    last = answer;
    const edges = answer?.edges ?? [];
    const now = serverClock.nowNs();
    const online = edges.filter((e) => edgeLiveness(e, now).status === 'online').length;
    summary.textContent = `${edges.length} edge${edges.length === 1 ? '' : 's'}, ${online} online`;
    if (edges.length === 0) {
      replace(list, h('p', { class: 'muted' }, 'No edge has connected yet.'));
      return;
    }
    replace(list, edges.map((e) => {
      const s = stateName(e.state);
      const live = edgeLiveness(e, now);
      const offline = live.status !== 'online';
      return h('a', { class: `card edge-card state-edge-${s}${offline ? ' edge-offline' : ''}`, href: `/edges/${encodeURIComponent(e.id)}`,
                      'data-link': true, 'data-edge': e.id, 'data-online': live.status },
        h('div', { class: 'edge-card-head' }, h('span', { class: 'edge-name' }, e.id),
          h('span', {}, offline ? h('span', { class: 'badge offline', title: 'the state below is the last one known' }, 'OFFLINE') : null, ' ', stateBadge(s))),
        h('div', { class: 'edge-card-since' },
          offline ? `${live.status === 'silent' ? 'link open, but no data' : 'link closed'} for ${formatAge(live.age_ms)} · last known state since ${formatTime(e.state_since_ns)}`
                  : e.state_since_ns ? `since ${formatTime(e.state_since_ns)} (${formatAge(ageMs(e.state_since_ns, now))})` : ''),
        e.reasons?.length
          ? h('ul', { class: 'reasons' }, e.reasons.map((r) => h('li', { class: `reason-${r.level}` }, reasonText(r))))
          : h('div', { class: 'muted small' }, s === 'normal' ? 'no active limit' : ''),
        h('dl', { class: 'facts' },
          h('dt', {}, 'link'), h('dd', {}, live.status === 'online' ? h('span', { class: 'ok' }, `connected ${e.peer ?? ''}`)
                                          : h('span', { class: 'bad' }, live.status === 'silent' ? 'offline (connected, silent)' : 'offline')),
          h('dt', {}, 'newest data'), h('dd', { class: offline ? 'bad' : '' }, e.last_value_ns ? `${formatAge(live.age_ms)} ago` : '—'),
          h('dt', {}, 'samples'), h('dd', {}, (e.samples ?? 0).toLocaleString('en')),
          h('dt', {}, 'backlog'), h('dd', {}, `${e.backlog_batches ?? 0} batches`),
          e.lost_records ? [h('dt', {}, 'lost'), h('dd', { class: 'bad' }, String(e.lost_records))] : null,
          e.last_error ? [h('dt', {}, 'last error'), h('dd', { class: 'muted' }, e.last_error)] : null));
    }));
  };

  api.edges().then(show).catch((e) => e.status !== 401 && replace(list, h('p', { class: 'form-error' }, e.message)));
  const close = openStream(null, { edges: show }, (up) => setConnection(up));
  const timer = setInterval(() => last && show(last), 250);
  return { destroy() { close(); clearInterval(timer); } };
}
