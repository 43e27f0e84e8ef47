// Lot arithmetic: pure functions over plain data, no I/O. The repository reads a wallet's lots
// under the wallet lock, these functions decide, and one statement writes the decision.
//
// A lot is expired from its `expiresAt` instant on (expiresAt <= now): a point that expires at
// 10:00:00.000 can no longer be spent at 10:00:00.000.

export interface Lot {
  /** Creation order: a larger id was created later. */
  readonly id: number;
  readonly amount: number;
  readonly remaining: number;
  readonly expiresAt: Date;
}

/** Points taken from (or given back to) one lot. */
export interface Allocation {
  readonly lotId: number;
  readonly amount: number;
}

export const isExpired = (lot: Pick<Lot, 'expiresAt'>, now: Date): boolean => lot.expiresAt.getTime() <= now.getTime();

/** Spending order: earliest expiry first, ties by creation. */
export const bySpendingOrder = (a: Lot, b: Lot): number =>
  a.expiresAt.getTime() - b.expiresAt.getTime() || a.id - b.id;

/** Lots past their expiry that still hold points: what an EXPIRE must take, in full. */
export function dueLots(lots: readonly Lot[], now: Date): Allocation[] {
  return lots
    .filter((lot) => lot.remaining > 0 && isExpired(lot, now))
    .sort(bySpendingOrder)
    .map((lot) => ({ lotId: lot.id, amount: lot.remaining }));
}

/** Points that can be spent now: the unexpired remainder. */
export const spendableBalance = (lots: readonly Lot[], now: Date): number =>
  lots.reduce((sum, lot) => (isExpired(lot, now) ? sum : sum + lot.remaining), 0);

/**
 * Takes `amount` points from the unexpired lots, earliest expiry first (ties by creation), a lot
 * partly if it holds more than what is still needed. Returns undefined when the unexpired lots do
 * not hold enough: nothing is taken then.
 */
export function allocate(lots: readonly Lot[], amount: number, now: Date): Allocation[] | undefined {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new RangeError(`amount must be a positive integer, got ${amount}`);
  const allocations: Allocation[] = [];
  let needed = amount;
  for (const lot of lots.filter((candidate) => candidate.remaining > 0 && !isExpired(candidate, now)).sort(bySpendingOrder)) {
    const taken = Math.min(lot.remaining, needed);
    allocations.push({ lotId: lot.id, amount: taken });
    needed -= taken;
    if (needed === 0) return allocations;
  }
  return undefined;
}

/**
 * Gives back exactly what `allocations` took: the lots as they are after the restore. Throws if an
 * allocation names a lot that is not given or would overfill it, which means the ledger is corrupt.
 */
export function restore(lots: readonly Lot[], allocations: readonly Allocation[]): Lot[] {
  const given = new Map(allocations.map((allocation) => [allocation.lotId, allocation.amount]));
  const restored = lots.map((lot) => {
    const back = given.get(lot.id);
    if (back === undefined) return lot;
    given.delete(lot.id);
    if (lot.remaining + back > lot.amount) throw new Error(`restoring ${back} to lot ${lot.id} would exceed its amount ${lot.amount}`);
    return { ...lot, remaining: lot.remaining + back };
  });
  if (given.size > 0) throw new Error(`restore names unknown lots: ${[...given.keys()].join(', ')}`);
  return restored;
}

export const totalOf = (allocations: readonly Allocation[]): number => allocations.reduce((sum, a) => sum + a.amount, 0);

const DAY_MS = 86_400_000;

/** When an earn's lot expires: its own instant, else its own lifetime, else the partner default. */
export function earnExpiry(earn: { expiresAt?: Date | undefined; expiresInDays?: number | undefined }, partnerDefaultDays: number, now: Date): Date {
  if (earn.expiresAt) return earn.expiresAt;
  return new Date(now.getTime() + (earn.expiresInDays ?? partnerDefaultDays) * DAY_MS);
}
