#!/usr/bin/env -S node --max-old-space-size=1024 --max-semi-space-size=32 --no-allocation-site-pretenuring
// Entry point for `npm start` and `npx stampede`. In a checkout (src/ present) TypeScript runs
// through tsx's loader, so a fresh clone needs no build step and a stale dist/ never shadows the
// sources; an install without src/ (the Docker image) runs the compiled dist/ (`npm run build`) on
// plain Node, no loader. node:cluster workers re-run this file and choose the same way.
// Node flags (here, in package.json's scripts and the Dockerfile; cluster workers inherit them):
// --max-old-space-size=1024 keeps V8 collecting before a bulk job's heap grows far past what is
// live (docs/decisions/133-node-heap-limit.md); --max-semi-space-size=32 lets a claim's short-lived
// objects die young instead of being copied by scavenges (docs/decisions/225-young-generation.md);
// --no-allocation-site-pretenuring keeps V8 from moving a request's objects to the old generation,
// which in about half the claim runs turned each second into a major GC (docs/decisions/235).
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
