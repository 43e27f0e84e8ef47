// `npm run build`: compiles src/ to ESM JavaScript in dist/ (tsconfig.build.json; `.ts` import
// paths rewritten to `.js`) and copies beside it the files src/ reads by path next to its modules
// (the Lua scripts). dist/ mirrors src/, so ../package.json and ../../migrations/ resolve as before.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = path.join(ROOT, 'src');
const DIST = path.join(ROOT, 'dist');
/** Files that are neither compiled nor tests: read at run time relative to import.meta.url. */
const ASSET = /\.lua$/;

rmSync(DIST, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
let copied = 0;
for (const entry of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !ASSET.test(entry.name)) continue;
  const from = path.join(entry.parentPath, entry.name);
  cpSync(from, path.join(DIST, path.relative(SRC, from)));
  copied += 1;
}
if (!existsSync(path.join(DIST, 'cli.js'))) throw new Error('build: dist/cli.js missing');
process.stdout.write(`dist/ built: ${copied} Lua scripts copied\n`);
