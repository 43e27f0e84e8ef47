// The points ledger survives SIGKILL of the server mid-load: a call is answered only once its
// batch (group commit) has committed, so every earn or use acknowledged with 201 is in the ledger,
// nothing is half-written, and after a restart every call, answered or cut off, retried under its
// key applies exactly once.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { checkPointsInvariants } from '../../src/points/invariants.ts';
import { spawnStampede, type StampedeProcess } from '../harness/spawn-stampede.ts';
import { waitFor } from '../harness/wait-for.ts';
import { createPartner, createTestApp, type TestApp } from '../harness/test-app.ts';

const USERS = 20; // few wallets, so calls share batches and wallets
const CLIENTS = 40;

interface Sent {
  readonly key: string;
  readonly path: '/v1/points/earn' | '/v1/points/use';
  readonly body: { userId: string; amount: number };
  status?: number;
  answer?: unknown;
}

describe('points after a crash', () => {
  let t: TestApp;
  const processes: StampedeProcess[] = [];
  beforeAll(async () => { t = await createTestApp(); });
  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await t.close();
  });

  it('loses no acknowledged call and applies every retried key exactly once', async () => {
    const partner = await createPartner(t.app);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const start = async () => {
      const p = spawnStampede(['serve'], {
        DATABASE_URL: inject('databaseUrl'), PORT: String(port), HOST: '127.0.0.1', STAMPEDE_WORKERS: 'off', LOG_LEVEL: 'warn',
      });
      processes.push(p);
      await waitFor(() => fetch(`${base}/health/live`).then((r) => r.ok, () => false), { what: 'serve to be live', timeoutMs: 60_000, intervalMs: 100 })
        .catch((error: Error) => { throw new Error(`${error.message}:\n${p.output()}`); });
      return p;
    };
    const send = async (call: Sent) => {
      const response = await fetch(`${base}${call.path}`, {
        method: 'POST', body: JSON.stringify(call.body),
        headers: { ...partner.headers, 'content-type': 'application/json', 'idempotency-key': call.key },
      });
      return { status: response.status, answer: await response.json() as unknown, replayed: response.headers.get('idempotent-replayed') === 'true' };
    };

    const server = await start();
    const sent: Sent[] = [];
    let stopped = false;
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; !stopped; n++) {
        const use = n % 3 === 2;
        const call: Sent = { key: randomUUID(), path: use ? '/v1/points/use' : '/v1/points/earn', body: { userId: `u-${(c + n) % USERS}`, amount: use ? 3 : 5 } };
        sent.push(call);
        try {
          Object.assign(call, await send(call));
        } catch {
          return; // the server died under this call: its answer never came
        }
      }
    });
    await waitFor(() => sent.filter((call) => call.status === 201).length >= 400, { what: '400 acknowledged calls before the kill', timeoutMs: 120_000, intervalMs: 10 });
    server.child.kill('SIGKILL');
    stopped = true;
    await Promise.all(clients);
    await server.exited;

    // Nothing acknowledged is missing, nothing is half-written: each record has its transaction and vice versa.
    const acknowledged = sent.filter((call) => call.status === 201);
    const { rows } = await t.ctx.db.query<{ key: string; response: unknown; transactions: number }>(
      `SELECT r.idempotency_key AS key, r.response, (SELECT count(*)::int FROM point_transactions x WHERE x.id = r.transaction_id) AS transactions
         FROM point_idempotency r WHERE r.partner_id = $1`, [partner.id]);
    const stored = new Map(rows.map((row) => [row.key, row]));
    for (const call of acknowledged) expect(stored.get(call.key)?.response, call.key).toEqual(call.answer);
    const { rows: [ledger] } = await t.ctx.db.query<{ transactions: number; recorded: number }>(
      `SELECT (SELECT count(*)::int FROM point_transactions WHERE partner_id = $1) AS transactions,
              (SELECT count(*)::int FROM point_idempotency WHERE partner_id = $1 AND transaction_id IS NOT NULL) AS recorded`, [partner.id]);
    expect(ledger!.transactions).toBe(ledger!.recorded); // no EXPIRE here: every transaction is one call's
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: partner.id })).violations).toEqual([]);

    // After a restart, every call retried under its key: acknowledged ones replay their answer, the others apply once.
    await start();
    for (const call of sent) {
      const retried = await send(call);
      if (call.status === 201) expect(retried).toEqual({ status: 201, answer: call.answer, replayed: true });
      else expect([201, 409]).toContain(retried.status); // applied now, or refused for lack of points
    }
    const { rows: [after] } = await t.ctx.db.query<{ transactions: number; keys: number }>(
      `SELECT (SELECT count(*)::int FROM point_transactions WHERE partner_id = $1) AS transactions,
              (SELECT count(*)::int FROM point_idempotency WHERE partner_id = $1) AS keys`, [partner.id]);
    expect(after!.keys).toBe(sent.length);
    expect(after!.transactions).toBe((await t.ctx.db.query(
      'SELECT 1 FROM point_idempotency WHERE partner_id = $1 AND transaction_id IS NOT NULL', [partner.id])).rowCount);
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: partner.id })).violations).toEqual([]);
    console.log(`points crash: ${sent.length} calls sent, ${acknowledged.length} acknowledged before SIGKILL, ${sent.length - acknowledged.length} cut off`);
  });
});
