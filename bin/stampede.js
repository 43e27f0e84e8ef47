#!/usr/bin/env -S node --max-old-space-size=1024
// Entry point for `npm start` and `npx stampede`. In a checkout (src/ present) TypeScript runs
// through tsx's loader, so a fresh clone needs no build step and a stale dist/ never shadows the
// sources; an install without src/ (the Docker image) runs the compiled dist/ (`npm run build`) on
// plain Node, no loader. node:cluster workers re-run this file and choose the same way.
// --max-old-space-size=1024 (here and in package.json's scripts; cluster workers inherit it): V8
// grows the old generation up to 4x what survived its last full collection when its heap limit is
// 2 GB or more (the default here is ~4 GB), and ~1.6x under a 1 GB limit. A bulk accrual promotes
// every request's items (they live until staged), so its peak RSS was 245-298 MB with the default
// and 188-197 MB with this limit (bench/RESULTS.md, session 6).
import { existsSync } from 'node:fs';

let cli;
if (existsSync(new URL('../src/cli.ts', import.meta.url))) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../src/cli.ts');
} else {
  cli = await import('../dist/cli.js');
}
await cli.main(process.argv.slice(2));
