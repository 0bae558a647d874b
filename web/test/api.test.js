// The API client against the development mock server (web/dev/mock-server.mjs) as a real process
// on 127.0.0.1: paths, query strings, errors and the 401 hook.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, ApiError, onUnauthorized, request } from '../src/api.js';

const mockPath = fileURLToPath(new URL('../dev/mock-server.mjs', import.meta.url));

async function startMock(extra = []) {
  const child = spawn(process.execPath, [mockPath, '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buffer = '';
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('mock server not ready in 10 s')), 10000);
    child.stdout.on('data', (d) => {
      buffer += d;
      const line = buffer.split('\n').find((l) => l.includes('"ready"'));
      if (line) { clearTimeout(timer); resolve(JSON.parse(line)); }
    });
    child.on('exit', (code) => reject(new Error(`mock server exited with ${code}`)));
  });
  return { child, base: `http://${ready.http}` };
}

let mock;
let origFetch;
beforeAll(async () => {
  mock = await startMock();
  origFetch = globalThis.fetch;
  // The client uses relative paths as in the browser: resolve them against the mock.
  globalThis.fetch = (path, init) => origFetch(new URL(path, mock.base), init);
});
afterAll(async () => {
  globalThis.fetch = origFetch;
  mock.child.kill('SIGTERM');
  await once(mock.child, 'exit');
});

describe('the API client', () => {
  it('lists edges with their state', async () => {
    const { edges } = await api.edges();
    expect(edges.map((e) => e.id)).toContain('rig');
    expect(edges.find((e) => e.id === 'rig').state).toMatch(/normal|warning|safe|dangerous/);
  });
  it('reads latest values with module numbers', async () => {
    const l = await api.latest('rig');
    expect(l.values['BMU03_pdo3.Cell_5_Voltage'].module).toBe(3);
  });
  it('passes the series query and gets buckets for a long range', async () => {
    const to = Date.now() * 1e6;
    const s = await api.series('rig', 'BMU01_pdo3.Cell_1_Voltage', to - 3600e9, to, 100);
    expect(s.downsampled).toBe(true);
    expect(s.buckets.length).toBeLessThanOrEqual(101);
  });
  it('rejects with the server\'s error message for an unknown channel', async () => {
    await expect(api.series('rig', 'nope', undefined, undefined, 10)).rejects.toThrow(/no channel "nope"/);
  });
});

describe('the login', () => {
  it('fires the 401 hook without a session and succeeds after logging in', async () => {
    const authMock = await startMock(['--auth']);
    const cookies = [];
    globalThis.fetch = async (path, init) => {
      const res = await origFetch(new URL(path, authMock.base), { ...init, headers: { ...(init?.headers ?? {}), cookie: cookies.join('; ') } });
      const set = res.headers.get('set-cookie');
      if (set) cookies.push(set.split(';')[0]);
      return res;
    };
    try {
      let unauthorized = 0;
      onUnauthorized(() => { unauthorized += 1; });
      const err = await api.edges().catch((e) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err.status).toBe(401);
      expect(unauthorized).toBe(1);
      await expect(api.login('demo', 'wrong')).rejects.toMatchObject({ status: 401 });
      expect(unauthorized).toBe(1);  // a failed login is not "logged out"
      await api.login('demo', 'demo');
      expect((await request('/api/v1/edges')).edges.length).toBeGreaterThan(0);
    } finally {
      globalThis.fetch = (path, init) => origFetch(new URL(path, mock.base), init);
      authMock.child.kill('SIGTERM');
      await once(authMock.child, 'exit');
    }
  });
});
