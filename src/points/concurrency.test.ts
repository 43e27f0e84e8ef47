// Concurrency against the real PostgreSQL: many requests at once on the same wallets. The
// invariant checker runs after every scenario.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { pointsClient } from '../../test/harness/points-client.ts';
import { expireDuePoints } from './expiry.ts';
import { checkPointsInvariants } from './invariants.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

let clock = Date.now();
let t: TestApp;
/** A second app on the same database: another API process, as in cluster mode. */
let second: TestApp;
const checked: string[] = [];

beforeAll(async () => {
  t = await createTestApp({ clock: () => new Date(clock) });
  second = await createTestApp({ clock: () => new Date(clock) });
});
afterAll(async () => {
  await second?.close();
  await t?.close();
});
afterEach(async () => {
  for (const partnerId of checked.splice(0)) expect((await checkPointsInvariants(t.ctx.db, { partnerId })).violations).toEqual([]);
});

async function partner() {
  const created = await createPartner(t.app);
  checked.push(created.id);
  return { ...created, points: pointsClient(t.app, created.headers) };
}

const countBy = (values: readonly unknown[]) => values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [String(v)]: (acc[String(v)] ?? 0) + 1 }), {});

describe('concurrent points', () => {
  it('200 concurrent uses on a wallet that covers exactly 100: exactly 100 succeed, balance 0', async () => {
    const { points } = await partner();
    for (let i = 1; i <= 10; i++) await points.earn({ userId: 'hot', amount: 10, expiresInDays: i });
    const answers = await Promise.all(Array.from({ length: 200 }, () => points.use({ userId: 'hot', amount: 1 })));
    expect(countBy(answers.map((a) => a.status === 409 ? a.body.error.code : a.status))).toEqual({ 201: 100, INSUFFICIENT_POINTS: 100 });
    const balances = answers.filter((a) => a.status === 201).map((a) => a.body.balance as number).sort((a, b) => a - b);
    expect(balances).toEqual(Array.from({ length: 100 }, (_, i) => i)); // every intermediate balance seen once, never negative
    expect((await points.balance('hot')).balance).toBe(0);
  });

  it('500 random transfers among 20 users in both directions at once: 0 errors, total conserved', async () => {
    const { points, id } = await partner();
    const users = Array.from({ length: 20 }, (_, i) => `user-${i}`);
    for (const userId of users) await points.earn({ userId, amount: 10_000 });
    const transfers = Array.from({ length: 500 }, (_, i) => {
      const from = users[i % 20]!;
      let to = users[Math.floor(Math.random() * 20)]!;
      if (to === from) to = users[(i + 1) % 20]!;
      return { fromUserId: from, toUserId: to, amount: 1 + Math.floor(Math.random() * 10) };
    });
    const answers = await Promise.all(transfers.map((body) => points.transfer(body)));
    expect(countBy(answers.map((a) => a.status))).toEqual({ 201: 500 });
    const report = await checkPointsInvariants(t.ctx.db, { partnerId: id });
    expect(report).toMatchObject({ wallets: 20, totalBalance: 200_000, violations: [] });
  });

  it('the same key sent 5 times at once to one process applies once; the others replay it; another body under it is refused', async () => {
    const { points, id } = await partner();
    const answers = await Promise.all(Array.from({ length: 5 }, () => points.earn({ userId: 'twice', amount: 40 }, 'same-key')));
    // One process holds a key in its queue until the call that holds it ends: the others wait and
    // replay its stored answer, so no 409 here (that needs two processes: see below).
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201, 201]);
    expect(answers.filter((a) => !a.replayed)).toHaveLength(1);
    for (const a of answers) expect(a.body).toEqual(answers[0]!.body);
    const later = await points.earn({ userId: 'twice', amount: 40 }, 'same-key');
    expect(later).toEqual({ status: 201, body: answers[0]!.body, replayed: true });
    expect((await points.earn({ userId: 'twice', amount: 41 }, 'same-key')).status).toBe(422);
    expect((await points.balance('twice')).balance).toBe(40);
    const { rows } = await t.ctx.db.query(`SELECT count(*)::int AS n FROM point_transactions WHERE partner_id = $1 AND type = 'EARN'`, [id]);
    expect(rows[0].n).toBe(1);
  });

  it('a key still in flight in one process is answered 409 IDEMPOTENCY_IN_PROGRESS by another, then replayed once done', async () => {
    const { points, headers, id } = await partner();
    const other = pointsClient(second.app, headers);
    await points.earn({ userId: 'held', amount: 5 });
    const { rows: [wallet] } = await t.ctx.db.query<{ id: number }>(`SELECT id FROM point_wallets WHERE partner_id = $1 AND user_id = 'held'`, [id]);
    // A competing transaction holds the wallet: the first process's call takes the key, then waits
    // for the wallet, its transaction open, while the second process receives the same key.
    const competitor = await t.ctx.db.connect();
    let first: ReturnType<typeof points.earn>;
    try {
      await competitor.query('BEGIN');
      await competitor.query('SELECT 1 FROM point_wallets WHERE id = $1 FOR UPDATE', [wallet!.id]);
      const pid = (await competitor.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      first = points.earn({ userId: 'held', amount: 40 }, 'in-flight');
      await waitFor(async () => (await t.ctx.db.query(`SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, [pid])).rows.length > 0,
        { what: 'the first process holding the key and waiting for the wallet' });
      const meanwhile = await other.earn({ userId: 'held', amount: 40 }, 'in-flight');
      expect(meanwhile.status).toBe(409);
      expect(meanwhile.body.error.code).toBe('IDEMPOTENCY_IN_PROGRESS');
    } finally {
      await competitor.query('ROLLBACK');
      competitor.release();
    }
    const applied = await first;
    expect(applied).toMatchObject({ status: 201, replayed: false });
    expect(await other.earn({ userId: 'held', amount: 40 }, 'in-flight')).toEqual({ status: 201, body: applied.body, replayed: true });
    expect((await points.balance('held')).balance).toBe(45);
  });

  it('the same key sent 10 times at once across two processes applies once; every other answer replays it or is IDEMPOTENCY_IN_PROGRESS', async () => {
    const { points, headers, id } = await partner();
    const other = pointsClient(second.app, headers);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? other : points).earn({ userId: 'both', amount: 7 }, 'shared-key')));
    const applied = answers.filter((a) => a.status === 201 && !a.replayed);
    expect(applied).toHaveLength(1);
    for (const a of answers) {
      if (a.status === 201) expect(a.body).toEqual(applied[0]!.body);
      else expect([a.status, a.body.error.code]).toEqual([409, 'IDEMPOTENCY_IN_PROGRESS']);
    }
    expect((await points.balance('both')).balance).toBe(7);
    const { rows } = await t.ctx.db.query(`SELECT count(*)::int AS n FROM point_transactions WHERE partner_id = $1 AND type = 'EARN'`, [id]);
    expect(rows[0].n).toBe(1);
  });

  it('concurrent cancels of one USE (different keys): one restores, the others are ALREADY_CANCELLED', async () => {
    const { points } = await partner();
    await points.earn({ userId: 'refund', amount: 50 });
    const used = await points.use({ userId: 'refund', amount: 30 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => points.cancel(used.body.transactionId)));
    expect(countBy(answers.map((a) => a.status === 201 ? 201 : a.body.error.code))).toEqual({ 201: 1, ALREADY_CANCELLED: 9 });
    expect((await points.balance('refund')).balance).toBe(50);
  });

  it('cancel of an EARN racing uses of it: either the cancel or the uses win, never both', async () => {
    const { points } = await partner();
    const earned = await points.earn({ userId: 'race', amount: 10 });
    const [cancel, ...uses] = await Promise.all([
      points.cancel(earned.body.transactionId),
      ...Array.from({ length: 5 }, () => points.use({ userId: 'race', amount: 2 })),
    ]);
    const usesOk = uses.filter((u) => u.status === 201).length;
    if (cancel!.status === 201) expect(usesOk).toBe(0);
    else expect(cancel!.body.error.code).toBe('POINTS_ALREADY_USED');
    expect((await points.balance('race')).balance).toBe(cancel!.status === 201 ? 0 : 10 - 2 * usesOk);
  });

  it('several expiry sweeps at once with uses in flight expire each lot exactly once', async () => {
    const { points, id } = await partner();
    const start = clock;
    for (let i = 0; i < 30; i++) {
      await points.earn({ userId: `sweep-${i}`, amount: 10, expiresAt: new Date(start + 5).toISOString() });
      await points.earn({ userId: `sweep-${i}`, amount: 10, expiresInDays: 1 });
    }
    clock = start + 5;
    const sweeps = Array.from({ length: 3 }, () => expireDuePoints(t.ctx, new Date(clock), 7));
    const uses = Array.from({ length: 30 }, (_, i) => points.use({ userId: `sweep-${i}`, amount: 10 }));
    const [, answers] = await Promise.all([Promise.all(sweeps), Promise.all(uses)]);
    expect(countBy(answers.map((a) => a.status))).toEqual({ 201: 30 });
    const { rows } = await t.ctx.db.query(
      `SELECT count(*)::int AS n, coalesce(sum(a.amount), 0)::int AS points
         FROM point_transactions tx JOIN point_allocations a ON a.transaction_id = tx.id
        WHERE tx.partner_id = $1 AND tx.type = 'EXPIRE'`,
      [id],
    );
    expect(rows[0]).toEqual({ n: 30, points: 300 });
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: id, sweptAt: new Date(clock) })).violations).toEqual([]);
    clock = start;
  });
});
