// SIGTERM while a request cannot finish: `serve` drains for STAMPEDE_SHUTDOWN_TIMEOUT_MS, then
// exits 1 on its own, saying so. The request is a points earn whose wallet the test holds locked
// (a competing transaction), so the drain can only end by the forced exit.
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';
import { ADMIN_TOKEN, createTestApp, type TestApp } from '../harness/test-app.ts';
import { waitFor } from '../harness/wait-for.ts';

describe('forced exit after the shutdown budget', () => {
  let t: TestApp | undefined;
  let server: StampedeProcess | undefined;
  afterAll(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    await t?.close();
  });

  it('exits 1 once STAMPEDE_SHUTDOWN_TIMEOUT_MS has passed with a request still in flight', async () => {
    t = await createTestApp();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = spawnStampede(['serve'], {
      DATABASE_URL: inject('databaseUrl'), STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN, PORT: String(port), HOST: '127.0.0.1',
      STAMPEDE_WORKERS: 'off', STAMPEDE_SHUTDOWN_TIMEOUT_MS: '2000', LOG_LEVEL: 'info',
    });
    await waitFor(() => fetch(`${base}/health/ready`).then((r) => r.ok, () => false), { timeoutMs: 90_000, what: 'serve ready', intervalMs: 100 });
    const created = await fetch(`${base}/v1/partners`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: `forced-${port}` }),
    }).then((r) => r.json() as Promise<{ id: string; apiKey: string }>);
    const earn = (key: string) => fetch(`${base}/v1/points/earn`, {
      method: 'POST', headers: { 'x-api-key': created.apiKey, 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify({ userId: 'held', amount: 1 }),
    });
    expect((await earn('first')).status).toBe(201);

    const holder = await t.ctx.db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM point_wallets WHERE partner_id = $1 AND user_id = 'held' FOR UPDATE`, [created.id]);
      const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const stuck = earn('stuck').then((r) => r.status, () => 'cut off');
      await waitFor(async () => (await t!.ctx.db.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [pid])).rows.length > 0,
        { what: 'the earn waiting for the held wallet' });
      server.child.kill('SIGTERM');
      // The drain cannot end while the wallet is held; only the budget ends it (the deadline here
      // is far longer than the budget, and shorter than the lock is held: until this test ends).
      const exit = await Promise.race([server.exited, new Promise<string>((resolve) => { setTimeout(() => resolve('still running'), 45_000).unref(); })]);
      expect(exit).toBe(1);
      expect(server.output()).toMatch(/graceful shutdown timed out/);
      expect(await stuck).toBe('cut off');
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
  }, 180_000);
});
