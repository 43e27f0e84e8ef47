// The README's walk-through, run as it is written: the shell block between the walkthrough
// markers is extracted literally and run with bash against a real `stampede serve`, so the
// README cannot drift from the API or the CLI.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { spawnStampede } from '../harness/spawn-stampede.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The one shell block between `<!-- walkthrough:start -->` and `<!-- walkthrough:end -->`. */
function walkthroughBlock(readme: string): string {
  const match = readme.match(/<!-- walkthrough:start -->\n```sh\n([\s\S]*?)\n```\n<!-- walkthrough:end -->/);
  if (!match) throw new Error('README.md has no walkthrough block');
  return match[1]!;
}

const hasTools = ['bash', 'curl', 'jq'].every((tool) => {
  try { execFileSync('sh', ['-c', `command -v ${tool}`]); return true; } catch { return false; }
});

describe.skipIf(!hasTools && !process.env.CI)('README walk-through', () => {
  const dirs: string[] = [];
  afterAll(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }); });

  it('opens with what Stampede is, then its two commands, then npm test', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const firstBlock = readme.match(/```sh\n([\s\S]*?)```/)![1]!;
    expect(readme.indexOf('Stampede is')).toBeLessThan(readme.indexOf('```'));
    expect(firstBlock.split('\n').filter(Boolean).map((line) => line.split('#')[0]!.trim())).toEqual(['npm install', 'npm start']);
    expect(readme.indexOf('npm test')).toBeLessThan(readme.indexOf('## Walk-through'));
  });

  it('runs from the first line to the last against a started server, and does what it says', async () => {
    const block = walkthroughBlock(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    // Dates come from the shell, so the walk-through never goes stale.
    expect(block).not.toMatch(/"\d{4}-\d{2}-\d{2}T/);
    for (const step of ['partner create', '/claims', '/redeem', '/points/earn', '/points/use', 'text/csv', 'jobs watch']) expect(block).toContain(step);

    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-readme-'));
    dirs.push(dataDir);
    const port = await freePort();
    const server = spawnStampede(['serve'], { STAMPEDE_DATA_DIR: dataDir, PORT: String(port) });
    try {
      await server.waitForOutput(/Stampede is running at/, 90_000);
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        // The README's own folder (npx stampede resolves this project's bin there); no $HOME
        // config of the developer's leaks in beyond PATH.
        const child = spawn('bash', ['-eu', '-o', 'pipefail', '-c', block], {
          cwd: ROOT,
          env: { PATH: process.env.PATH, HOME: process.env.HOME, STAMPEDE_URL: `http://127.0.0.1:${port}`, STAMPEDE_DATA_DIR: dataDir },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
        child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
        child.once('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
      });
      expect({ code, stderr }).toMatchObject({ code: 0 });
      expect(stdout).toMatch(/"status": "USED"/); // the redemption
      expect(stdout).toMatch(/"balance": 300/); // 500 earned, 200 used
      expect(stdout).toMatch(/job \S+ SUCCEEDED: 3\/3 processed/);
      expect(stdout).toMatch(/"userId": "u3"[\s\S]*"name": "Welcome 5.00"/);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  }, 240_000);
});
