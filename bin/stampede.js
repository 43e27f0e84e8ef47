#!/usr/bin/env -S node --max-old-space-size=1024
// Entry point for `npm start` and `npx stampede`. TypeScript runs through tsx's loader so a
// fresh clone needs no build step; node:cluster workers re-run this file and register it again.
// --max-old-space-size=1024 (here and in package.json's scripts; cluster workers inherit it) keeps
// V8 collecting before a bulk job's heap grows far past what is live: docs/decisions/133-node-heap-limit.md.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
await main(process.argv.slice(2));
