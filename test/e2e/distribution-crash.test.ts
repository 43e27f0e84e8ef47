// A distribution survives SIGKILL of the process running it: after a restart the job resumes at
// its first uncommitted chunk and every listed user ends with exactly one coupon.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { isAlive, spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';
import { waitFor } from '../harness/wait-for.ts';
import { createStampedeClient, expectData, templateDraft } from '../harness/api-client.ts';

const ADMIN = 'crash-test-admin-token-0123456789';
const USERS = 150_000;

describe('distribution after a crash', () => {
  let dataDir: string;
  const processes: StampedeProcess[] = [];
  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    // The embedded PostgreSQL outlives a killed stampede; stop the one this test started.
    const pid = Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0) { try { process.kill(pid, 'SIGINT'); } catch { /* already gone */ } }
    await waitFor(() => !(pid > 0 && isAlive(pid)), { what: 'the embedded PostgreSQL to stop' }).catch(() => undefined); // then its files go
    await rm(dataDir, { recursive: true, force: true });
  });

  it('finishes the job after SIGKILL and a restart, with exactly one coupon per user', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-crash-'));
    const port = await freePort();
    const env = { STAMPEDE_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', STAMPEDE_ADMIN_TOKEN: ADMIN };
    const base = `http://127.0.0.1:${port}`;
    const start = async () => {
      const p = spawnStampede(['serve'], env);
      processes.push(p);
      await p.waitForOutput(/Server listening/, 120_000);
      return p;
    };

    const first = await start();
    const { apiKey } = expectData(await createStampedeClient({ baseUrl: base, adminToken: ADMIN }).POST('/v1/partners', { body: { name: 'Crash' } }));
    const api = createStampedeClient({ baseUrl: base, apiKey });
    const template = expectData(await api.POST('/v1/coupon-templates', { body: templateDraft({ totalQuantity: null }) }));
    const csv = Array.from({ length: USERS }, (_, i) => `crash-user-${i}`).join('\n');
    const { jobId } = expectData(await api.POST('/v1/coupon-templates/{id}/distributions', {
      params: { path: { id: template.id } }, body: csv, bodySerializer: (body) => body as string, headers: { 'content-type': 'text/csv' },
    }));
    const job = async () => expectData(await api.GET('/v1/jobs/{id}', { params: { path: { id: jobId } } }));

    await waitFor(async () => (await job()).processed > 0, { what: 'the job to process its first chunk', timeoutMs: 120_000 });
    first.child.kill('SIGKILL');
    await first.exited;

    await start();
    const seenAfterRestart = await job();
    expect(seenAfterRestart.processed).toBeGreaterThan(0);
    expect(seenAfterRestart.processed).toBeLessThan(USERS); // killed mid-job
    const done = await waitFor(async () => {
      const state = await job();
      return state.status === 'SUCCEEDED' && state;
    }, { what: 'the job to succeed after the restart', timeoutMs: 150_000, intervalMs: 250 });
    expect(done).toMatchObject({ processed: USERS, succeeded: USERS, skipped: 0, failed: 0 });

    const password = (await readFile(path.join(dataDir, 'pg-password'), 'utf8')).trim();
    const pgPort = Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[3]);
    const client = new pg.Client({ connectionString: `postgres://postgres:${password}@127.0.0.1:${pgPort}/stampede` });
    await client.connect();
    try {
      const { rows: [stats] } = await client.query(
        `SELECT count(*)::int AS coupons, count(DISTINCT user_id)::int AS users,
                (SELECT issued_count FROM coupon_templates WHERE id = $1) AS issued
           FROM coupons WHERE template_id = $1`, [template.id]);
      expect(stats).toEqual({ coupons: USERS, users: USERS, issued: USERS });
    } finally {
      await client.end();
    }
  }, 400_000);
});
