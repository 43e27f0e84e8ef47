// The points contract through HTTP (inject) against the harness PostgreSQL, with a controllable
// clock: nothing here sleeps. Every test uses its own partner.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { pointsClient } from '../../test/harness/points-client.ts';
import { checkPointsInvariants } from './invariants.ts';

const DAY = 86_400_000;
let clock = Date.now();
let t: TestApp;

beforeAll(async () => {
  t = await createTestApp({ clock: () => new Date(clock) });
});
afterAll(async () => t.close());

async function newPartner() {
  const partner = await createPartner(t.app);
  return { ...partner, points: pointsClient(t.app, partner.headers) };
}

/** After every test: the ledger of every wallet is sound. */
const partners: string[] = [];
async function partnerWithCheck() {
  const partner = await newPartner();
  partners.push(partner.id);
  return partner;
}
afterEach(async () => {
  for (const partnerId of partners.splice(0)) expect((await checkPointsInvariants(t.ctx.db, { partnerId })).violations).toEqual([]);
});

const lifetime = (ms: number) => new Date(clock + ms).toISOString();

describe('earn', () => {
  it('creates the wallet and a lot that expires after the partner default of 365 days', async () => {
    const { points } = await partnerWithCheck();
    const earned = await points.earn({ userId: 'alice', amount: 100, reason: 'order 1', orderId: 'o-1' });
    expect(earned.status).toBe(201);
    expect(earned.body).toMatchObject({ type: 'EARN', amount: 100, balance: 100, expiresAt: new Date(clock + 365 * DAY).toISOString() });
    const second = await points.earn({ userId: 'alice', amount: 50, expiresInDays: 10 });
    expect(second.body).toMatchObject({ balance: 150, expiresAt: new Date(clock + 10 * DAY).toISOString() });
    expect(await points.balance('alice')).toEqual({
      balance: 150,
      expiring: [{ expiresAt: new Date(clock + 10 * DAY).toISOString(), amount: 50 }, { expiresAt: new Date(clock + 365 * DAY).toISOString(), amount: 100 }],
    });
  });

  it('two concurrent first earns for a new user both succeed into one wallet', async () => {
    const { points, id } = await partnerWithCheck();
    const answers = await Promise.all(Array.from({ length: 10 }, () => points.earn({ userId: 'new-user', amount: 7 })));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(201));
    expect((await points.balance('new-user')).balance).toBe(70);
    const { rows } = await t.ctx.db.query('SELECT count(*)::int AS n FROM point_wallets WHERE partner_id = $1', [id]);
    expect(rows[0].n).toBe(1);
  });

  it('refuses an expiry in the past, both expiry forms at once, and unknown fields', async () => {
    const { points } = await partnerWithCheck();
    for (const body of [
      { userId: 'u', amount: 1, expiresAt: lifetime(0) },
      { userId: 'u', amount: 1, expiresAt: lifetime(DAY), expiresInDays: 3 },
      { userId: 'u', amount: 0 },
      { userId: 'u', amount: 1, extra: true },
      { userId: 'u', amount: 1, pointType: 'no spaces allowed' },
    ]) {
      const answer = await points.earn(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error.code).toBe('VALIDATION_FAILED');
    }
    expect((await points.balance('u')).balance).toBe(0);
  });
});

