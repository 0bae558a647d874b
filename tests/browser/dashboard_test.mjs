// Browser test of the dashboard (issue 6 item 5): headless Debian chromium driven by playwright-core.
//
// With a `cellguard server` that serves the HTTP API (--http, --web-root), it starts the real system:
// `cellguard pki init/issue`, `cellguard sim --modules 8`, `cellguard server` over mutual TLS and
// `cellguard edge` streaming to it; opens the dashboard, sees the live cell voltages change, injects a
// cell over-voltage with `cellguard sim ctl ... fault cell_drift` and waits for the state banner to leave
// NORMAL (WARNING, then SAFE). Without such a server (the API not built yet) it runs the same page
// checks against the development mock (web/dev/mock-server.mjs) and says so.
//
// With the real system also (issue 13 item 7): the SAFE banner says whether a reset would be accepted
// now (the cell is still over its limit: refused, naming the cause), the schedule panel says "stopped
// in SAFE", the inverter shows no setpoint while off, CMA_Status as its raw code; the history chart
// draws the configured limits and event markers with 24-hour ISO times; on a 390 px phone the module
// grid scrolls inside its panel; and when the edge falls silent (SIGSTOP: its link stays open) the
// overview says OFFLINE and the live values are greyed with their age within 3 s (the dashboard aims
// at 2 s: stale after 1.5 s by the server's clock).
//
// Saves screenshots in --out. Exits 77 (ctest: skipped) with the reason when chromium, node's
// playwright-core or the built dashboard is missing.
//
//   node tests/browser/dashboard_test.mjs --binary build/src/cli/cellguard --source . \
//        --web-root build/web/dist --out build/tests/browser [--mode auto|real|mock]
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const SKIP = 77;
const argv = process.argv.slice(2);
const arg = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
const source = path.resolve(arg('--source', '.'));
const binary = path.resolve(arg('--binary', 'build/src/cli/cellguard'));
const webRoot = path.resolve(arg('--web-root', 'build/web/dist'));
const outDir = path.resolve(arg('--out', 'build/tests/browser'));
const mode = arg('--mode', 'auto');
const chromiumPath = process.env.CELLGUARD_CHROMIUM ?? '/usr/bin/chromium';

function skip(why) {
  console.log(`SKIPPED: ${why}`);
  process.exit(SKIP);
}
function fail(why) {
  console.error(`FAILED: ${why}`);
  cleanup();
  process.exit(1);
}

if (!fs.existsSync(chromiumPath)) skip(`no chromium at ${chromiumPath} (Debian package chromium; scripts/install-deps.sh installs it)`);
if (!fs.existsSync(path.join(webRoot, 'index.html'))) skip(`the dashboard is not built (${webRoot}/index.html missing: needs Node.js and npm, see cmake/CellguardWeb.cmake)`);
let chromium;
try {
  chromium = createRequire(path.join(source, 'web', 'package.json'))('playwright-core').chromium;
} catch (e) {
  skip(`playwright-core is not installed in web/node_modules (npm ci in web/): ${e.message}`);
}

const children = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cellguard-browser-'));
let browser = null;
function cleanup() {
  for (const c of children.reverse()) {
    if (c.exitCode !== null) continue;
    c.kill('SIGCONT');  // a stopped edge (the offline check) must run to handle SIGTERM
    c.kill('SIGTERM');
  }
}
process.on('exit', cleanup);
process.on('SIGINT', () => { cleanup(); process.exit(130); });
process.on('SIGTERM', () => { cleanup(); process.exit(143); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, timeoutMs = 20000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last.message})` : ''}`);
}

