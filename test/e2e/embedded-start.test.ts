// `npm start` with no configuration: embedded PostgreSQL, generated admin token, the curl
// walk-through of the README, graceful stop, and a second start that reuses the data.
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { spawnStampede, STAMPEDE_COMMAND } from '../harness/spawn-stampede.ts';
import { createStampedeClient, expectData, templateDraft } from '../harness/api-client.ts';

describe('stampede serve with no configuration', () => {
  const dirs: string[] = [];
  afterAll(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }); });

  it('gets the same node flags from npm start, npm run stampede, npx stampede (the shebang), the harness and the image', () => {
    const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    const flagsOf = (command: string) => command.split(/\s+/).filter((word) => word.startsWith('--'));
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const shebang = read('bin/stampede.js').split('\n')[0]!;
    expect(flagsOf(scripts.start!)).toEqual(['--max-old-space-size=1024', '--max-semi-space-size=32', '--no-allocation-site-pretenuring']);
    expect(flagsOf(scripts.stampede!)).toEqual(flagsOf(scripts.start!));
    expect(flagsOf(shebang)).toEqual(flagsOf(scripts.start!));
    expect(STAMPEDE_COMMAND.slice(0, -1)).toEqual(flagsOf(scripts.start!));
    // The image's entrypoint (tini's own "--" aside).
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))![1]!) as string[];
    expect(entrypoint.filter((word) => word.startsWith('--') && word !== '--')).toEqual(flagsOf(scripts.start!));
  });

  it('starts on embedded PostgreSQL, serves the walk-through, stops cleanly and restarts on the same data', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-e2e-'));
    dirs.push(dataDir);
    const port = await freePort();
    const env = { STAMPEDE_DATA_DIR: dataDir, PORT: String(port) }; // no HOST: embedded mode binds 127.0.0.1 by default
    const base = `http://127.0.0.1:${port}`;

    const first = spawnStampede(['serve'], env);
    await first.waitForOutput(/Server listening/, 90_000);
    // The first start says where it listens and where the token is, never the token itself.
    const tokenFile = path.join(dataDir, 'admin-token');
    await first.waitForOutput(/Next: +npx stampede partner create/, 10_000);
    expect(first.output()).toContain(`Stampede is running at ${base}`);
    expect(first.output()).toContain(`Admin token:     in ${tokenFile}`);
    const adminToken = readFileSync(tokenFile, 'utf8').trim();
    expect(adminToken.length).toBeGreaterThanOrEqual(32);
    expect(first.output()).not.toContain(adminToken);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);

    const partner = expectData(await createStampedeClient({ baseUrl: base, adminToken }).POST('/v1/partners', { body: { name: 'Acme' } }));
    const api = createStampedeClient({ baseUrl: base, apiKey: partner.apiKey });
    const created = await api.POST('/v1/coupon-templates', { body: templateDraft() });
    expect(created.response.status).toBe(201);
    const template = expectData(created);

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = spawnStampede(['serve'], env);
    try {
      await second.waitForOutput(/Server listening/, 90_000);
      expect(second.output()).not.toMatch(/Stampede is running at/);
      const read = await api.GET('/v1/coupon-templates/{id}', { params: { path: { id: template.id } } });
      expect(read.response.status).toBe(200);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  }, 180_000);

  it('refuses to start with a clear list of every bad setting', async () => {
    const bad = spawnStampede(['serve'], { PORT: 'eighty', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/PORT/);
    expect(bad.output()).toMatch(/LOG_LEVEL/);
    expect(bad.output()).toMatch(/DATABASE_URL/);
  });
});
