// The operator console at /console (docs/console.md): static files only, no build step. The page
// and its script come from ./public; Preact, htm and uPlot from node_modules, as the ESM files
// their packages ship, so the console works offline (no CDN). It calls the public API with the
// partner's key like any client; these routes need no key.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

const PUBLIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public');
const require = createRequire(import.meta.url);
const packageDir = (entry: string) => path.dirname(require.resolve(entry));

/** Served under /console/vendor/<name>/: the files index.html names, nothing else of those packages. */
const VENDOR: ReadonlyArray<{ name: string; dir: string; files: readonly string[] }> = [
  { name: 'preact', dir: packageDir('preact'), files: ['preact.mjs'] },
  { name: 'preact-hooks', dir: packageDir('preact/hooks'), files: ['hooks.mjs'] },
  { name: 'htm', dir: packageDir('htm'), files: ['htm.mjs'] },
  { name: 'uplot', dir: packageDir('uplot'), files: ['uPlot.esm.js', 'uPlot.min.css'] },
];

export function consoleRoutes(): FastifyPluginAsync {
  const page = readFileSync(path.join(PUBLIC_DIR, 'index.html'), 'utf8');
  // The import map must be inline; its hash lets it run under a CSP that allows no other inline script.
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(page)?.[1] ?? '';
  const importMapHash = createHash('sha256').update(importMap).digest('base64');
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'sha256-${importMapHash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');

  return async (app) => {
    const sendPage = async (_request: unknown, reply: import('fastify').FastifyReply) => reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', csp)
      .header('cache-control', 'no-cache')
      .header('referrer-policy', 'no-referrer')
      .header('x-content-type-options', 'nosniff')
      .send(page);
    app.get('/console', { schema: { hide: true } }, sendPage);
    app.get('/console/', { schema: { hide: true } }, sendPage);

    await app.register(fastifyStatic, {
      root: PUBLIC_DIR,
      prefix: '/console/assets/',
      decorateReply: false,
      index: false,
      allowedPath: (pathname) => pathname !== '/index.html',
    });
    for (const { name, dir, files } of VENDOR) {
      await app.register(fastifyStatic, {
        root: dir,
        prefix: `/console/vendor/${name}/`,
        decorateReply: false,
        index: false,
        allowedPath: (pathname) => files.some((file) => pathname === `/${file}`),
      });
    }
  };
}
