// The dashboard: a small router over three kinds of page (overview, edge, login) rendered into #app.
// Paths: /  ·  /edges/ID  ·  /edges/ID/history  ·  /edges/ID/events  ·  /edges/ID/export
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { api, onUnauthorized } from './api.js';
import { h, replace } from './dom.js';
import { overviewPage } from './views/overview.js';
import { edgePage } from './views/edge.js';
import { loginPage } from './views/login.js';

const app = document.getElementById('app');
let current = null;  // {destroy()} of the page on screen

export function navigate(path, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, '', path);
  else if (path !== location.pathname + location.search) history.pushState(null, '', path);
  render();
}

function parseRoute(pathname) {
  const m = /^\/edges\/([^/]+)(?:\/(live|history|events|export))?\/?$/.exec(pathname);
  if (m) return { page: 'edge', id: decodeURIComponent(m[1]), tab: m[2] ?? 'live' };
  if (pathname === '/login') return { page: 'login' };
  return { page: 'overview' };
}

function shell(content, route) {
  const nav = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '/', 'data-link': true }, h('span', { class: 'brand-mark' }), 'cellguard'),
    h('nav', {}, h('a', { href: '/', 'data-link': true, class: route.page === 'overview' ? 'active' : '' }, 'Edges'),
      route.page === 'edge' ? h('span', { class: 'crumb' }, '›', h('strong', {}, route.id)) : null),
    h('div', { class: 'topbar-right' },
      h('span', { id: 'conn', class: 'conn', title: 'live stream' }, 'connecting…'),
      h('button', { class: 'link-button', onclick: logout, id: 'logout', hidden: !sessionStorage.getItem('cg-user') },
        `Log out ${sessionStorage.getItem('cg-user') ?? ''}`)));
  return [nav, h('main', { class: 'page' }, content)];
}

async function logout() {
  await api.logout().catch(() => {});
  sessionStorage.removeItem('cg-user');
  navigate('/login');
}

function render() {
  current?.destroy?.();
  current = null;
  const route = parseRoute(location.pathname);
  const content = h('div', { class: 'page-body' });
  if (route.page === 'login') {
    replace(app, h('main', { class: 'page login-page' }, content));
    current = loginPage(content, () => navigate(sessionStorage.getItem('cg-after-login') || '/', { replaceState: true }));
    return;
  }
  replace(app, ...shell(content, route));
  current = route.page === 'edge' ? edgePage(content, route, navigate) : overviewPage(content, navigate);
}

onUnauthorized(() => {
  if (location.pathname === '/login') return;
  sessionStorage.setItem('cg-after-login', location.pathname + location.search);
  navigate('/login', { replaceState: true });
});

// Internal links without reloading the page.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest?.('a[data-link]');
  if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', render);
render();
