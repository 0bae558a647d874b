// Builds the static dashboard. `CELLGUARD_WEB_OUT` (set by CMake) puts it in build/web/dist;
// `npm run dev` proxies the API to CELLGUARD_API (default: the mock server, `npm run mock`).
import { defineConfig } from 'vite';

const api = process.env.CELLGUARD_API ?? 'http://127.0.0.1:8090';
export default defineConfig({
  base: '/',
  build: {
    outDir: process.env.CELLGUARD_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  server: { proxy: { '/api': { target: api, changeOrigin: false }, '/metrics': api } },
  test: { include: ['test/**/*.test.js'], environment: 'node', testTimeout: 15000 },
});
