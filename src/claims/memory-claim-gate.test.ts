// The in-process gate's bounds (issue 15): caches far smaller than the events stay exact, because
// an entry is dropped only when nothing of it is in flight (and a holder dropped turns off the fresh
// event's shortcut: its other users are read again); claims beyond the in-flight bound
// are refused at once with 503 instead of queueing without limit. And its group commit (issue 21):
// claims that arrive while a batch is in PostgreSQL go out beside it, not after it, and no flush
// waits for a timer (libuv defers timers while 1,024 sockets are ready at once).
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { couponRows, issuedCountInDb } from '../../test/harness/claims.ts';
import { createTemplate, issueCoupon } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { AppError } from '../errors.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { ClaimRefusal } from './claim-gate.ts';
import type { HoldingsLookup } from './holdings-lookup.ts';
import { MemoryClaimGate, type GroupCommitOptions } from './memory-claim-gate.ts';

describe('in-process claim gate bounds', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp(); });
  afterAll(async () => { await t.close(); });

  const gateWith = (options: Partial<GroupCommitOptions>) =>
    new MemoryClaimGate(t.ctx.db, t.ctx.logger, t.ctx.metrics, () => new Date(), { lingerMs: 2, maxBatch: 50, ...options });
  const template = async (partner: { headers: Record<string, string> }, body: Record<string, unknown>): Promise<CouponTemplate> =>
    (await t.ctx.claimTemplates.get(await createTemplate(t.app, partner.headers, body)))!;

  it('3 cached users and 1 cached event for 60 users × 4 concurrent clicks on two events: exact, and no claim refused by PostgreSQL', async () => {
    const partner = await createPartner(t.app);
    const events = [await template(partner, { totalQuantity: 200, perUserLimit: 3 }), await template(partner, { totalQuantity: 200, perUserLimit: 3 })];
    const gate = gateWith({ cachedUsers: 3, cachedEvents: 1 });
    const answers = await Promise.all(Array.from({ length: 60 }, (_, u) => Array.from({ length: 4 }, (_, click) =>
      gate.claim(events[(u + click) % 2]!, uuidv7, `user-${u}`).then(
        (result) => ('issued' in result ? 'issued' : result.refusal),
        (error: unknown) => (error instanceof AppError ? error.code : String(error)),
      ))).flat());
    // Every click is issued (60 users × 4 clicks over two events of 200, at most 2 per user and event + limit 3).
    expect(answers.filter((answer) => answer !== 'issued')).toEqual([]);
    for (const event of events) {
      const rows = await couponRows(t.ctx.db, event.id);
      expect(rows).toHaveLength(120);
      expect(await issuedCountInDb(t.ctx.db, event.id)).toBe(120);
      expect(rows.map((row) => row.slot)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    }
    expect(gate.cacheSizes()).toEqual({ events: 1, users: 3, queued: 0 });

    // Users evicted long ago are read again from PostgreSQL: the limit holds across evictions.
    const again = await Promise.all(Array.from({ length: 60 }, (_, u) => gate.claim(events[u % 2]!, uuidv7, `user-${u}`)));
    expect(again.filter((result) => 'issued' in result)).toHaveLength(60); // each user's third coupon of one event
    const limited = await Promise.all(Array.from({ length: 60 }, (_, u) => gate.claim(events[u % 2]!, uuidv7, `user-${u}`)));
    expect(limited.map((result) => ('refusal' in result ? result.refusal : 'issued'))).toEqual(Array(60).fill(-4));
  });

  it('reads no holdings for the users of an event that had no coupon when it opened; reads them where one existed', async () => {
    const partner = await createPartner(t.app);
    const fresh = await template(partner, { totalQuantity: 100, perUserLimit: 1 });
    const gate = gateWith({});
    const reads = vi.spyOn((gate as unknown as { holdings: HoldingsLookup<number> }).holdings, 'get');
    const users = Array.from({ length: 50 }, (_, u) => `fresh-${u}`);
    const first = await Promise.all(users.map((userId) => gate.claim(fresh, uuidv7, userId)));
    expect(first.filter((result) => 'issued' in result)).toHaveLength(50);
    expect(reads).not.toHaveBeenCalled();
    const second = await Promise.all(users.map((userId) => gate.claim(fresh, uuidv7, userId)));
    expect(second).toEqual(Array(50).fill({ refusal: ClaimRefusal.LimitReached }));
    expect(await issuedCountInDb(t.ctx.db, fresh.id)).toBe(50);

    // A coupon issued before the opening (a distribution): its holder is read, and refused.
    const held = await template(partner, { totalQuantity: 100, perUserLimit: 1 });
    await issueCoupon(t.ctx.db, { partnerId: partner.id, templateId: held.id, userId: 'holder', validFrom: new Date(), validUntil: new Date(Date.now() + 86_400_000) });
    expect(await gate.claim(held, uuidv7, 'opener')).toHaveProperty('issued');
    expect(await gate.claim(held, uuidv7, 'holder')).toEqual({ refusal: ClaimRefusal.LimitReached });
    expect(reads.mock.calls.map(([, userId]) => userId)).toEqual(['holder']);
  });

  it('refuses claims beyond the in-flight bound with 503 and issues the rest exactly', async () => {
    const partner = await createPartner(t.app);
    const event = await template(partner, { totalQuantity: 100 });
    const gate = gateWith({ maxInFlight: 5, lingerMs: 50 });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, u) => gate.claim(event, uuidv7, `user-${u}`).then(
      (result) => ('issued' in result ? 'issued' : String(result.refusal)),
      (error: unknown) => (error instanceof AppError ? error.code : String(error)),
    )));
    expect(answers.filter((answer) => answer === 'issued')).toHaveLength(5);
    expect(answers.filter((answer) => answer === 'SERVICE_UNAVAILABLE')).toHaveLength(15);
    expect(await issuedCountInDb(t.ctx.db, event.id)).toBe(5);
    expect((await gate.claim(event, uuidv7, 'after'))).toHaveProperty('issued');
  });

  it('makes a coupon id only for a claim it issues: once for the coupon, never for a refusal', async () => {
    const partner = await createPartner(t.app);
    const event = await template(partner, { totalQuantity: 1, perUserLimit: 1 });
    const gate = gateWith({});
    const made: string[] = [];
    const newCouponId = () => {
      const id = uuidv7();
      made.push(id);
      return id;
    };
    const issued = await gate.claim(event, newCouponId, 'first');
    expect(issued).toMatchObject({ issued: { couponId: made[0] } });
    expect(made).toHaveLength(1);
    expect(await gate.claim(event, newCouponId, 'first')).toEqual({ refusal: ClaimRefusal.LimitReached });
    expect(await gate.claim(event, newCouponId, 'second')).toEqual({ refusal: ClaimRefusal.SoldOut });
    expect(made).toHaveLength(1);
    expect((await couponRows(t.ctx.db, event.id)).map((row) => row.id)).toEqual(made);
  });

  it('knownRefusal answers what claim() answers when that is a refusal, and nothing where claim() would issue or must load', async () => {
    const partner = await createPartner(t.app);
    const event = await template(partner, { totalQuantity: 2, perUserLimit: 1 });
    const gate = gateWith({});
    expect(gate.knownRefusal(event, 'first')).toBeUndefined(); // the event is not open here yet
    expect(await gate.claim(event, uuidv7, 'first')).toHaveProperty('issued');
    expect(gate.knownRefusal(event, 'first')).toBe(ClaimRefusal.LimitReached);
    expect(await gate.claim(event, uuidv7, 'first')).toEqual({ refusal: ClaimRefusal.LimitReached });
    expect(gate.knownRefusal(event, 'second')).toBeUndefined(); // would issue (its holdings are not held yet either)
    expect(await gate.claim(event, uuidv7, 'second')).toHaveProperty('issued');
    expect(gate.knownRefusal(event, 'third')).toBe(ClaimRefusal.SoldOut);
    expect(await gate.claim(event, uuidv7, 'third')).toEqual({ refusal: ClaimRefusal.SoldOut });
    const closed = { ...event, claimEndsAt: new Date(Date.now() - 1_000), claimStartsAt: new Date(Date.now() - 60_000) };
    const fresh = gateWith({});
    expect(fresh.knownRefusal(closed, 'late')).toBe(ClaimRefusal.Closed);
    expect(await fresh.claim(closed, uuidv7, 'late')).toEqual({ refusal: ClaimRefusal.Closed });
    expect(await issuedCountInDb(t.ctx.db, event.id)).toBe(2);
  });

  it('commits a claim that arrives while an earlier batch waits in PostgreSQL, without waiting for that batch', async () => {
    const partner = await createPartner(t.app);
    const event = await template(partner, { totalQuantity: 10 });
    const gate = gateWith({ maxBatch: 1, lingerMs: 0 });
    // An open transaction holding slot 1 of the event: the first claim's statement (slot 1) waits on it.
    const blocker = await t.ctx.db.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(
        `INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, status, valid_from, valid_until, issued_at)
         VALUES ($1, $2, $3, 'blocker', 1, 1, 'ISSUED', now(), now() + interval '1 day', now())`,
        [uuidv7(), event.partnerId, event.id]);
      const first = gate.claim(event, uuidv7, 'first');
      await waitFor(async () => (await t.ctx.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO coupons%'")).rows[0]!.n === 1,
      { what: 'the first claim\'s statement to wait on the open transaction' });

      // Slot 2 conflicts with nothing: answered while the first batch is still held (deadline 10 s).
      let deadline: NodeJS.Timeout | undefined;
      const second = await Promise.race([
        gate.claim(event, uuidv7, 'second'),
        new Promise<string>((resolve) => { deadline = setTimeout(() => resolve('not answered within 10 s'), 10_000); }),
      ]).finally(() => clearTimeout(deadline));
      expect(second).toMatchObject({ issued: { slot: 2 } });

      await blocker.query('ROLLBACK');
      expect(await first).toMatchObject({ issued: { slot: 1 } });
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
    }
    expect((await couponRows(t.ctx.db, event.id)).map((row) => row.slot).sort()).toEqual([1, 2]);
    expect(await issuedCountInDb(t.ctx.db, event.id)).toBe(2);
  });

  it('commits without waiting for a timer (lingerMs 0): claims are answered while no timer can fire', async () => {
    const partner = await createPartner(t.app);
    const event = await template(partner, { totalQuantity: 10 });
    const gate = gateWith({ lingerMs: 0 });
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'setImmediate'] });
    try {
      const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => gate.claim(event, uuidv7, `no-timer-${i}`)));
      expect(answers.map((answer) => 'issued' in answer)).toEqual([true, true, true, true, true]);
    } finally {
      vi.useRealTimers();
    }
    expect(await issuedCountInDb(t.ctx.db, event.id)).toBe(5);
  }, 20_000);
});