describe('use', () => {
  it('consumes the earliest-expiring lots first and records allocations', async () => {
    const { points } = await partnerWithCheck();
    await points.earn({ userId: 'bob', amount: 100, expiresInDays: 30 });
    await points.earn({ userId: 'bob', amount: 40, expiresInDays: 5 });
    const used = await points.use({ userId: 'bob', amount: 60, orderId: 'order-9' });
    expect(used.status).toBe(201);
    expect(used.body).toMatchObject({ type: 'USE', amount: 60, balance: 80 });
    expect((await points.balance('bob')).expiring).toEqual([{ expiresAt: new Date(clock + 30 * DAY).toISOString(), amount: 80 }]);
  });

  it('reads only the lots a use needs, yet refuses with the whole spendable balance', async () => {
    const { points } = await partnerWithCheck();
    for (const days of [5, 1, 4, 2, 3]) await points.earn({ userId: 'lena', amount: 10, expiresInDays: days });
    expect((await points.use({ userId: 'lena', amount: 15 })).body).toMatchObject({ balance: 35 });
    const expiring = (await points.balance('lena')).expiring.map((e: { amount: number }) => e.amount);
    expect(expiring).toEqual([5, 10, 10, 10]); // day 1 emptied, day 2 half, days 3–5 untouched
    const refused = await points.use({ userId: 'lena', amount: 36 });
    expect(refused.body.error).toMatchObject({ code: 'INSUFFICIENT_POINTS', details: { available: 35, requested: 36 } });
    expect((await points.use({ userId: 'lena', amount: 35 })).body).toMatchObject({ balance: 0 });
  });

  it('refuses with INSUFFICIENT_POINTS and changes nothing', async () => {
    const { points } = await partnerWithCheck();
    await points.earn({ userId: 'carol', amount: 10 });
    const refused = await points.use({ userId: 'carol', amount: 11 });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'INSUFFICIENT_POINTS', details: { available: 10, requested: 11 } });
    expect((await points.use({ userId: 'nobody', amount: 1 })).body.error.code).toBe('INSUFFICIENT_POINTS');
    expect((await points.balance('carol')).balance).toBe(10);
    expect((await points.transactions('carol')).items).toHaveLength(1);
  });

  it('keeps point types apart: a use or transfer never reaches another type', async () => {
    const { points } = await partnerWithCheck();
    await points.earn({ userId: 'dave', amount: 100 });
    await points.earn({ userId: 'dave', amount: 5, pointType: 'staff' });
    expect((await points.use({ userId: 'dave', amount: 6, pointType: 'staff' })).body.error.code).toBe('INSUFFICIENT_POINTS');
    expect((await points.transfer({ fromUserId: 'dave', toUserId: 'erin', amount: 6, pointType: 'staff' })).body.error.code).toBe('INSUFFICIENT_POINTS');
    expect((await points.use({ userId: 'dave', amount: 5, pointType: 'staff' })).body.balance).toBe(0);
    expect((await points.balance('dave')).balance).toBe(100);
    expect((await points.balance('dave', 'staff')).balance).toBe(0);
    expect((await points.transactions('dave', '?pointType=staff')).items.map((i: { type: string }) => i.type)).toEqual(['USE', 'EARN']);
  });
});

describe('cancel', () => {
  it('cancelling a USE restores exactly the lots it consumed; twice is ALREADY_CANCELLED', async () => {
    const { points } = await partnerWithCheck();
    await points.earn({ userId: 'fay', amount: 30, expiresInDays: 1 });
    await points.earn({ userId: 'fay', amount: 30, expiresInDays: 2 });
    const used = await points.use({ userId: 'fay', amount: 45 });
    await points.use({ userId: 'fay', amount: 10 }); // leaves 5 in the 2-day lot
    const cancelled = await points.cancel(used.body.transactionId, { reason: 'refund' });
    expect(cancelled.status).toBe(201);
    expect(cancelled.body).toMatchObject({ type: 'CANCEL_USE', amount: 45, balance: 50, cancelledTransactionId: used.body.transactionId });
    expect((await points.balance('fay')).expiring).toEqual([
      { expiresAt: new Date(clock + DAY).toISOString(), amount: 30 },
      { expiresAt: new Date(clock + 2 * DAY).toISOString(), amount: 20 },
    ]);
    const again = await points.cancel(used.body.transactionId);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('ALREADY_CANCELLED');
  });

  it('cancelling an EARN removes its lot only while untouched', async () => {
    const { points } = await partnerWithCheck();
    const untouched = await points.earn({ userId: 'gus', amount: 20 });
    const touched = await points.earn({ userId: 'gus', amount: 20, expiresInDays: 1 });
    await points.use({ userId: 'gus', amount: 1 });
    const refused = await points.cancel(touched.body.transactionId);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('POINTS_ALREADY_USED');
    const cancelled = await points.cancel(untouched.body.transactionId);
    expect(cancelled.body).toMatchObject({ type: 'CANCEL_EARN', amount: 20, balance: 19 });
    expect((await points.cancel(untouched.body.transactionId)).body.error.code).toBe('ALREADY_CANCELLED');
  });

  it('refuses other kinds, unknown ids, another partner\'s and another type\'s transactions', async () => {
    const { points } = await partnerWithCheck();
    const other = await partnerWithCheck();
    await points.earn({ userId: 'hal', amount: 10 });
    const transfer = await points.transfer({ fromUserId: 'hal', toUserId: 'ivy', amount: 4 });
    expect((await points.cancel(transfer.body.transactionId)).body.error.code).toBe('TRANSACTION_NOT_CANCELLABLE');
    expect((await points.cancel(randomUUID())).status).toBe(404);
    expect((await other.points.cancel(transfer.body.transactionId)).body.error.code).toBe('TRANSACTION_NOT_FOUND');
    const earn = await points.earn({ userId: 'hal', amount: 1 });
    expect((await points.cancel(earn.body.transactionId, { pointType: 'staff' })).body.error.code).toBe('TRANSACTION_NOT_FOUND');
  });
});

