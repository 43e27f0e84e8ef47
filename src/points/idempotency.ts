// Idempotency keys for mutating points calls (Stripe semantics, docs/architecture.md) and the
// fingerprints that decide whether a repeated key carries the same request.
//
// One key space per partner, shared with bulk accrual items (migration 030 explains the contract):
// the record is written in the same transaction as the effect, so a visible record always means
// the request was applied (or refused with a stored 4xx), never that it is half done.
//
// A request in flight holds a transaction-scoped advisory lock on hash(partner, key); a second
// request with the same key that cannot take it answers 409 IDEMPOTENCY_IN_PROGRESS at once
// instead of queueing behind it. The primary key is the final arbiter: if a racing writer (another
// process, or a bulk chunk that does not take the advisory lock) committed the key first, our
// insert fails with a unique violation, everything rolls back, and the stored answer is replayed.
//
// Calls are run, in batches, by group-commit.ts: one transaction claims the keys of several calls,
// locks their wallets, lets each call decide, and writes every decision and record at once.
import { hash } from 'node:crypto';
import { AppError } from '../errors.ts';
import type { Tx } from '../infra/db.ts';
import type { LedgerWrite } from './ledger-write.ts';
import type { IdempotencyRecord, LockedWallet, WalletRequest } from './ledger-repository.ts';

/** Printable ASCII without spaces, 1–255 characters (the column CHECK says the same). */
const KEY_PATTERN = /^[\x21-\x7E]{1,255}$/;

/** Idempotency records are kept at least this long; the expiry job prunes older ones. */
export const IDEMPOTENCY_RETENTION_MS = 24 * 3_600_000;

export type PointsOperation = 'earn' | 'use' | 'cancel' | 'transfer';

export function idempotencyKeyOf(headers: Record<string, string | string[] | undefined>): string {
  const raw = headers['idempotency-key'];
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (key === undefined || key === '') throw new AppError('IDEMPOTENCY_KEY_REQUIRED');
  if (!KEY_PATTERN.test(key)) {
    const problem = { field: 'headers.idempotency-key', message: 'must be 1 to 255 printable ASCII characters without spaces' };
    throw new AppError('VALIDATION_FAILED', `${problem.field}: ${problem.message}`, [problem]);
  }
  return key;
}

/** SHA-256 of the canonical request: the operation and its normalized fields, in a fixed order. */
export function requestFingerprint(operation: PointsOperation, fields: ReadonlyArray<string | number | null>): Buffer {
  // One-shot hash: no Hash object per call (5.9 → 4.5 µs; bulk accrual takes one per item).
  return hash('sha256', JSON.stringify([operation, ...fields]), 'buffer');
}

export interface EarnRequest {
  readonly userId: string;
  readonly amount: number;
  readonly pointType: string;
  readonly expiresAt?: string | Date | undefined;
  readonly expiresInDays?: number | undefined;
  readonly reason?: string | undefined;
  readonly orderId?: string | undefined;
}

/**
 * The fingerprint of an earn, whichever path sends it: POST /v1/points/earn and bulk accrual items
 * (which have no expiresInDays, reason or orderId) use this same function, so the same earn under
 * the same key is recognised as a replay across both paths.
 */
export function earnFingerprint(earn: EarnRequest): Buffer {
  return requestFingerprint('earn', [
    earn.userId, earn.amount, earn.pointType,
    earn.expiresAt === undefined ? null : new Date(earn.expiresAt).toISOString(),
    earn.expiresInDays ?? null, earn.reason ?? null, earn.orderId ?? null,
  ]);
}

/** What an operation decided under its locks: its answer and everything it will write. */
export interface Decision {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly transactionId: string;
  readonly write: LedgerWrite;
}

export type Outcome =
  | { readonly kind: 'applied' | 'replayed'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'refused'; readonly error: AppError };

export interface IdempotentCall {
  readonly operation: PointsOperation;
  readonly partnerId: string;
  readonly key: string;
  readonly fingerprint: Buffer;
  /**
   * The wallets locked (with the lots they need) together with the key claim. None for a cancel,
   * whose wallet is known only once it has read its transaction: it runs in a batch of its own.
   */
  readonly wallets?: WalletRequest | undefined;
  /**
   * Decides from the locked wallets (reading or locking more if it must), writing nothing itself:
   * its decision is written afterwards in one statement together with the idempotency record. A
   * thrown AppError is a refusal; it is stored under the key too, so a retry gets the same answer.
   */
  readonly decide: (tx: Tx, wallets: LockedWallet[], now: Date) => Promise<Decision>;
}

/** The stored answer under a key, if the request is the same one (else 422). */
export function replay(stored: IdempotencyRecord, fingerprint: Buffer): Outcome {
  if (!stored.fingerprint.equals(fingerprint)) throw new AppError('IDEMPOTENCY_KEY_REUSED');
  return { kind: 'replayed', status: stored.status, body: stored.body };
}
