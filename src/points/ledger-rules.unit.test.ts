// The ledger's decisions on loaded state, without PostgreSQL: what each operation writes and
// answers, and every refusal it makes before anything is written.
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.ts';
import type { CancelState, LockedWallet, StoredTransaction } from './ledger-repository.ts';
import {
  cancelTarget, decideCancel, decideEarn, decideTransfer, decideUse, MAX_BALANCE, walletsForEarn, walletsForTransfer, walletsForUse,
} from './ledger-rules.ts';
import type { Lot } from './lots.ts';

const now = new Date('2026-11-22T10:00:00.000Z');
const DAY_MS = 86_400_000;
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
const lot = (id: number, remaining: number, expiresInMs: number, amount = remaining): Lot => ({ id, amount, remaining, expiresAt: at(expiresInMs) });
const wallet = (id: number, userId: string, lots: Lot[], balance = lots.reduce((sum, l) => sum + l.remaining, 0)): LockedWallet => ({
  id, userId, balance, expiryDays: 30, lots,
});
const refusal = (decide: () => unknown): AppError => {
  try {
    decide();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
};

describe('earn', () => {
  it('locks (creating) the user\'s wallet and credits one lot expiring after the partner default', () => {
    expect(walletsForEarn({ userId: 'u', amount: 5, pointType: 'p' })).toEqual({ pointType: 'p', users: [{ userId: 'u', need: 0, create: true }] });
    const decision = decideEarn('partner', { userId: 'u', amount: 5, pointType: 'p', orderId: 'o1' }, [wallet(1, 'u', [], 10)], now);
    expect(decision.status).toBe(201);
    expect(decision.body).toEqual({ transactionId: decision.transactionId, type: 'EARN', amount: 5, balance: 15, expiresAt: at(30 * DAY_MS).toISOString() });
    expect(decision.write.transactions).toEqual([expect.objectContaining({ id: decision.transactionId, walletId: 1, type: 'EARN', amount: 5, orderId: 'o1' })]);
    expect(decision.write.lots).toEqual([{ walletId: 1, sourceTransactionId: decision.transactionId, amount: 5, expiresAt: at(30 * DAY_MS) }]);
  });

  it('expires the wallet\'s due lots first, so the balance it answers is exact at now', () => {
    const decision = decideEarn('partner', { userId: 'u', amount: 5, pointType: 'p', expiresInDays: 2 }, [wallet(1, 'u', [lot(7, 3, -1)])], now);
    expect(decision.write.transactions.map((t) => [t.type, t.amount])).toEqual([['EXPIRE', -3], ['EARN', 5]]);
    expect(decision.body).toMatchObject({ balance: 5, expiresAt: at(2 * DAY_MS).toISOString() });
  });

  it('refuses to take a wallet past MAX_BALANCE', () => {
    expect(refusal(() => decideEarn('partner', { userId: 'u', amount: 2, pointType: 'p' }, [wallet(1, 'u', [], MAX_BALANCE - 1)], now)).code)
      .toBe('BALANCE_LIMIT_REACHED');
  });
});

describe('use', () => {
  it('locks the wallet with the lots covering the amount and spends the soonest-expiring first', () => {
    expect(walletsForUse({ userId: 'u', amount: 7, pointType: 'p' })).toEqual({ pointType: 'p', users: [{ userId: 'u', need: 7 }] });
    const decision = decideUse('partner', { userId: 'u', amount: 7, pointType: 'p' }, [wallet(1, 'u', [lot(1, 5, 2 * DAY_MS), lot(2, 5, DAY_MS)])], now);
    expect(decision.body).toEqual({ transactionId: decision.transactionId, type: 'USE', amount: 7, balance: 3 });
    expect(decision.write.allocations.map((a) => [a.lotId, a.amount])).toEqual([[2, 5], [1, 2]]);
  });

  it('refuses INSUFFICIENT_POINTS with what is spendable, expired lots not counted', () => {
    const error = refusal(() => decideUse('partner', { userId: 'u', amount: 6, pointType: 'p' }, [wallet(1, 'u', [lot(1, 5, DAY_MS), lot(2, 9, -1)])], now));
    expect([error.code, error.details]).toEqual(['INSUFFICIENT_POINTS', { available: 5, requested: 6 }]);
  });

  it('refuses a wallet that does not exist as holding nothing', () => {
    expect(refusal(() => decideUse('partner', { userId: 'u', amount: 1, pointType: 'p' }, [], now)).details).toEqual({ available: 0, requested: 1 });
  });
});

describe('transfer', () => {
  const input = { fromUserId: 'a', toUserId: 'b', amount: 6, pointType: 'p' };

  it('locks the sender with the lots it needs and creates the receiver', () => {
    expect(walletsForTransfer(input)).toEqual({ pointType: 'p', users: [{ userId: 'a', need: 6 }, { userId: 'b', need: 0, create: true }] });
  });

  it('moves the points with their expiry dates', () => {
    const decision = decideTransfer('partner', input, [wallet(1, 'a', [lot(1, 4, DAY_MS), lot(2, 4, 2 * DAY_MS)]), wallet(2, 'b', [], 1)], now);
    expect(decision.body).toEqual({ transactionId: decision.transactionId, fromBalance: 2, toBalance: 7 });
    const [out, into] = decision.write.transactions;
    expect([out!.type, out!.amount, into!.type, into!.amount, into!.relatedTransactionId]).toEqual(['TRANSFER_OUT', -6, 'TRANSFER_IN', 6, out!.id]);
    expect(decision.write.lots.map((l) => [l.walletId, l.amount, l.expiresAt])).toEqual([[2, 4, at(DAY_MS)], [2, 2, at(2 * DAY_MS)]]);
  });

  it('refuses INSUFFICIENT_POINTS and past MAX_BALANCE at the receiver', () => {
    expect(refusal(() => decideTransfer('partner', input, [wallet(1, 'a', [lot(1, 5, DAY_MS)]), wallet(2, 'b', [])], now)).code).toBe('INSUFFICIENT_POINTS');
    expect(refusal(() => decideTransfer('partner', input, [wallet(1, 'a', [lot(1, 6, DAY_MS)]), wallet(2, 'b', [], MAX_BALANCE)], now)).code)
      .toBe('BALANCE_LIMIT_REACHED');
  });
});

describe('transfer from a user without a wallet', () => {
  it('refuses INSUFFICIENT_POINTS with nothing available, as a use does', () => {
    const error = refusal(() => decideTransfer('partner', { fromUserId: 'a', toUserId: 'b', amount: 6, pointType: 'p' }, [wallet(2, 'b', [])], now));
    expect([error.code, error.details]).toEqual(['INSUFFICIENT_POINTS', { available: 0, requested: 6 }]);
  });
});

describe('cancel', () => {
  const earned: StoredTransaction = { id: 'earn-1', walletId: 1, pointType: 'p', type: 'EARN', amount: 10 };
  const used: StoredTransaction = { id: 'use-1', walletId: 1, pointType: 'p', type: 'USE', amount: -6 };

  it('names only an EARN or a USE of the given point type', () => {
    expect(cancelTarget(earned, { transactionId: 'earn-1' })).toBe(earned);
    expect(refusal(() => cancelTarget(undefined, { transactionId: 'x' })).code).toBe('TRANSACTION_NOT_FOUND');
    expect(refusal(() => cancelTarget(earned, { transactionId: 'earn-1', pointType: 'other' })).code).toBe('TRANSACTION_NOT_FOUND');
    expect(refusal(() => cancelTarget({ ...earned, type: 'EXPIRE' }, { transactionId: 'earn-1' })).code).toBe('TRANSACTION_NOT_CANCELLABLE');
  });

  it('cancels an untouched EARN, expiring the wallet\'s other due lots', () => {
    const state: CancelState = { kind: 'EARN', target: earned, wallet: { id: 1, balance: 13 }, cancelled: false, lot: lot(5, 10, DAY_MS), lots: [lot(5, 10, DAY_MS), lot(6, 3, -1)] };
    const decision = decideCancel('partner', { transactionId: 'earn-1', reason: 'oops' }, state, now);
    expect(decision.body).toEqual({ transactionId: decision.transactionId, type: 'CANCEL_EARN', amount: 10, balance: 0, cancelledTransactionId: 'earn-1' });
    expect(decision.write.transactions.map((t) => [t.type, t.amount, t.relatedTransactionId, t.reason])).toEqual([
      ['CANCEL_EARN', -10, 'earn-1', 'oops'], ['EXPIRE', -3, null, null],
    ]);
  });

  it('refuses an EARN whose points were partly spent, and anything cancelled already', () => {
    const spent: CancelState = { kind: 'EARN', target: earned, wallet: { id: 1, balance: 9 }, cancelled: false, lot: lot(5, 9, DAY_MS, 10), lots: [] };
    expect(refusal(() => decideCancel('partner', { transactionId: 'earn-1' }, spent, now)).code).toBe('POINTS_ALREADY_USED');
    expect(refusal(() => decideCancel('partner', { transactionId: 'earn-1' }, { ...spent, cancelled: true }, now)).code).toBe('ALREADY_CANCELLED');
  });

  it('gives a USE\'s lots back exactly; one that expired meanwhile expires again at once', () => {
    const state: CancelState = {
      kind: 'USE', target: used, wallet: { id: 1, balance: 0 }, cancelled: false,
      allocations: [{ lotId: 1, amount: 4 }, { lotId: 2, amount: 2 }], lots: [lot(1, 0, -1, 4), lot(2, 0, DAY_MS, 2)],
    };
    const decision = decideCancel('partner', { transactionId: 'use-1' }, state, now);
    expect(decision.body).toEqual({ transactionId: decision.transactionId, type: 'CANCEL_USE', amount: 6, balance: 2, cancelledTransactionId: 'use-1' });
    expect(decision.write.transactions.map((t) => [t.type, t.amount])).toEqual([['CANCEL_USE', 6], ['EXPIRE', -4]]);
  });
});

describe('the limits and details every decision keeps', () => {
  it('takes a wallet exactly to MAX_BALANCE, not one point past it, whatever the operation', () => {
    expect(decideEarn('partner', { userId: 'u', amount: 1, pointType: 'p' }, [wallet(1, 'u', [], MAX_BALANCE - 1)], now).body).toMatchObject({ balance: MAX_BALANCE });
    const input = { fromUserId: 'a', toUserId: 'b', amount: 1, pointType: 'p' };
    expect(decideTransfer('partner', input, [wallet(1, 'a', [lot(1, 1, DAY_MS)]), wallet(2, 'b', [], MAX_BALANCE - 1)], now).body).toMatchObject({ toBalance: MAX_BALANCE });
    // A USE cancelled after the wallet has filled up again: giving its points back is refused too.
    const used: StoredTransaction = { id: 'use-1', walletId: 1, pointType: 'p', type: 'USE', amount: -2 };
    const full: CancelState = {
      kind: 'USE', target: used, wallet: { id: 1, balance: MAX_BALANCE - 1 }, cancelled: false,
      allocations: [{ lotId: 1, amount: 2 }], lots: [lot(1, 0, DAY_MS, 2)],
    };
    expect(refusal(() => decideCancel('partner', { transactionId: 'use-1' }, full, now)).code).toBe('BALANCE_LIMIT_REACHED');
  });

  it('records the reason and the order id given, and null for those not given', () => {
    const earn = decideEarn('partner', { userId: 'u', amount: 5, pointType: 'p', reason: 'welcome' }, [wallet(1, 'u', [])], now);
    expect(earn.write.transactions).toEqual([expect.objectContaining({ type: 'EARN', reason: 'welcome', orderId: null, relatedTransactionId: null })]);
    const use = decideUse('partner', { userId: 'u', amount: 1, pointType: 'p', orderId: 'o-9' }, [wallet(1, 'u', [lot(1, 5, DAY_MS)])], now);
    expect(use.write.transactions).toEqual([expect.objectContaining({ type: 'USE', reason: null, orderId: 'o-9' })]);
    const input = { fromUserId: 'a', toUserId: 'b', amount: 1, pointType: 'p' };
    const wallets = () => [wallet(1, 'a', [lot(1, 5, DAY_MS)]), wallet(2, 'b', [])];
    expect(decideTransfer('partner', { ...input, reason: 'gift' }, wallets(), now).write.transactions.map((t) => t.reason)).toEqual(['gift', 'gift']);
    expect(decideTransfer('partner', input, wallets(), now).write.transactions.map((t) => t.reason)).toEqual([null, null]);
  });

  it('fails loudly, naming the user, when the wallet an operation creates before locking is missing', () => {
    expect(() => decideEarn('partner', { userId: 'u-7', amount: 1, pointType: 'p' }, [], now)).toThrow('the wallet of u-7 was not created before its earn');
    expect(() => decideTransfer('partner', { fromUserId: 'a', toUserId: 'b-7', amount: 1, pointType: 'p' }, [wallet(1, 'a', [lot(1, 5, DAY_MS)])], now))
      .toThrow('the wallet of b-7 was not created before the transfer to it');
  });
});

describe('use and transfer: the due lots of every wallet touched expire first', () => {
  it('a use expires the due lots it did not spend, and answers the balance after both', () => {
    const decision = decideUse('partner', { userId: 'u', amount: 2, pointType: 'p' }, [wallet(1, 'u', [lot(1, 4, -1), lot(2, 5, DAY_MS)])], now);
    expect(decision.write.transactions.map((t) => [t.type, t.amount])).toEqual([['EXPIRE', -4], ['USE', -2]]);
    expect(decision.body).toMatchObject({ balance: 3 });
  });

  it('a transfer expires the sender\'s and the receiver\'s due lots', () => {
    const input = { fromUserId: 'a', toUserId: 'b', amount: 2, pointType: 'p' };
    const decision = decideTransfer('partner', input, [wallet(1, 'a', [lot(1, 3, -1), lot(2, 5, DAY_MS)]), wallet(2, 'b', [lot(3, 7, -1), lot(4, 1, DAY_MS)])], now);
    expect(decision.write.transactions.map((t) => [t.walletId, t.type, t.amount])).toEqual([
      [1, 'EXPIRE', -3], [2, 'EXPIRE', -7], [1, 'TRANSFER_OUT', -2], [2, 'TRANSFER_IN', 2],
    ]);
    expect(decision.body).toMatchObject({ fromBalance: 3, toBalance: 3 });
  });

  it('finds the sender and the receiver by user, whatever order the wallets were locked in', () => {
    const input = { fromUserId: 'a', toUserId: 'b', amount: 2, pointType: 'p' };
    const decision = decideTransfer('partner', input, [wallet(2, 'b', [], 10), wallet(1, 'a', [lot(1, 5, DAY_MS)])], now);
    expect(decision.body).toMatchObject({ fromBalance: 3, toBalance: 12 });
    expect(decision.write.transactions.map((t) => [t.walletId, t.type])).toEqual([[1, 'TRANSFER_OUT'], [2, 'TRANSFER_IN']]);
  });
});

describe('cancel: what can be named and what an EARN\'s cancel takes', () => {
  const earned: StoredTransaction = { id: 'earn-1', walletId: 1, pointType: 'p', type: 'EARN', amount: 10 };
  const used: StoredTransaction = { id: 'use-1', walletId: 1, pointType: 'p', type: 'USE', amount: -6 };

  it('names a USE too, and a transaction of the point type given', () => {
    expect(cancelTarget(used, { transactionId: 'use-1' })).toBe(used);
    expect(cancelTarget(earned, { transactionId: 'earn-1', pointType: 'p' })).toBe(earned);
    for (const type of ['CANCEL_EARN', 'CANCEL_USE', 'TRANSFER_OUT', 'TRANSFER_IN'] as const) {
      const error = refusal(() => cancelTarget({ ...earned, type }, { transactionId: 'earn-1' }));
      expect([error.code, error.message]).toEqual(['TRANSACTION_NOT_CANCELLABLE', `A ${type} transaction cannot be cancelled; only EARN and USE can.`]);
    }
  });

  it('refuses an EARN whose lot is gone as already used', () => {
    const state: CancelState = { kind: 'EARN', target: earned, wallet: { id: 1, balance: 0 }, cancelled: false, lot: undefined, lots: [] };
    expect(refusal(() => decideCancel('partner', { transactionId: 'earn-1' }, state, now)).code).toBe('POINTS_ALREADY_USED');
  });

  it('cancels an EARN whose own lot is due without also expiring that lot', () => {
    const state: CancelState = { kind: 'EARN', target: earned, wallet: { id: 1, balance: 10 }, cancelled: false, lot: lot(5, 10, -1), lots: [lot(5, 10, -1)] };
    const decision = decideCancel('partner', { transactionId: 'earn-1' }, state, now);
    expect(decision.write.transactions.map((t) => [t.type, t.amount, t.reason])).toEqual([['CANCEL_EARN', -10, null]]);
    expect(decision.body).toMatchObject({ amount: 10, balance: 0 });
  });
});