describe('transfer', () => {
  it('moves lots with their expiry dates, links OUT and IN, conserves the total', async () => {
    const { points } = await partnerWithCheck();
    await points.earn({ userId: 'jo', amount: 10, expiresInDays: 3 });
    await points.earn({ userId: 'jo', amount: 10, expiresInDays: 7 });
    const moved = await points.transfer({ fromUserId: 'jo', toUserId: 'kim', amount: 15, reason: 'gift' });
    expect(moved.status).toBe(201);
    expect(moved.body).toEqual({ transactionId: moved.body.transactionId, fromBalance: 5, toBalance: 15 });
    expect((await points.balance('kim')).expiring).toEqual([
      { expiresAt: new Date(clock + 3 * DAY).toISOString(), amount: 10 },
      { expiresAt: new Date(clock + 7 * DAY).toISOString(), amount: 5 },
    ]);
    const [transferIn] = (await points.transactions('kim')).items;
    expect(transferIn).toMatchObject({ type: 'TRANSFER_IN', amount: 15, relatedTransactionId: moved.body.transactionId, reason: 'gift' });
    expect((await points.transfer({ fromUserId: 'jo', toUserId: 'jo', amount: 1 })).body.error.code).toBe('SAME_WALLET_TRANSFER');
    expect((await points.transfer({ fromUserId: 'jo', toUserId: 'kim', amount: 6 })).body.error.code).toBe('INSUFFICIENT_POINTS');
  });
});

describe('transactions list', () => {
  it('pages newest first with an opaque cursor', async () => {
    const { points } = await partnerWithCheck();
    for (let i = 1; i <= 5; i++) await points.earn({ userId: 'lee', amount: i });
    const first = await points.transactions('lee', '?limit=2');
    expect(first.items.map((i: { amount: number }) => i.amount)).toEqual([5, 4]);
    const second = await points.transactions('lee', `?limit=2&cursor=${first.nextCursor}`);
    const third = await points.transactions('lee', `?limit=2&cursor=${second.nextCursor}`);
    expect([...second.items, ...third.items].map((i: { amount: number }) => i.amount)).toEqual([3, 2, 1]);
    expect(third.nextCursor).toBeNull();
  });
});

