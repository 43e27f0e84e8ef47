// Everything one points operation writes, collected in memory and written by ONE statement
// (repository.commitBatch, with the rest of its batch). Building it is pure; it keeps the
// invariant by construction: every transaction moves its wallet's balance by its signed amount,
// and the lots by the same sum.
import { v7 as uuidv7 } from 'uuid';
import { totalOf, type Allocation } from './lots.ts';

export type TransactionType = 'EARN' | 'USE' | 'CANCEL_EARN' | 'CANCEL_USE' | 'EXPIRE' | 'TRANSFER_OUT' | 'TRANSFER_IN';

/** Types that add points; the others take them away (the sign of the stored amount). */
const CREDITS: ReadonlySet<TransactionType> = new Set(['EARN', 'CANCEL_USE', 'TRANSFER_IN']);

export interface NewTransaction {
  readonly id: string;
  readonly walletId: number;
  readonly type: TransactionType;
  /** Signed: positive for credits, negative for debits. */
  readonly amount: number;
  readonly relatedTransactionId: string | null;
  readonly orderId: string | null;
  readonly reason: string | null;
}

export interface NewLot {
  readonly walletId: number;
  readonly sourceTransactionId: string;
  readonly amount: number;
  readonly expiresAt: Date;
}

export interface AllocationRow extends Allocation {
  readonly transactionId: string;
}

export interface TransactionDetails {
  readonly relatedTransactionId?: string;
  readonly orderId?: string;
  readonly reason?: string;
}

export class LedgerWrite {
  readonly transactions: NewTransaction[] = [];
  readonly lots: NewLot[] = [];
  readonly allocations: AllocationRow[] = [];
  /** Net change of each touched lot's remaining (one row per lot: an UPDATE applies each once). */
  readonly lotDeltas = new Map<number, number>();
  readonly walletDeltas = new Map<number, number>();

  constructor(readonly partnerId: string, readonly now: Date) {}

  /** A credit that creates lots (EARN: one; TRANSFER_IN: one per lot moved). Returns the transaction id. */
  credit(walletId: number, type: 'EARN' | 'TRANSFER_IN', lots: ReadonlyArray<{ amount: number; expiresAt: Date }>, details: TransactionDetails = {}): string {
    const id = this.record(walletId, type, lots.reduce((sum, lot) => sum + lot.amount, 0), details);
    for (const lot of lots) this.lots.push({ walletId, sourceTransactionId: id, amount: lot.amount, expiresAt: lot.expiresAt });
    return id;
  }

  /** A debit that takes points from the given lots (USE, CANCEL_EARN, EXPIRE, TRANSFER_OUT). */
  debit(walletId: number, type: 'USE' | 'CANCEL_EARN' | 'EXPIRE' | 'TRANSFER_OUT', allocations: readonly Allocation[], details: TransactionDetails = {}): string {
    const id = this.record(walletId, type, totalOf(allocations), details);
    this.allocate(id, allocations, -1);
    return id;
  }

  /** A CANCEL_USE: gives back exactly the lots the USE took. */
  giveBack(walletId: number, allocations: readonly Allocation[], details: TransactionDetails & { relatedTransactionId: string }): string {
    const id = this.record(walletId, 'CANCEL_USE', totalOf(allocations), details);
    this.allocate(id, allocations, 1);
    return id;
  }

  /** Net balance change of a wallet so far. */
  deltaOf(walletId: number): number {
    return this.walletDeltas.get(walletId) ?? 0;
  }

  private record(walletId: number, type: TransactionType, magnitude: number, details: TransactionDetails): string {
    if (!Number.isSafeInteger(magnitude) || magnitude <= 0) throw new RangeError(`${type} needs a positive amount, got ${magnitude}`);
    const amount = CREDITS.has(type) ? magnitude : -magnitude;
    const id = uuidv7();
    this.transactions.push({
      id, walletId, type, amount,
      relatedTransactionId: details.relatedTransactionId ?? null,
      orderId: details.orderId ?? null,
      reason: details.reason ?? null,
    });
    this.walletDeltas.set(walletId, this.deltaOf(walletId) + amount);
    return id;
  }

  private allocate(transactionId: string, allocations: readonly Allocation[], sign: 1 | -1): void {
    for (const allocation of allocations) {
      this.allocations.push({ transactionId, ...allocation });
      this.lotDeltas.set(allocation.lotId, (this.lotDeltas.get(allocation.lotId) ?? 0) + sign * allocation.amount);
    }
  }
}
