import { describe, expect, it } from 'vitest';
import { allocate, dueLots, earnExpiry, restore, spendableBalance, totalOf, type Lot } from './lots.ts';

const now = new Date('2026-11-22T10:00:00.000Z');
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
const lot = (id: number, remaining: number, expiresInMs: number, amount = remaining): Lot => ({ id, amount, remaining, expiresAt: at(expiresInMs) });

describe('allocate', () => {
  it('takes the earliest-expiring lot first, whatever the creation order', () => {
    const lots = [lot(1, 50, 3_000), lot(2, 30, 1_000), lot(3, 40, 2_000)];
    expect(allocate(lots, 60, now)).toEqual([{ lotId: 2, amount: 30 }, { lotId: 3, amount: 30 }]);
  });

  it('breaks expiry ties by creation (lower id first)', () => {
    const lots = [lot(7, 10, 1_000), lot(4, 10, 1_000)];
    expect(allocate(lots, 15, now)).toEqual([{ lotId: 4, amount: 10 }, { lotId: 7, amount: 5 }]);
  });

  it('takes a lot partly and stops as soon as the amount is covered', () => {
    expect(allocate([lot(1, 100, 1_000), lot(2, 100, 2_000)], 1, now)).toEqual([{ lotId: 1, amount: 1 }]);
  });

  it('uses exactly the whole balance', () => {
    expect(allocate([lot(1, 5, 1_000), lot(2, 5, 2_000)], 10, now)).toEqual([{ lotId: 1, amount: 5 }, { lotId: 2, amount: 5 }]);
  });

  it('returns undefined when the unexpired lots do not cover the amount', () => {
    expect(allocate([lot(1, 5, 1_000)], 6, now)).toBeUndefined();
  });

  it('never takes from an expired lot, even one expiring at this very instant', () => {
    const lots = [lot(1, 100, -1), lot(2, 100, 0), lot(3, 10, 1)];
    expect(allocate(lots, 10, now)).toEqual([{ lotId: 3, amount: 10 }]);
    expect(allocate(lots, 11, now)).toBeUndefined();
  });

  it('skips empty lots and refuses a non-positive amount', () => {
    expect(allocate([lot(1, 0, 1_000, 10), lot(2, 3, 2_000)], 3, now)).toEqual([{ lotId: 2, amount: 3 }]);
    expect(() => allocate([lot(1, 3, 1_000)], 0, now)).toThrow(RangeError);
  });

  it('refuses a negative, fractional or unsafe amount, naming it', () => {
    const lots = [lot(1, 3, 1_000)];
    expect(() => allocate(lots, -1, now)).toThrow('amount must be a positive integer, got -1');
    expect(() => allocate(lots, 1.5, now)).toThrow('amount must be a positive integer, got 1.5');
    expect(() => allocate(lots, 2 ** 53, now)).toThrow(RangeError);
  });
});

describe('dueLots and spendableBalance', () => {
  it('a lot expires exactly at its instant', () => {
    const lots = [lot(1, 10, -1), lot(2, 20, 0), lot(3, 30, 1), lot(4, 0, -5, 10)];
    expect(dueLots(lots, now)).toEqual([{ lotId: 1, amount: 10 }, { lotId: 2, amount: 20 }]);
    expect(spendableBalance(lots, now)).toBe(30);
    expect(dueLots(lots, at(1))).toEqual([{ lotId: 1, amount: 10 }, { lotId: 2, amount: 20 }, { lotId: 3, amount: 30 }]);
  });

  it('lists due lots in spending order (earliest expiry, then creation), whatever the order read', () => {
    const lots = [lot(5, 1, -1_000), lot(2, 2, -3_000), lot(9, 3, -2_000), lot(3, 4, -2_000)];
    expect(dueLots(lots, now).map((due) => due.lotId)).toEqual([2, 3, 9, 5]);
  });
});

describe('restore', () => {
  it('gives back exactly what was taken, lot by lot', () => {
    const lots = [lot(1, 0, 1_000, 30), lot(2, 10, 2_000, 40), lot(3, 5, 3_000)];
    const restored = restore(lots, [{ lotId: 1, amount: 30 }, { lotId: 2, amount: 30 }]);
    expect(restored.map((l) => [l.id, l.remaining])).toEqual([[1, 30], [2, 40], [3, 5]]);
  });

  it('undoes an allocation', () => {
    const lots = [lot(1, 30, 1_000), lot(2, 40, 2_000)];
    const taken = allocate(lots, 50, now)!;
    const after = lots.map((l) => ({ ...l, remaining: l.remaining - (taken.find((t) => t.lotId === l.id)?.amount ?? 0) }));
    expect(restore(after, taken)).toEqual(lots);
  });

  it('a restored lot that has expired meanwhile is due at once', () => {
    const restored = restore([lot(1, 0, -1_000, 30), lot(2, 0, 1_000, 10)], [{ lotId: 1, amount: 30 }, { lotId: 2, amount: 10 }]);
    expect(dueLots(restored, now)).toEqual([{ lotId: 1, amount: 30 }]);
    expect(spendableBalance(restored, now)).toBe(10);
  });

  it('refuses to overfill a lot or to restore to an unknown lot (a corrupt ledger)', () => {
    expect(() => restore([lot(1, 10, 1_000)], [{ lotId: 1, amount: 1 }])).toThrow(/exceed/);
    expect(() => restore([lot(1, 0, 1_000, 10)], [{ lotId: 9, amount: 1 }])).toThrow(/unknown/);
  });

  it('names every unknown lot', () => {
    expect(() => restore([lot(1, 0, 1_000, 10)], [{ lotId: 8, amount: 1 }, { lotId: 9, amount: 1 }])).toThrow('restore names unknown lots: 8, 9');
  });
});

describe('totalOf', () => {
  it('sums the allocations, 0 for none', () => {
    expect(totalOf([])).toBe(0);
    expect(totalOf([{ lotId: 1, amount: 30 }, { lotId: 2, amount: 12 }])).toBe(42);
  });
});

describe('earnExpiry', () => {
  it('uses the given instant, else the given lifetime, else the partner default', () => {
    const fixed = new Date('2027-01-01T00:00:00.000Z');
    expect(earnExpiry({ expiresAt: fixed }, 365, now)).toEqual(fixed);
    expect(earnExpiry({ expiresInDays: 2 }, 365, now)).toEqual(at(2 * 86_400_000));
    expect(earnExpiry({}, 365, now)).toEqual(at(365 * 86_400_000));
  });
});