describe('idempotency', () => {
  it('requires a bounded printable Idempotency-Key', async () => {
    const { points } = await partnerWithCheck();
    const missing = await points.earn({ userId: 'max', amount: 1 }, null);
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('IDEMPOTENCY_KEY_REQUIRED');
    expect((await points.earn({ userId: 'max', amount: 1 }, 'k'.repeat(256))).body.error.code).toBe('VALIDATION_FAILED');
    expect((await points.earn({ userId: 'max', amount: 1 }, 'k'.repeat(255))).status).toBe(201);
  });

  it('replays the first answer for the same body, refuses another body with 422', async () => {
    const { points } = await partnerWithCheck();
    const first = await points.earn({ userId: 'ned', amount: 5 }, 'earn-1');
    const replay = await points.earn({ userId: 'ned', amount: 5 }, 'earn-1');
    expect(replay).toEqual({ status: 201, body: first.body, replayed: true });
    expect(first.replayed).toBe(false);
    const reused = await points.earn({ userId: 'ned', amount: 6 }, 'earn-1');
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await points.use({ userId: 'ned', amount: 5 }, 'earn-1')).status).toBe(422);
    expect((await points.balance('ned')).balance).toBe(5);
  });

  it('answers a replay without waiting for the wallet lock', async () => {
    const { points, id } = await partnerWithCheck();
    const first = await points.earn({ userId: 'rita', amount: 5 }, 'earn-r');
    const holder = await t.ctx.db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM point_wallets WHERE partner_id = $1 AND user_id = 'rita' FOR UPDATE`, [id]);
      const replay = await Promise.race([
        points.earn({ userId: 'rita', amount: 5 }, 'earn-r'),
        new Promise((resolve) => setTimeout(() => resolve('waited for the wallet lock'), 3_000)),
      ]);
      expect(replay).toEqual({ status: 201, body: first.body, replayed: true });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
  });

  it('stores a refusal: a retry gets the same 409 even after the balance grew', async () => {
    const { points } = await partnerWithCheck();
    const refused = await points.use({ userId: 'olga', amount: 5 }, 'use-1');
    expect(refused.status).toBe(409);
    await points.earn({ userId: 'olga', amount: 10 });
    const retried = await points.use({ userId: 'olga', amount: 5 }, 'use-1');
    expect(retried).toEqual({ status: 409, body: refused.body, replayed: true });
    expect((await points.balance('olga')).balance).toBe(10);
  });

  it('shares one key space with bulk accrual items written straight into the tables', async () => {
    const { points, id } = await partnerWithCheck();
    const { earnFingerprint } = await import('./idempotency.ts');
    // What a bulk chunk writes for an already-applied item: the record under the same key.
    const earned = await points.earn({ userId: 'pia', amount: 8 }, 'item-1');
    const { rows } = await t.ctx.db.query(
      `INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code, response)
       VALUES ($1, 'item-1', $2, 201, '{}') ON CONFLICT DO NOTHING RETURNING 1`,
      [id, earnFingerprint({ userId: 'pia', amount: 8, pointType: 'default' })],
    );
    expect(rows).toHaveLength(0); // the bulk path sees the key as applied and skips the item
    expect((await points.earn({ userId: 'pia', amount: 8 }, 'item-1')).body).toEqual(earned.body);
  });
});

describe('expiry (controlled clock)', () => {
  it('a lot expires exactly at its instant; use never consumes it; the sweep expires it once', async () => {
    const { points, id } = await partnerWithCheck();
    const start = clock;
    await points.earn({ userId: 'quinn', amount: 100, expiresAt: new Date(start + 1_000).toISOString() });
    await points.earn({ userId: 'quinn', amount: 7, expiresInDays: 1 });
    clock = start + 999;
    expect((await points.balance('quinn')).balance).toBe(107);
    clock = start + 1_000;
    expect((await points.balance('quinn')).balance).toBe(7);
    expect((await points.use({ userId: 'quinn', amount: 8 })).body.error).toMatchObject({ code: 'INSUFFICIENT_POINTS', details: { available: 7 } });

    const sweep = await t.app.inject({ method: 'POST', url: '/v1/admin/points/expire', headers: adminHeaders });
    expect(sweep.statusCode).toBe(200);
    expect(sweep.json().expiredLots).toBeGreaterThanOrEqual(1);
    const ledger = await points.transactions('quinn');
    expect(ledger.items.map((i: { type: string; amount: number }) => [i.type, i.amount])).toEqual([['EXPIRE', -100], ['EARN', 7], ['EARN', 100]]);

    await t.app.inject({ method: 'POST', url: '/v1/admin/points/expire', headers: adminHeaders });
    expect((await points.transactions('quinn')).items).toHaveLength(3); // re-running changes nothing
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: id, sweptAt: new Date(clock) })).violations).toEqual([]);
    clock = start;
  });

  it('a use expires the due lots it meets, in the same transaction', async () => {
    const { points } = await partnerWithCheck();
    const start = clock;
    await points.earn({ userId: 'rex', amount: 50, expiresAt: new Date(start + 10).toISOString() });
    await points.earn({ userId: 'rex', amount: 20, expiresInDays: 1 });
    clock = start + 10;
    expect((await points.use({ userId: 'rex', amount: 5 })).body.balance).toBe(15);
    expect((await points.transactions('rex')).items.map((i: { type: string }) => i.type)).toEqual(['USE', 'EXPIRE', 'EARN', 'EARN']);
    clock = start;
  });

  it('cancelling a USE whose lot expired meanwhile restores it and expires it at once', async () => {
    const { points } = await partnerWithCheck();
    const start = clock;
    await points.earn({ userId: 'sam', amount: 30, expiresAt: new Date(start + 50).toISOString() });
    await points.earn({ userId: 'sam', amount: 30, expiresInDays: 1 });
    const used = await points.use({ userId: 'sam', amount: 40 }); // 30 from the short lot, 10 from the long one
    clock = start + 50;
    const cancelled = await points.cancel(used.body.transactionId);
    expect(cancelled.body).toMatchObject({ type: 'CANCEL_USE', amount: 40, balance: 30 });
    const types = (await points.transactions('sam')).items.map((i: { type: string; amount: number }) => [i.type, i.amount]);
    expect(types.slice(0, 2)).toEqual([['EXPIRE', -30], ['CANCEL_USE', 40]]);
    clock = start;
  });

  it('prunes idempotency records older than 24 hours, and only those', async () => {
    const { points } = await partnerWithCheck();
    const start = clock;
    clock = start - 25 * 3_600_000;
    const old = await points.earn({ userId: 'tia', amount: 1, expiresInDays: 30 }, 'old-key');
    clock = start - 23 * 3_600_000;
    await points.earn({ userId: 'tia', amount: 1, expiresInDays: 30 }, 'recent-key');
    clock = start;
    const sweep = await t.app.inject({ method: 'POST', url: '/v1/admin/points/expire', headers: adminHeaders });
    expect(sweep.json().prunedIdempotencyRecords).toBeGreaterThanOrEqual(1);
    expect((await points.earn({ userId: 'tia', amount: 1, expiresInDays: 30 }, 'recent-key')).replayed).toBe(true);
    const reapplied = await points.earn({ userId: 'tia', amount: 1, expiresInDays: 30 }, 'old-key');
    expect(reapplied.replayed).toBe(false);
    expect(reapplied.body.transactionId).not.toBe(old.body.transactionId);
  });
});
