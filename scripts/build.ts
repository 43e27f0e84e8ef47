// `npm run build`: compiles src/ to ESM JavaScript in dist/ (tsconfig.build.json; `.ts` import
// paths rewritten to `.js`) and copies beside it the files src/ reads by path next to its modules
// (the Lua scripts, the console's static files). dist/ mirrors src/, so ../package.json and ../../migrations/ resolve as before.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = path.join(ROOT, 'src');
const DIST = path.join(ROOT, 'dist');
/** Files that are neither compiled nor tests: read at run time relative to import.meta.url. */
const isAsset = (relative: string) => relative.endsWith('.lua') || relative.startsWith(`console${path.sep}public${path.sep}`);

rmSync(DIST, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
let copied = 0;
for (const entry of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
  const from = path.join(entry.parentPath, entry.name);
  if (!entry.isFile() || !isAsset(path.relative(SRC, from))) continue;
  cpSync(from, path.join(DIST, path.relative(SRC, from)));
  copied += 1;
}
for (const needed of ['cli.js', 'console/public/index.html']) {
  if (!existsSync(path.join(DIST, needed))) throw new Error(`build: dist/${needed} missing`);
}
process.stdout.write(`dist/ built: ${copied} files copied (Lua scripts, console)\n`);
