// The ledger's retry on deadlocks and serialization failures, driven by PostgreSQL itself: a real
// deadlock between a points transfer and a competing transaction that takes the same two wallets in
// the opposite order, and serialization failures raised by a test-only trigger. The client sees a
// 201 or a catalogued 503, never 40P01, 40001 or a 500.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { pointsClient } from '../../test/harness/points-client.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

let t: TestApp;

beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => t?.close());

async function retriedCount(operation: string): Promise<number> {
  const metric = await t.ctx.metrics.pointsOperations.get();
  return metric.values.filter((v) => v.labels.operation === operation && v.labels.outcome === 'retried').reduce((sum, v) => sum + v.value, 0);
}

async function walletId(partnerId: string, userId: string): Promise<number> {
  const { rows } = await t.ctx.db.query<{ id: number }>(
    `SELECT id FROM point_wallets WHERE partner_id = $1 AND user_id = $2`, [partnerId, userId]);
  return rows[0]!.id;
}

describe('deadlock retry (real PostgreSQL deadlock)', () => {
  it('a transfer chosen as the deadlock victim is retried and answered 201; the total is conserved', async () => {
    const partner = await createPartner(t.app);
    const points = pointsClient(t.app, partner.headers);
    await points.earn({ userId: 'from', amount: 1_000 });
    await points.earn({ userId: 'to', amount: 1_000 });
    const [low, high] = [await walletId(partner.id, 'from'), await walletId(partner.id, 'to')].sort((a, b) => a - b);
    const retriedBefore = await retriedCount('transfer');

    // One round: the competitor holds the higher wallet; the transfer locks the lower one (it locks
    // in ascending id order) and waits for the higher; the competitor then asks for the lower one.
    // Whichever waited longer than deadlock_timeout first is the victim: the transfer, whose check
    // (1 s) fires first, unless the machine was too slow to close the cycle within that second;
    // then the competitor (5 s) is the victim and the round is run again.
    const round = async (n: number): Promise<{ victim: 'transfer' | 'competitor'; answer: Awaited<ReturnType<typeof points.transfer>> }> => {
      const competitor = await t.ctx.db.connect();
      try {
        await competitor.query(`SET deadlock_timeout = '5s'`);
        await competitor.query('BEGIN');
        await competitor.query('SELECT 1 FROM point_wallets WHERE id = $1 FOR UPDATE', [high]);
        const pid = (await competitor.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        const transfer = points.transfer({ fromUserId: 'from', toUserId: 'to', amount: 1 }, `deadlock-${n}-${randomUUID()}`);
        await waitFor(async () => {
          const { rows } = await t.ctx.db.query(`SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, [pid]);
          return rows.length > 0;
        }, { timeoutMs: 30_000, what: 'the transfer waiting for the competitor', intervalMs: 5 });
        let victim: 'transfer' | 'competitor' = 'transfer';
        try {
          await competitor.query('SELECT 1 FROM point_wallets WHERE id = $1 FOR UPDATE', [low]);
        } catch (error) {
          expect((error as { code?: string }).code).toBe('40P01');
          victim = 'competitor';
        }
        await competitor.query('ROLLBACK');
        return { victim, answer: await transfer };
      } finally {
        await competitor.query('RESET deadlock_timeout').catch(() => undefined);
        competitor.release();
      }
    };

    let transfers = 0;
    let outcome: Awaited<ReturnType<typeof round>>;
    const deadline = Date.now() + 45_000;
    do {
      outcome = await round(transfers++);
      // Either way the client sees the transfer done, never the deadlock.
      expect(outcome.answer.status, JSON.stringify(outcome.answer.body)).toBe(201);
    } while (outcome.victim === 'competitor' && Date.now() < deadline);
    expect(outcome.victim).toBe('transfer');
    expect(await retriedCount('transfer')).toBeGreaterThan(retriedBefore);
    expect((await points.balance('from')).balance).toBe(1_000 - transfers);
    expect((await points.balance('to')).balance).toBe(1_000 + transfers);
  });
});

describe('serialization failures injected at the database', () => {
  // A BEFORE INSERT trigger on point_transactions that raises SQLSTATE 40001 for one partner, as
  // many times as its budget allows: the ledger sees exactly what PostgreSQL sends on a failed
  // serializable commit. Other files' partners are untouched (WHEN clause).
  async function injectFailures(partnerId: string, times: number): Promise<() => Promise<void>> {
    const suffix = partnerId.replaceAll('-', '');
    const budget = `proof_fail_budget_${suffix}`;
    const fn = `proof_fail_${suffix}`;
    const trigger = `proof_fail_${suffix}`;
    await t.ctx.db.query(`CREATE TABLE ${budget} (left_ int NOT NULL)`);
    await t.ctx.db.query(`INSERT INTO ${budget} VALUES ($1)`, [times]);
    await t.ctx.db.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        -- Counted with a sequence: no rollback of the failed transaction undoes nextval.
        IF nextval('${budget}_seq') <= (SELECT left_ FROM ${budget}) THEN
          RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
      END $$`);
    await t.ctx.db.query(`CREATE SEQUENCE ${budget}_seq`);
    await t.ctx.db.query(`CREATE TRIGGER ${trigger} BEFORE INSERT ON point_transactions FOR EACH ROW
      WHEN (NEW.partner_id = '${partnerId}'::uuid) EXECUTE FUNCTION ${fn}()`);
    return async () => {
      await t.ctx.db.query(`DROP TRIGGER IF EXISTS ${trigger} ON point_transactions`);
      await t.ctx.db.query(`DROP FUNCTION IF EXISTS ${fn}()`);
      await t.ctx.db.query(`DROP TABLE IF EXISTS ${budget}`);
      await t.ctx.db.query(`DROP SEQUENCE IF EXISTS ${budget}_seq`);
    };
  }

  it('three failures in a row: the earn is retried and applied once', async () => {
    const partner = await createPartner(t.app);
    const points = pointsClient(t.app, partner.headers);
    const retriedBefore = await retriedCount('earn');
    const remove = await injectFailures(partner.id, 3);
    try {
      const answer = await points.earn({ userId: 'u', amount: 70 });
      expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    } finally {
      await remove();
    }
    expect(await retriedCount('earn') - retriedBefore).toBe(3);
    expect((await points.balance('u')).balance).toBe(70);
  });

  it('failures that never stop: a catalogued 503 SERVICE_UNAVAILABLE, nothing applied, the key free again', async () => {
    const partner = await createPartner(t.app);
    const points = pointsClient(t.app, partner.headers);
    const remove = await injectFailures(partner.id, 1_000);
    let answer;
    try {
      answer = await points.earn({ userId: 'u', amount: 70 }, 'kept-failing');
    } finally {
      await remove();
    }
    expect(answer.status, JSON.stringify(answer.body)).toBe(503);
    expect(answer.body.error.code).toBe('SERVICE_UNAVAILABLE');
    expect(JSON.stringify(answer.body)).not.toMatch(/40001|serializ/i);
    // Nothing was stored under the key: the same request now applies.
    expect((await points.earn({ userId: 'u', amount: 70 }, 'kept-failing')).status).toBe(201);
    expect((await points.balance('u')).balance).toBe(70);
  });
});
