#!/usr/bin/env node
// Entry point for `npm start` and `npx stampede`. TypeScript runs through tsx's loader so a
// fresh clone needs no build step; node:cluster workers re-run this file and register it again.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
await main(process.argv.slice(2));
