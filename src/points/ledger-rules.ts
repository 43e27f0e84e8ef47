// The ledger's decisions, pure: each takes the state its call loaded under its locks (the wallets
// with their lots, `walletsFor*` say which; a cancel's transaction) and returns a Decision, or
// throws a refusal before anything is written. The group commit loads the state and writes the
// decision with the idempotency record in one transaction (group-commit.ts, ledger-operations.ts).
// Every decision also expires the due lots of the wallets it touches, so the balance it answers
// with is exact at `now` even if the expiry job has not run yet.
import { AppError } from '../errors.ts';
import type { Decision } from './idempotency.ts';
import { LedgerWrite } from './ledger-write.ts';
import { allocate, dueLots, earnExpiry, restore, spendableBalance, type Lot } from './lots.ts';
import type { CancelState, LockedWallet, StoredTransaction, WalletRequest } from './ledger-repository.ts';

/**
 * A wallet never holds more points than this, so every balance read back from PostgreSQL's INT8
 * (parsed as a JavaScript number) is exact: docs/decisions/050-exact-amounts.md.
 */
export const MAX_BALANCE = Number.MAX_SAFE_INTEGER;

/** The wallet's balance once `write` is applied; refused when past MAX_BALANCE. */
function balanceAfter(wallet: { readonly id: number; readonly balance: number }, write: LedgerWrite): number {
  const balance = wallet.balance + write.deltaOf(wallet.id);
  if (balance > MAX_BALANCE) throw new AppError('BALANCE_LIMIT_REACHED');
  return balance;
}

export interface EarnInput {
  readonly userId: string;
  readonly amount: number;
  readonly pointType: string;
  readonly expiresAt?: Date | undefined;
  readonly expiresInDays?: number | undefined;
  readonly reason?: string | undefined;
  readonly orderId?: string | undefined;
}

export interface UseInput {
  readonly userId: string;
  readonly amount: number;
  readonly pointType: string;
  readonly reason?: string | undefined;
  readonly orderId?: string | undefined;
}

export interface CancelInput {
  readonly transactionId: string;
  /** When given, the transaction must belong to a wallet of this type. */
  readonly pointType?: string | undefined;
  readonly reason?: string | undefined;
}

export interface TransferInput {
  readonly fromUserId: string;
  readonly toUserId: string;
  readonly amount: number;
  readonly pointType: string;
  readonly reason?: string | undefined;
}

/** An earn's wallet is created on first use, before it is locked. */
export const walletsForEarn = (input: EarnInput): WalletRequest => ({
  pointType: input.pointType, users: [{ userId: input.userId, need: 0, create: true }],
});

export function decideEarn(partnerId: string, input: EarnInput, wallets: LockedWallet[], now: Date): Decision {
  const [wallet] = wallets;
  if (!wallet) throw new Error(`the wallet of ${input.userId} was not created before its earn`);
  const write = new LedgerWrite(partnerId, now);
  expireDue(write, wallet.id, wallet.lots, now);
  const expiresAt = earnExpiry(input, wallet.expiryDays, now);
  const transactionId = write.credit(wallet.id, 'EARN', [{ amount: input.amount, expiresAt }], details(input));
  return {
    status: 201, transactionId, write,
    body: { transactionId, type: 'EARN', amount: input.amount, balance: balanceAfter(wallet, write), expiresAt: expiresAt.toISOString() },
  };
}

export const walletsForUse = (input: UseInput): WalletRequest => ({ pointType: input.pointType, users: [{ userId: input.userId, need: input.amount }] });

export function decideUse(partnerId: string, input: UseInput, wallets: LockedWallet[], now: Date): Decision {
  const [wallet] = wallets;
  const lots = wallet?.lots ?? [];
  const allocations = allocate(lots, input.amount, now);
  if (!wallet || !allocations) throw insufficient(lots, input.amount, now);
  const write = new LedgerWrite(partnerId, now);
  expireDue(write, wallet.id, lots, now);
  const transactionId = write.debit(wallet.id, 'USE', allocations, details(input));
  return {
    status: 201, transactionId, write,
    body: { transactionId, type: 'USE', amount: input.amount, balance: wallet.balance + write.deltaOf(wallet.id) },
  };
}

/**
 * The transaction a cancel names, if it can be cancelled at all: checked before its wallet is
 * locked (a transaction's wallet and type never change, so reading them before the lock is safe).
 */
