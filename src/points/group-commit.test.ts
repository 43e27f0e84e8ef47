// The group commit against the real PostgreSQL: calls share transactions, yet each is answered as
// if it ran alone, including when another call of its batch breaks the batch.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { PointsGroupCommit } from './group-commit.ts';
import { earnFingerprint, requestFingerprint, type IdempotentCall, type Outcome } from './idempotency.ts';
import { checkPointsInvariants } from './invariants.ts';
import { decideEarn, decideTransfer, decideUse, walletsForEarn, walletsForTransfer, walletsForUse, type EarnInput } from './ledger-rules.ts';

let clock = Date.now();
let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ clock: () => new Date(clock) });
});
afterAll(async () => t.close());

// The ledger invariant (docs/points.md), checked after every test on every partner it created.
const created: string[] = [];
afterEach(async () => {
  for (const partnerId of created.splice(0)) expect((await checkPointsInvariants(t.ctx.db, { partnerId })).violations, partnerId).toEqual([]);
});
const newPartner = async () => {
  const partner = await createPartner(t.app);
  created.push(partner.id);
  return partner;
};

const earnCall = (partnerId: string, key: string, input: EarnInput, before?: () => Promise<void>): IdempotentCall => ({
  operation: 'earn', partnerId, key, fingerprint: earnFingerprint(input), wallets: walletsForEarn(input),
  decide: async (_tx, wallets, now) => {
    await before?.();
    return decideEarn(partnerId, input, wallets, now);
  },
});

const earn = (userId: string, amount = 10): EarnInput => ({ userId, amount, pointType: 'default' });

const transferCall = (partnerId: string, key: string, fromUserId: string, toUserId: string, amount: number): IdempotentCall => {
  const input = { fromUserId, toUserId, amount, pointType: 'default' };
  return {
    operation: 'transfer', partnerId, key, fingerprint: requestFingerprint('transfer', [fromUserId, toUserId, amount]), wallets: walletsForTransfer(input),
    decide: async (_tx, wallets, now) => decideTransfer(partnerId, input, wallets, now),
  };
};

/** The calls submitted in one turn of the event loop leave together: this ends the turn. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Submits `lone` first, alone in its batch, then `rest` together once it holds the only slot. */
async function loneThenRest<T>(lone: () => Promise<T>, rest: () => Array<Promise<T>>): Promise<T[]> {
  const first = lone();
  await nextTurn();
  return Promise.all([first, ...rest()]);
}

const useCall = (partnerId: string, key: string, userId: string, amount: number): IdempotentCall => {
  const input = { userId, amount, pointType: 'default' };
  return {
    operation: 'use', partnerId, key, fingerprint: requestFingerprint('use', [userId, amount]), wallets: walletsForUse(input),
    decide: async (_tx, wallets, now) => decideUse(partnerId, input, wallets, now),
  };
};

async function batchSizes(run: () => Promise<unknown>): Promise<{ batches: number; calls: number }> {
  const read = async () => {
    const metric = await t.ctx.metrics.pointsBatchSize.get();
    const value = (name: string) => metric.values.find((v) => v.metricName === name)?.value ?? 0;
    return { batches: value('stampede_points_batch_size_count'), calls: value('stampede_points_batch_size_sum') };
  };
  const before = await read();
  await run();
  const after = await read();
  return { batches: after.batches - before.batches, calls: after.calls - before.calls };
}

