// Idempotency keys for mutating points calls (Stripe semantics, DESIGN.md section 3) and the
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
// A call is two round trips on a pipelined connection (repository.ts): BEGIN + claim the key +
// lock the wallets and read their lots; then write the decision + COMMIT. Deciding is in between.
import { createHash } from 'node:crypto';
import { AppError, isAppError } from '../errors.ts';
import { errorBody } from '../http/error-handler.ts';
import { isRetryableConflict, isUniqueViolation, sendTogether, withRetry, type Tx } from '../infra/db.ts';
import type { AppContext } from '../context.ts';
import type { LedgerWrite } from './ledger-write.ts';
import {
  claimKeyAndLockWallets, commitLedgerWrite, commitRefusal, findIdempotencyRecord,
  type IdempotencyRecord, type IdempotencyRecordToStore, type LockedWallet, type WalletRequest,
} from './repository.ts';

const NO_WALLETS: WalletRequest = { pointType: '', users: [] };

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
  return createHash('sha256').update(JSON.stringify([operation, ...fields])).digest();
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
  /** The wallets locked (with the lots they need) together with the key claim; none for a cancel. */
  readonly wallets?: WalletRequest | undefined;
  /**
   * Decides from the locked wallets (reading or locking more if it must), writing nothing itself:
   * its decision is written afterwards in one statement together with the idempotency record. A
   * thrown AppError is a refusal; it is stored under the key too, so a retry gets the same answer.
   */
  readonly decide: (tx: Tx, wallets: LockedWallet[], now: Date) => Promise<Decision>;
}

/**
 * Runs a mutating points call once per (partner, key): applies it, replays its stored answer, or
 * refuses (422 different request, 409 still in flight). Deadlocks and serialization failures are
 * retried with jitter a bounded number of times; if they persist the client gets a 503, never the
 * database error.
 */
export async function runIdempotent(ctx: AppContext, call: IdempotentCall): Promise<Outcome> {
  let attempts = 0;
  const count = (outcome: string) => ctx.metrics.pointsOperations.inc({ operation: call.operation, outcome });
  try {
    const outcome = await withRetry(() => {
      attempts++;
      return attempt(ctx, call);
    });
    if (attempts > 1) ctx.metrics.pointsOperations.inc({ operation: call.operation, outcome: 'retried' }, attempts - 1);
    count(outcome.kind === 'applied' ? 'ok' : outcome.kind);
    return outcome;
  } catch (error) {
    if (isUniqueViolation(error, 'point_idempotency_pkey')) {
      // Another writer committed this key between our check and our insert: answer what it stored.
      const stored = await findIdempotencyRecord(ctx.db, call.partnerId, call.key);
      if (!stored) throw new AppError('IDEMPOTENCY_IN_PROGRESS');
      count('replayed');
      return replay(stored, call.fingerprint);
    }
    if (isRetryableConflict(error)) {
      ctx.logger.error({ err: error, operation: call.operation, attempts }, 'points transaction kept conflicting; giving up');
      throw new AppError('SERVICE_UNAVAILABLE', 'The wallet is too busy right now; retry shortly.');
    }
    throw error;
  }
}

async function attempt(ctx: AppContext, call: IdempotentCall): Promise<Outcome> {
  const tx = await ctx.ledgerDb.connect();
  let open = true;
  try {
    const now = ctx.clock();
    // One round trip: these statements are written back to back and run in this order.
    const [, { claim, wallets }] = await Promise.all(sendTogether(tx, () => [
      tx.query('BEGIN'),
      claimKeyAndLockWallets(tx, call.partnerId, call.key, call.wallets ?? NO_WALLETS, now),
    ] as const));
    if (claim.stored || !claim.acquired) {
      open = false;
      await tx.query('ROLLBACK');
      if (claim.stored) return replay(claim.stored, call.fingerprint);
      throw new AppError('IDEMPOTENCY_IN_PROGRESS');
    }
    const record = (status: number, body: Record<string, unknown>, transactionId: string | null): IdempotencyRecordToStore => ({
      partnerId: call.partnerId, key: call.key, fingerprint: call.fingerprint, status, body, transactionId, createdAt: now,
    });
    let outcome: Outcome;
    try {
      const decision = await call.decide(tx, wallets, now);
      await commitLedgerWrite(tx, decision.write, record(decision.status, decision.body, decision.transactionId));
      outcome = { kind: 'applied', status: decision.status, body: decision.body };
    } catch (error) {
      if (!isAppError(error)) throw error;
      await commitRefusal(tx, record(error.status, errorBody(error.code, error.message, error.details), null));
      outcome = { kind: 'refused', error };
    }
    open = false;
    return outcome;
  } catch (error) {
    // After a failed commit round trip the transaction has already ended: this ROLLBACK is a no-op.
    if (open) await tx.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    tx.release();
  }
}

function replay(stored: IdempotencyRecord, fingerprint: Buffer): Outcome {
  if (!stored.fingerprint.equals(fingerprint)) throw new AppError('IDEMPOTENCY_KEY_REUSED');
  return { kind: 'replayed', status: stored.status, body: stored.body };
}
