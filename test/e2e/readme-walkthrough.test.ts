// The README's walk-through, run as it is written: the shell block between the walkthrough
// markers is extracted literally and run with bash against a real `stampede serve`, so the
// README cannot drift from the API or the CLI.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { ROOT, runWalkthrough, walkthroughBlock, WALKTHROUGH_RESULTS } from '../harness/readme-walkthrough.ts';
import { spawnStampede } from '../harness/spawn-stampede.ts';

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
      const { code, stdout, stderr } = await runWalkthrough({ STAMPEDE_URL: `http://127.0.0.1:${port}`, STAMPEDE_DATA_DIR: dataDir });
      expect({ code, stderr }).toMatchObject({ code: 0 });
      for (const result of WALKTHROUGH_RESULTS) expect(stdout).toMatch(result);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  }, 240_000);
});