// Starts a process with its stderr in a log file; resolves with the first stdout line that parses as
// JSON with "ready" (the project's readiness signal), or rejects when it exits first.
function start(name, cmd, args, { ready = true, timeoutMs = 20000 } = {}) {
  const log = fs.openSync(path.join(tmp, `${name}.log`), 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', log] });
  children.push(child);
  if (!ready) return Promise.resolve({ child, line: null });
  let buffer = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no ready line in ${timeoutMs} ms; log: ${tail(name)}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      buffer += d;
      for (const l of buffer.split('\n')) {
        try {
          const j = JSON.parse(l);
          if (j.ready) {
            clearTimeout(timer);
            resolve({ child, line: j });
            return;
          }
        } catch { /* not yet a full line */ }
      }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${code}: ${tail(name)}`)); });
  });
}
const tail = (name) => {
  try {
    return fs.readFileSync(path.join(tmp, `${name}.log`), 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
};

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Sets `key = value` in [section] of a TOML text (the first such key after the header).
export function tomlSet(text, section, key, value) {
  const lines = text.split('\n');
  const head = lines.findIndex((l) => l.replace(/\s*#.*$/, '').trim() === `[${section}]`);
  if (head < 0) throw new Error(`no [${section}] in the config`);
  const literal = typeof value === 'string' ? JSON.stringify(value) : String(value);
  for (let i = head + 1; i < lines.length && !/^\s*\[/.test(lines[i]); ++i) {
    if (new RegExp(`^\\s*${key}\\s*=`).test(lines[i])) {
      lines[i] = `${key} = ${literal}`;
      return lines.join('\n');
    }
  }
  lines.splice(head + 1, 0, `${key} = ${literal}`);
  return lines.join('\n');
}

const cg = (...a) => execFileSync(binary, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function serverHasApi() {
  if (!fs.existsSync(binary)) return false;
  try {
    const help = cg('server', '--help');
    return help.includes('--http') && help.includes('--web-root');
  } catch {
    return false;
  }
}

// ---- the system under test ---------------------------------------------------------------------
async function startReal() {
  const pki = path.join(tmp, 'pki');
  cg('pki', 'init', '--dir', pki);
  cg('pki', 'issue', '--dir', pki, '--server', 'server', '--san', '127.0.0.1');
  cg('pki', 'issue', '--dir', pki, '--edge', 'rig-01');
  const sim = await start('sim', binary, ['sim', '--modules', '8', '--initial-soc', '50', '--control', path.join(tmp, 'sim.sock'),
                                          '--board-link', path.join(tmp, 'board'), '--inverter-tcp-port', '0']);
  const ingestPort = await freePort();
  const httpPort = await freePort();
  await start('server', binary, ['server', '--data', path.join(tmp, 'server-data'), '--listen', `127.0.0.1:${ingestPort}`,
                                 '--pki-dir', pki, '--name', 'server', '--http', `127.0.0.1:${httpPort}`, '--web-root', webRoot]);
  let config = fs.readFileSync(path.join(source, 'data/edge/rig.toml'), 'utf8');
  const set = (s, k, v) => { config = tomlSet(config, s, k, v); };
  set('edge', 'id', 'rig-01');
  set('can', 'url', sim.line.can);
  set('can', 'dbc', path.join(source, 'data/cellguard-rig.dbc'));
  set('board', 'device', path.join(tmp, 'board'));
  set('inverter', 'url', `tcp:${sim.line.inverter_tcp}?slave=2`);
  set('schedule', 'file', path.join(source, 'data/edge/schedule-current-example.csv'));
  set('recording', 'path', path.join(tmp, 'edge.sqlite'));
  set('uplink', 'server', `127.0.0.1:${ingestPort}`);
  set('uplink', 'pki_dir', pki);
  set('operator', 'socket', path.join(tmp, 'edge.sock'));
  fs.writeFileSync(path.join(tmp, 'edge.toml'), config);
  const edge = await start('edge', binary, ['edge', '--config', path.join(tmp, 'edge.toml')]);
  const base = `http://127.0.0.1:${httpPort}`;
  await waitFor('the edge on the server', async () => {
    const r = await fetch(`${base}/api/v1/edges`);
    const j = await r.json();
    return j.edges?.some((e) => e.id === 'rig-01' && e.connected);
  }, 30000);
  return {
    base, edge: 'rig-01', edgeProcess: edge.child,
    // 0.1 V/s: WARNING (4.1 V) about 3.5 s after the injection, SAFE (4.2 V) a second later.
    inject: () => cg('sim', 'ctl', '--socket', path.join(tmp, 'sim.sock'), 'fault', 'cell_drift', 'module=3', 'cell=5',
                     'rate_v_per_s=0.1', 'target_v=4.4'),
  };
}

async function startMock() {
  const mock = await start('mock', process.execPath, [path.join(source, 'web/dev/mock-server.mjs'), '--port', '0', '--web-root', webRoot]);
  const base = `http://${mock.line.http}`;
  return {
    base, edge: 'rig',
    inject: () => fetch(`${base}/mock/fault`, { method: 'POST', body: JSON.stringify({ module: 3, cell: 5, rate_v_per_s: 0.05, target_v: 4.4 }) }),
  };
}

// ---- the test ----------------------------------------------------------------------------------
let real = false;
async function main() {
  const began = Date.now();
  fs.mkdirSync(outDir, { recursive: true });
  real = mode === 'real' || (mode === 'auto' && serverHasApi());
  if (mode === 'real' && !serverHasApi()) fail(`${binary} server has no --http/--web-root`);
  console.log(real ? 'system: cellguard sim + edge + server (TLS) with the HTTP API'
                   : 'system: the development mock API (this cellguard server has no --http/--web-root yet)');
  const sys = real ? await startReal() : await startMock();

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cellguard-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath, headless: true, viewport: { width: 1440, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const checks = [];
  const check = (name, ok, detail = '') => {
    checks.push({ name, ok });
    console.log(`${ok ? 'ok  ' : 'FAIL'} [${((Date.now() - began) / 1000).toFixed(1).padStart(5)} s] ${name}${detail ? `: ${detail}` : ''}`);
  };

  try {
    // Overview: the edge is listed with a state.
    await page.goto(`${sys.base}/`);
    const card = page.locator(`[data-edge="${sys.edge}"]`);
    await card.waitFor({ timeout: 15000 });
    check('the overview lists the edge with its state', /NORMAL|WARNING|SAFE|DANGEROUS|UNKNOWN/.test(await card.innerText()));
    await page.screenshot({ path: path.join(outDir, 'overview.png'), fullPage: true });

    // Live page: the module grid fills and its values change within a few seconds.
    await card.click();
    await page.waitForURL(`**/edges/${sys.edge}`);
    const grid = page.locator('#module-grid');
    await grid.waitFor({ timeout: 20000 });
    const modules = await page.locator('#module-grid tbody tr').count();
    check('the module grid shows 8 modules', modules === 8, `${modules} rows`);
    const cells = await page.locator('#module-grid td.cell').count();
    check('each module shows 14 cells', cells === 8 * 14, `${cells} cells`);
    const snapshot = () => page.locator('#module-grid').innerText();
    const first = await snapshot();
    const changed = await waitFor('live values to change', async () => (await snapshot()) !== first, 10000).catch(() => false);
    check('live values change', Boolean(changed));
    const banner = page.locator('#state-banner');
    const before = await banner.getAttribute('data-state');
    // A fresh edge that has not changed state yet may be "unknown" to the server (no state event yet).
    check('the banner shows NORMAL (or not yet known) before the fault', before === 'normal' || before === 'unknown', `state ${before}`);

    // A cell over-voltage: the state leaves NORMAL (warning at 4.1 V), then SAFE (4.2 V).
    sys.inject();
    const t0 = Date.now();
    const warned = await waitFor('the state to leave normal', async () => {
      const s = await banner.getAttribute('data-state');
      return s === 'warning' || s === 'dangerous' || s === 'safe' ? s : null;
    }, 60000).catch(() => null);
    check('a state change appears', warned !== null, `${warned} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await page.screenshot({ path: path.join(outDir, 'live-warning.png'), fullPage: true });
    const safe = await waitFor('SAFE', async () => (await banner.getAttribute('data-state')) === 'safe', 60000).catch(() => false);
    check('the edge trips to SAFE and the banner says so', Boolean(safe), `after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const reasons = await banner.innerText();
    check('the banner gives the reason (cell voltage of module 3 cell 5)', /Cell_5_Voltage|cell 5 of module 3/i.test(reasons), reasons.replace(/\s+/g, ' ').slice(0, 160));
    const hot = await page.locator('[data-cell="3.5"]').innerText();
    check('the heat map shows the drifting cell', Number(hot) >= 4.1, `cell 3.5 = ${hot} V`);
    if (real) {
      // The cell is still at 4.4 V: a reset would be refused now, and the banner says why.
      const reset = await waitFor('the reset verdict', async () => {
        const r = await banner.getAttribute('data-reset');
        return r === 'refused' || r === 'accepted' ? r : null;
      }, 5000).catch(() => 'unknown');
      const verdict = await page.locator('#reset-verdict').innerText().catch(() => '');
      check('the SAFE banner says a reset would be refused now, with the remaining cause', reset === 'refused' && /refused/i.test(verdict)
            && /Cell_5_Voltage|cell 5 of module 3/i.test(verdict), `${reset}: ${verdict.replace(/\s+/g, ' ').slice(0, 200)}`);
      const sched = await page.locator('#schedule-status').innerText();
      check('the schedule panel says stopped in SAFE', /stopped in SAFE/.test(sched), sched.replace(/\s+/g, ' '));
      const inv = await page.locator('#inverter-status').innerText();
      check('the inverter shows no setpoint while off', /mode\s*off/i.test(inv) && !/setpoint/i.test(inv), inv.replace(/\s+/g, ' ').slice(0, 80));
      const status = await page.locator('td.status-code').first().innerText();
      check('CMA_Status is shown as its raw code (no meaning in the DBC or the spec)', /^0x[0-9A-F]{4}$/.test(status), status);
    }
    await page.screenshot({ path: path.join(outDir, 'live-safe.png'), fullPage: true });

    // Events: the state change is in the log.
    await page.locator('.tabs a', { hasText: 'Events' }).click();
    await page.locator('table.events-full tbody tr').first().waitFor({ timeout: 10000 });
    await page.selectOption('#event-kind', 'state');
    const stateRows = await waitFor('state events', async () => {
      const t = await page.locator('table.events-full tbody').innerText();
      return /→ safe/.test(t) ? t : null;
    }, 10000).catch(() => '');
    check('the event log lists the change to SAFE', Boolean(stateRows));
    await page.screenshot({ path: path.join(outDir, 'events.png'), fullPage: true });

    // History: a chart of the drifting cell.
    await page.goto(`${sys.base}/edges/${sys.edge}/history?channels=BMU03_pdo3.Cell_5_Voltage&range=600`);
    const plotted = await page.locator('#history-chart canvas').waitFor({ timeout: 15000 }).then(() => true).catch(() => false);
    check('the history chart draws a series', plotted);
    if (real) {
      const chart = page.locator('#history-chart');
      const lines = Number(await chart.getAttribute('data-limit-lines'));
      const markers = Number(await chart.getAttribute('data-markers'));
      check('the history draws the configured cell limits as lines', lines >= 2, `${lines} lines`);
      check('the history marks the events', markers >= 1, `${markers} markers`);
      const box = await page.locator('#history-chart .u-over').boundingBox();
      await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2);
      const time = (await page.locator('.u-legend .u-series').first().locator('.u-value').innerText()).trim();
      check('history times are 24-hour ISO', /^\d{4}-\d\d-\d\d [0-2]\d:[0-5]\d:[0-5]\d$/.test(time), time);
    }
    await page.screenshot({ path: path.join(outDir, 'history.png'), fullPage: true });

    if (real) {
      // A phone: the module grid scrolls inside its panel, the page itself does not scroll sideways.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${sys.base}/edges/${sys.edge}`);
      await page.locator('#module-grid').waitFor({ timeout: 10000 });
      const widths = await page.evaluate(() => {
        const wrap = document.querySelector('.modules-panel .module-grid-wrap');
        return { page: document.documentElement.scrollWidth, wrap: wrap.clientWidth, grid: wrap.scrollWidth };
      });
      check('on a 390 px phone the module grid scrolls inside its panel', widths.page <= 390 && widths.grid > widths.wrap,
            `page ${widths.page} px, panel ${widths.wrap} px, grid ${widths.grid} px`);
      await page.screenshot({ path: path.join(outDir, 'phone-live.png'), fullPage: false });
      await page.setViewportSize({ width: 1440, height: 900 });

      // The edge falls silent (SIGSTOP: the process hangs, its TLS link stays open): within 3 s the
      // overview says OFFLINE and the live page greys the values with their age.
      await page.locator('#module-grid').waitFor({ timeout: 10000 });
      const overview = await browser.newPage();
      overview.on('pageerror', (e) => errors.push(e.message));
      await overview.goto(`${sys.base}/`);
      const ovCard = overview.locator(`[data-edge="${sys.edge}"]`);
      await waitFor('the edge online', async () => (await ovCard.getAttribute('data-online')) === 'online', 10000);
      const grey = () => page.evaluate(() => {
        const rows = [...document.querySelectorAll('#module-grid tbody tr')];
        return rows.length > 0 && rows.every((r) => r.classList.contains('stale') && / old$/.test(r.querySelector('td.age').textContent));
      });
      check('before: the live values are fresh', !(await grey()) && (await banner.getAttribute('data-online')) === 'online');
      sys.edgeProcess.kill('SIGSTOP');
      const stopped = Date.now();
      const [ovOffline, liveGrey] = await Promise.all([
        waitFor('the overview to say offline', async () => {
          const text = await ovCard.innerText();
          return (await ovCard.getAttribute('data-online')) !== 'online' && /OFFLINE/.test(text) ? (Date.now() - stopped) / 1000 : null;
        }, 6000, 50).catch(() => null),
        waitFor('the live values greyed', async () =>
          (await grey()) && (await banner.getAttribute('data-online')) !== 'online' ? (Date.now() - stopped) / 1000 : null, 6000, 50).catch(() => null),
      ]);
      check('a silent edge: the overview says OFFLINE within 3 s', ovOffline !== null && ovOffline <= 3, `after ${ovOffline ?? '>6'} s`);
      check('a silent edge: the live values are greyed with their age within 3 s', liveGrey !== null && liveGrey <= 3, `after ${liveGrey ?? '>6'} s`);
      const age = await page.locator('#module-grid tbody tr td.age').first().innerText();
      check('the greyed values show their age', / old$/.test(age), age);
      await overview.screenshot({ path: path.join(outDir, 'overview-offline.png') });
      await page.screenshot({ path: path.join(outDir, 'live-offline.png') });
      await overview.close();
      sys.edgeProcess.kill('SIGCONT');
    }
  } catch (e) {
    await page.screenshot({ path: path.join(outDir, 'failure.png'), fullPage: true }).catch(() => {});
    check(`no error while testing (${e.message})`, false);
  }
  check('no script errors on the page', errors.length === 0, errors.slice(0, 3).join(' | '));
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
  cleanup();
  const failed = checks.filter((c) => !c.ok).length;
  console.log(`screenshots in ${outDir}; logs in ${tmp}`);
  console.log(`${checks.length - failed} passed, ${failed} failed in ${((Date.now() - began) / 1000).toFixed(1)} s`);
  if (!failed) fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}

main().catch((e) => fail(e.stack ?? String(e)));