describe('points group commit', () => {
  it('commits concurrent calls on distinct wallets in shared transactions, each answered with its own result', async () => {
    const { id: partnerId } = await newPartner();
    const ledger = new PointsGroupCommit(t.ctx, { maxBatch: 50, inFlight: 2 });
    let outcomes: unknown[] = [];
    const sizes = await batchSizes(async () => {
      outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => ledger.run(earnCall(partnerId, `k-${i}`, earn(`u-${i}`, i + 1)))));
    });
    expect(sizes.calls).toBe(200);
    expect(sizes.batches).toBe(200 / 50); // all submitted in one turn: full batches
    expect(outcomes.map((o) => (o as { body: { balance: number } }).body.balance)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(await checkPointsInvariants(t.ctx.db, { partnerId })).toMatchObject({ wallets: 200, totalBalance: 200 * 201 / 2, violations: [] });
  });

  it('earns and uses on one wallet share a batch: uses decide first on the lots from before it, each answer is one step of one order', async () => {
    const { id: partnerId } = await newPartner();
    const ledger = new PointsGroupCommit(t.ctx, { maxBatch: 50, inFlight: 1 });
    const due = Date.now() + 1_000;
    await ledger.run(earnCall(partnerId, 'seed-due', { ...earn('hot', 3), expiresAt: new Date(due) }));
    await ledger.run(earnCall(partnerId, 'seed', earn('hot', 10)));
    clock = due; // the first lot is due now: the batch expires it once
    const calls = [
      earnCall(partnerId, 'e1', earn('hot', 5)),
      useCall(partnerId, 'u1', 'hot', 8),
      useCall(partnerId, 'u2', 'hot', 8),
      earnCall(partnerId, 'e2', earn('hot', 5)),
    ];
    let outcomes: Outcome[] = [];
    const sizes = await batchSizes(async () => {
      outcomes = await loneThenRest(() => ledger.run(earnCall(partnerId, 'first', earn('other'))), () => calls.map((call) => ledger.run(call)));
    });
    expect(sizes).toEqual({ batches: 2, calls: 5 }); // the lone first call, then the four together
    const [, e1, u1, u2, e2] = outcomes;
    expect(u1).toMatchObject({ kind: 'applied', body: { balance: 2 } });
    expect(u2).toMatchObject({ kind: 'refused', error: { code: 'INSUFFICIENT_POINTS', details: { available: 2, requested: 8 } } });
    expect(e1).toMatchObject({ kind: 'applied', body: { balance: 7 } });
    expect(e2).toMatchObject({ kind: 'applied', body: { balance: 12 } });
    const { rows } = await t.ctx.db.query<{ type: string; amount: number }>(
      `SELECT t.type, t.amount FROM point_transactions t JOIN point_wallets w ON w.id = t.wallet_id
        WHERE w.partner_id = $1 AND w.user_id = 'hot' ORDER BY t.seq`, [partnerId]);
    expect(rows.map((r) => `${r.type} ${r.amount}`)).toEqual(['EARN 3', 'EARN 10', 'EXPIRE -3', 'USE -8', 'EARN 5', 'EARN 5']);
    expect(await checkPointsInvariants(t.ctx.db, { partnerId, sweptAt: new Date(due) })).toMatchObject({ totalBalance: 22, violations: [] });
  });

  it('a transfer does not share its wallets: it waits for the batch after the earns on them', async () => {
    const { id: partnerId } = await newPartner();
    const ledger = new PointsGroupCommit(t.ctx, { maxBatch: 50, inFlight: 1 });
    await ledger.run(earnCall(partnerId, 'seed', earn('a', 10)));
    const transfer = transferCall(partnerId, 't', 'a', 'b', 4);
    const sizes = await batchSizes(async () => {
      await loneThenRest(() => ledger.run(earnCall(partnerId, 'first', earn('other'))), () => [
        ledger.run(earnCall(partnerId, 'e-a', earn('a', 1))), ledger.run(transfer), ledger.run(earnCall(partnerId, 'e-c', earn('c', 1))),
      ]);
    });
    expect(sizes).toEqual({ batches: 3, calls: 4 }); // first; the two earns (e-c passes the waiting transfer: other wallets); the transfer
    expect(await checkPointsInvariants(t.ctx.db, { partnerId })).toMatchObject({ totalBalance: 12 + 10, violations: [] });
  });

  it('a transfer that waited too long has its wallets reserved: it is not starved by later calls on either', async () => {
    const { id: partnerId } = await newPartner();
    const ledger = new PointsGroupCommit(t.ctx, { maxBatch: 50, inFlight: 2, reserveAfterMs: 0 });
    await ledger.run(earnCall(partnerId, 'seed-a', earn('a', 10)));
    await ledger.run(earnCall(partnerId, 'seed-b', earn('b', 10)));
    const gate = () => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => { open = resolve; });
      return { open, wait: () => opened };
    };
    const [holdA, holdB] = [gate(), gate()];
    // Both slots busy: one batch holds wallet a, the other wallet b, until their gates open.
    const first = [ledger.run(earnCall(partnerId, 'e1', earn('a', 1), holdA.wait))];
    await nextTurn();
    first.push(ledger.run(earnCall(partnerId, 'e2', earn('b', 1), holdB.wait)));
    await nextTurn();
    const transfer = ledger.run(transferCall(partnerId, 't', 'a', 'b', 4));
    const later = [ledger.run(earnCall(partnerId, 'e3', earn('a', 1))), ledger.run(earnCall(partnerId, 'e4', earn('b', 1)))];
    holdA.open(); // wallet a is free, b is not: the transfer waits, and so does e3 behind it
    await first[0];
    holdB.open();
    const [moved, e3, e4] = await Promise.all([transfer, ...later]);
    expect(moved).toMatchObject({ kind: 'applied', body: { fromBalance: 7, toBalance: 15 } });
    expect(e3).toMatchObject({ kind: 'applied', body: { balance: 8 } }); // after the transfer
    expect(e4).toMatchObject({ kind: 'applied', body: { balance: 16 } });
    await Promise.all(first);
  });

  it('a call whose decision fails alone: the batch is rolled back, its other calls are run again one by one and applied once', async () => {
    const { id: partnerId } = await newPartner();
    // One slot: the first call takes it alone, the next ten queue and leave together.
    const ledger = new PointsGroupCommit(t.ctx, { maxBatch: 50, inFlight: 1 });
    let failures = 0;
    const calls = Array.from({ length: 10 }, (_, i) => earnCall(partnerId, `k-${i}`, earn(`u-${i}`), async () => {
      if (i === 4) {
        failures++;
        throw new Error('a bug in one decision');
      }
    }));
    const first = ledger.run(earnCall(partnerId, 'first', earn('first')));
    await nextTurn();
    const results = await Promise.allSettled([first, ...calls.map((call) => ledger.run(call))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', ...Array.from({ length: 10 }, (_, i) => (i === 4 ? 'rejected' : 'fulfilled'))]);
    expect(failures).toBe(2); // in the batch, then alone
    const { rows } = await t.ctx.db.query<{ user_id: string; balance: number }>(
      'SELECT user_id, balance FROM point_wallets WHERE partner_id = $1 ORDER BY user_id', [partnerId]);
    expect(rows.map((r) => r.user_id)).toEqual(['first', 'u-0', 'u-1', 'u-2', 'u-3', 'u-5', 'u-6', 'u-7', 'u-8', 'u-9']);
    expect(await checkPointsInvariants(t.ctx.db, { partnerId })).toMatchObject({ totalBalance: 100, violations: [] });
  });

  it('a key another writer commits while its batch runs: the batch is rolled back, that call replays the stored answer, the others apply once', async () => {
    const { id: partnerId } = await newPartner();
    const ledger = new PointsGroupCommit(t.ctx, { maxBatch: 50, inFlight: 1 });
    const raced = earn('raced', 7);
    const stored = { transactionId: '00000000-0000-7000-8000-000000000000', type: 'EARN', amount: 7, balance: 7, expiresAt: '2030-01-01T00:00:00.000Z' };
    let raceCommitted = false;
    // Another writer (a bulk accrual does not take the advisory lock) commits the raced key's record mid-batch.
    const racer = () => async () => {
      if (raceCommitted) return;
      raceCommitted = true;
      await t.ctx.db.query(
        `INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code, response, created_at)
         VALUES ($1, 'raced-key', $2, 201, $3, now())`, [partnerId, earnFingerprint(raced), JSON.stringify(stored)]);
    };
    const results = await Promise.all([
      ledger.run(earnCall(partnerId, 'first', earn('first'))),
      ledger.run(earnCall(partnerId, 'a', earn('a'), racer())),
      ledger.run(earnCall(partnerId, 'raced-key', raced)),
      ledger.run(earnCall(partnerId, 'b', earn('b'))),
    ]);
    expect(results.map((r) => r.kind)).toEqual(['applied', 'applied', 'replayed', 'applied']);
    expect(results[2]).toMatchObject({ status: 201, body: stored });
    expect(await checkPointsInvariants(t.ctx.db, { partnerId })).toMatchObject({ wallets: 3, totalBalance: 30, violations: [] });
  });

  it('refuses calls beyond its queue cap at once with 503 POINTS_QUEUE_FULL: half the cap per partner, the cap in total', async () => {
    const [a, b, c] = [(await newPartner()).id, (await newPartner()).id, (await newPartner()).id];
    const ledger = new PointsGroupCommit(t.ctx, { maxBatch: 10, inFlight: 1, maxQueued: 4 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const first = ledger.run(earnCall(a, 'cap-0', earn('cap-u0'), () => held));
    await nextTurn(); // the first call holds the only slot; the rest wait in the queue
    const queued = [ledger.run(earnCall(a, 'cap-1', earn('cap-u1'))), ledger.run(earnCall(a, 'cap-2', earn('cap-u2')))];
    const perPartner = ledger.run(earnCall(a, 'cap-3', earn('cap-u3'))).then((outcome) => outcome.kind, (error: unknown) => error);
    queued.push(ledger.run(earnCall(b, 'cap-4', earn('cap-u4'))), ledger.run(earnCall(b, 'cap-5', earn('cap-u5'))));
    const total = ledger.run(earnCall(c, 'cap-6', earn('cap-u6'))).then((outcome) => outcome.kind, (error: unknown) => error);
    release();
    expect(await perPartner).toMatchObject({ code: 'POINTS_QUEUE_FULL', status: 503 });
    expect(await total).toMatchObject({ code: 'POINTS_QUEUE_FULL', status: 503 });
    expect((await Promise.all([first, ...queued])).map((outcome) => outcome.kind)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied']);
    // Drained: the partner that was refused is served again.
    expect((await ledger.run(earnCall(c, 'cap-7', earn('cap-u7')))).kind).toBe('applied');
  });
});
