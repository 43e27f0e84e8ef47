// Root in a private home: the embedded PostgreSQL runs as the `postgres` user, who cannot enter a
// 0700 folder. `stampede serve` must then serve anyway (PostgreSQL's files kept in /var/tmp) or,
// where nothing sensible can be moved, exit 2 with one line that says what to do. Needs root.
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { spawnStampede } from '../harness/spawn-stampede.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('root-private-home.test.ts: skipped, it needs to run as root');

describe.skipIf(!isRoot)('stampede serve as root in a 0700 home', () => {
  const cleanup: string[] = [];
  afterAll(async () => { for (const dir of cleanup) await rm(dir, { recursive: true, force: true }); });

  const privateHome = async () => {
    const top = await mkdtemp(path.join(os.tmpdir(), 'stampede-root-'));
    cleanup.push(top);
    const home = path.join(top, 'home');
    await mkdir(home, { mode: 0o700 });
    await chmod(home, 0o700);
    return { top, home };
  };

  it('serves with the data directory inside the private home, and restarts on the same data', async () => {
    const { top, home } = await privateHome();
    const dataDir = path.join(home, 'data');
    const port = await freePort();
    // HOME is the private folder; the working directory is elsewhere.
    const env = { HOME: home, STAMPEDE_DATA_DIR: dataDir, PORT: String(port) };

    const first = spawnStampede(['serve'], env, { cwd: top });
    try {
      await first.waitForOutput(/Stampede is running at/, 90_000);
      expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
    } finally {
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
    }
    const pgDir = (await readFile(path.join(dataDir, 'pg-location'), 'utf8')).trim();
    cleanup.push(path.dirname(pgDir));
    expect(pgDir).toMatch(/^\/var\/tmp\/stampede-0\/[0-9a-f]{16}\/pg$/);

    const second = spawnStampede(['serve'], env, { cwd: top });
    try {
      await second.waitForOutput(/Server listening/, 90_000);
      expect(second.output()).not.toMatch(/initialising embedded PostgreSQL/);
      expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  }, 240_000);

  it('exits 2 with one line, no stack, when PostgreSQL could not create its socket (TMPDIR in the private home)', async () => {
    const { top, home } = await privateHome();
    const tmp = path.join(home, 'tmp');
    await mkdir(tmp);
    const serve = spawnStampede(['serve'], { HOME: home, TMPDIR: tmp, STAMPEDE_DATA_DIR: path.join(top, 'data'), PORT: '0' }, { cwd: top });
    expect(await serve.exited).toBe(2);
    expect(serve.stderr().trim().split('\n')).toEqual([expect.stringMatching(/"postgres" user, who cannot create its socket in .*: set TMPDIR=\/tmp/)]);
    expect(serve.output()).not.toMatch(/\n\s+at /);
  }, 60_000);
});
