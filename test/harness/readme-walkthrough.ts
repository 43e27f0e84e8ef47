// The README's walk-through block, extracted literally and run with bash (test/e2e/readme-walkthrough
// and test/e2e/image run it, against `npm start` and against the Docker image).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The one shell block between `<!-- walkthrough:start -->` and `<!-- walkthrough:end -->`. */
export function walkthroughBlock(readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')): string {
  const match = readme.match(/<!-- walkthrough:start -->\n```sh\n([\s\S]*?)\n```\n<!-- walkthrough:end -->/);
  if (!match) throw new Error('README.md has no walkthrough block');
  return match[1]!;
}

/** What the block prints when every step did what the README says. */
export const WALKTHROUGH_RESULTS: readonly RegExp[] = [
  /"status": "USED"/, // the redemption
  /"balance": 300/, // 500 earned, 200 used
  /job \S+ SUCCEEDED: 3\/3 processed/,
  /"userId": "u3"[\s\S]*"name": "Welcome 5.00"/,
];

/**
 * Runs the block with bash -eu -o pipefail in the README's own folder (npx stampede resolves this
 * project's bin there); no $HOME config of the developer's leaks in beyond PATH.
 */
export function runWalkthrough(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const block = walkthroughBlock();
  return new Promise((resolve) => {
    const child = spawn('bash', ['-eu', '-o', 'pipefail', '-c', block], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    child.once('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
  });
}