export function cancelTarget(target: StoredTransaction | undefined, input: CancelInput): StoredTransaction {
  if (!target || (input.pointType !== undefined && input.pointType !== target.pointType)) throw new AppError('TRANSACTION_NOT_FOUND');
  if (target.type !== 'EARN' && target.type !== 'USE') {
    throw new AppError('TRANSACTION_NOT_CANCELLABLE', `A ${target.type} transaction cannot be cancelled; only EARN and USE can.`);
  }
  return target;
}

/**
 * Cancels an EARN (only if none of its points has left its lot) or a USE (gives back exactly the
 * lots it took; any of them that expired meanwhile expires again at once, as an EXPIRE), on the
 * state read under the wallet's lock (ledger-repository.ts loadCancelState).
 */
export function decideCancel(partnerId: string, input: CancelInput, state: CancelState, now: Date): Decision {
  const { target, wallet } = state;
  if (state.cancelled) throw new AppError('ALREADY_CANCELLED');
  const write = new LedgerWrite(partnerId, now);
  const related = { relatedTransactionId: target.id, ...(input.reason === undefined ? {} : { reason: input.reason }) };
  let transactionId: string;
  if (state.kind === 'EARN') {
    const { lot } = state;
    if (!lot || lot.remaining !== lot.amount) throw new AppError('POINTS_ALREADY_USED');
    transactionId = write.debit(wallet.id, 'CANCEL_EARN', [{ lotId: lot.id, amount: lot.amount }], related);
    expireDue(write, wallet.id, state.lots.filter((other) => other.id !== lot.id), now);
  } else {
    transactionId = write.giveBack(wallet.id, state.allocations, related);
    expireDue(write, wallet.id, restore(state.lots, state.allocations), now);
  }
  const cancel = write.transactions[0]!;
  return {
    status: 201, transactionId, write,
    body: {
      transactionId, type: cancel.type, amount: Math.abs(cancel.amount),
      balance: balanceAfter(wallet, write), cancelledTransactionId: target.id,
    },
  };
}

/** The receiver's wallet is created on first use, before it is locked (a refused transfer leaves it empty). */
export const walletsForTransfer = (input: TransferInput): WalletRequest => ({
  pointType: input.pointType, users: [{ userId: input.fromUserId, need: input.amount }, { userId: input.toUserId, need: 0, create: true }],
});

/** Moves points with their expiry dates: TRANSFER_OUT takes lots, TRANSFER_IN recreates them. */
export function decideTransfer(partnerId: string, input: TransferInput, wallets: LockedWallet[], now: Date): Decision {
  const from = wallets.find((wallet) => wallet.userId === input.fromUserId);
  const lots = from?.lots ?? [];
  const allocations = allocate(lots, input.amount, now);
  if (!from || !allocations) throw insufficient(lots, input.amount, now);
  const to = wallets.find((wallet) => wallet.userId === input.toUserId);
  if (!to) throw new Error(`the wallet of ${input.toUserId} was not created before the transfer to it`);
  const write = new LedgerWrite(partnerId, now);
  expireDue(write, from.id, lots, now);
  expireDue(write, to.id, to.lots, now);
  const reason = input.reason === undefined ? {} : { reason: input.reason };
  const transactionId = write.debit(from.id, 'TRANSFER_OUT', allocations, reason);
  const expiryOf = new Map(lots.map((lot) => [lot.id, lot.expiresAt]));
  write.credit(to.id, 'TRANSFER_IN', allocations.map((allocation) => ({ amount: allocation.amount, expiresAt: expiryOf.get(allocation.lotId)! })),
    { relatedTransactionId: transactionId, ...reason });
  return {
    status: 201, transactionId, write,
    body: { transactionId, fromBalance: from.balance + write.deltaOf(from.id), toBalance: balanceAfter(to, write) },
  };
}

function expireDue(write: LedgerWrite, walletId: number, lots: readonly Lot[], now: Date): void {
  const due = dueLots(lots, now);
  if (due.length > 0) write.debit(walletId, 'EXPIRE', due);
}

const insufficient = (lots: readonly Lot[], requested: number, now: Date) =>
  new AppError('INSUFFICIENT_POINTS', undefined, { available: spendableBalance(lots, now), requested });

const details = (input: { reason?: string | undefined; orderId?: string | undefined }) => ({
  ...(input.reason === undefined ? {} : { reason: input.reason }),
  ...(input.orderId === undefined ? {} : { orderId: input.orderId }),
});
