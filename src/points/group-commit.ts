// Group commit for mutating points calls: the calls that arrive while earlier batches are in
// PostgreSQL share one transaction and two round trips, each answered as if it ran alone and only
// after COMMIT. Which calls share a batch: group-commit-rules.ts. Why and how it was measured:
// docs/decisions/131-points-group-commit.md.
import { AppError, errorBody, isAppError } from '../errors.ts';
import type { Config } from '../config.ts';
import { isRetryableConflict, isUniqueViolation, sendTogether, withRetry, type Db } from '../infra/db.ts';
import type { Logger } from '../infra/logger.ts';
import type { Metrics } from '../infra/metrics.ts';
import { pickBatch, type WaitingCall } from './group-commit-rules.ts';
import { replay, type IdempotentCall, type Outcome } from './idempotency.ts';
import type { LedgerWrite } from './ledger-write.ts';
import {
  claimKeysAndLockWallets, commitBatch, findIdempotencyRecord, walletKey, type IdempotencyRecordToStore, type LockedWallet,
} from './ledger-repository.ts';

/** What the group commit uses of the context (it is part of it: runtime.ts createContext). */
export interface GroupCommitDeps {
  readonly db: Db;
  readonly ledgerDb: Db;
  readonly clock: () => Date;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

export interface GroupCommitLimits {
  /** Most calls in one transaction. */
  readonly maxBatch: number;
  /** Most batches in PostgreSQL at once (each holds one connection of the ledger pool). */
  readonly inFlight: number;
  /**
   * A call that cannot share its wallets (a transfer) and has waited this long gets them reserved:
   * later calls on them wait for it. Sooner, it only takes them when they happen to be free.
   */
  readonly reserveAfterMs?: number;
  /**
   * Most calls waiting in the queue, and half of it per partner; beyond, a call is refused at once
   * with 503 POINTS_QUEUE_FULL: each waiting call holds its request and its memory.
   */
  readonly maxQueued?: number;
}

/** The limits set by configuration (STAMPEDE_POINTS_BATCH_SIZE, _BATCHES_IN_FLIGHT, _QUEUE_LIMIT). */
export const groupCommitLimits = (config: Config): GroupCommitLimits => ({
  maxBatch: config.pointsBatchSize, inFlight: config.pointsBatchesInFlight, maxQueued: config.pointsQueueLimit,
});

/** Long enough that a transfer usually finds its wallets free by itself, short enough to bound its wait. */
const RESERVE_AFTER_MS = 100;

interface Queued extends WaitingCall {
  readonly call: IdempotentCall;
  readonly resolve: (outcome: Outcome) => void;
  readonly reject: (error: unknown) => void;
}

/** How one call of a batch ended: answered, or failed with an error for its client. */
type Settled = { readonly outcome: Outcome } | { readonly error: unknown };

export class PointsGroupCommit {
  private readonly queue: Queued[] = [];
  private readonly busy = new Set<string>();
  /** Queued calls per partner. */
  private readonly queuedOf = new Map<string, number>();
  private running = 0;
  private dispatchScheduled = false;

  constructor(private readonly ctx: GroupCommitDeps, private readonly limits: GroupCommitLimits) {}

  /** Runs a call once per (partner, key): applies it, replays its stored answer, or refuses. */
  run(call: IdempotentCall): Promise<Outcome> {
    const maxQueued = this.limits.maxQueued ?? Infinity;
    const ofPartner = this.queuedOf.get(call.partnerId) ?? 0;
    if (this.queue.length >= maxQueued || ofPartner >= Math.max(1, Math.ceil(maxQueued / 2))) {
      this.count(call, 'queue_full');
      return Promise.reject(new AppError('POINTS_QUEUE_FULL'));
    }
    this.queuedOf.set(call.partnerId, ofPartner + 1);
    return new Promise((resolve, reject) => {
      const wallets = call.wallets?.users.map((user) => walletKey(call.partnerId, call.wallets!.pointType, user.userId)) ?? [];
      const shares = call.operation === 'earn' || call.operation === 'use';
      const key = `${call.partnerId}\0${call.key}`;
      this.queue.push({
        call, key, wallets, holds: [key, ...wallets], alone: call.wallets === undefined, shares, since: performance.now(), resolve, reject,
      });
      this.dispatchSoon();
    });
  }

  /** Dispatches once the calls arriving in this turn of the event loop are all queued: one look at the queue for all of them. */
  private dispatchSoon(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.running < this.limits.inFlight) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.running++;
      void this.runBatch(batch).finally(() => {
        for (const queued of batch) for (const hold of queued.holds) this.busy.delete(hold);
        this.running--;
        this.dispatch();
      });
    }
  }

  /** The next batch (group-commit-rules.ts pickBatch), taken off the queue; its keys and wallets become busy. */
  private takeBatch(): Queued[] {
    const patience = performance.now() - (this.limits.reserveAfterMs ?? RESERVE_AFTER_MS);
    const picked = pickBatch(this.queue, this.busy, this.limits.maxBatch, patience);
    const batch = picked.map((i) => this.queue[i]!);
    for (const i of picked.reverse()) this.queue.splice(i, 1);
    for (const queued of batch) {
      const left = (this.queuedOf.get(queued.call.partnerId) ?? 1) - 1;
      if (left > 0) this.queuedOf.set(queued.call.partnerId, left);
      else this.queuedOf.delete(queued.call.partnerId);
      for (const hold of queued.holds) this.busy.add(hold);
    }
    return batch;
  }

  private async runBatch(batch: readonly Queued[]): Promise<void> {
    this.ctx.metrics.pointsBatchSize.observe(batch.length);
    let settled: Settled[];
    try {
      settled = await this.withRetries(batch.map((queued) => queued.call));
    } catch (error) {
      if (batch.length === 1) {
        settled = [await this.settleFailure(batch[0]!.call, error)];
      } else {
        this.ctx.logger.warn({ err: error, calls: batch.length }, 'points batch failed; running its calls one by one');
        settled = await Promise.all(batch.map((queued) =>
          this.withRetries([queued.call]).then(([alone]) => alone!, (single: unknown) => this.settleFailure(queued.call, single))));
      }
    }
    batch.forEach((queued, i) => {
      const result = settled[i]!;
      if ('outcome' in result) {
        this.count(queued.call, result.outcome.kind === 'applied' ? 'ok' : result.outcome.kind);
        queued.resolve(result.outcome);
      } else {
        queued.reject(result.error);
      }
    });
  }

  private async withRetries(calls: readonly IdempotentCall[]): Promise<Settled[]> {
    let attempts = 0;
    const settled = await withRetry(() => {
      attempts++;
      return this.attempt(calls);
    });
    if (attempts > 1) for (const call of calls) this.count(call, 'retried', attempts - 1);
    return settled;
  }

  /**
   * The answer for a call whose own transaction failed: the stored answer if another writer
   * committed its key first, 503 if it kept conflicting, else the error itself (a 500).
   */
  private async settleFailure(call: IdempotentCall, error: unknown): Promise<Settled> {
    if (isUniqueViolation(error, 'point_idempotency_pkey')) {
      try {
        const stored = await findIdempotencyRecord(this.ctx.db, call.partnerId, call.key);
        return stored ? settle(() => replay(stored, call.fingerprint)) : { error: new AppError('IDEMPOTENCY_IN_PROGRESS') };
      } catch (lookup) {
        return { error: lookup };
      }
    }
    if (isRetryableConflict(error)) {
      this.ctx.logger.error({ err: error, operation: call.operation }, 'points transaction kept conflicting; giving up');
      return { error: new AppError('SERVICE_UNAVAILABLE', 'The wallet is too busy right now; retry shortly.') };
    }
    return { error };
  }

  private async attempt(calls: readonly IdempotentCall[]): Promise<Settled[]> {
    const tx = await this.ctx.ledgerDb.connect();
    let open = true;
    try {
      const now = this.ctx.clock();
      // One round trip: these statements are written back to back and run in this order.
      const [, claims] = await Promise.all(sendTogether(tx, () => [
        tx.query('BEGIN'),
        claimKeysAndLockWallets(tx, calls.map((call) => ({ partnerId: call.partnerId, key: call.key, wallets: call.wallets ?? NO_WALLETS })), now),
      ] as const));
      const writes: LedgerWrite[] = [];
      const records: IdempotencyRecordToStore[] = [];
      const settled: Settled[] = [];
      // Calls sharing a wallet decide one after another on its state so far: uses first, on the
      // lots that existed before the batch; then earns, whose new lots no call of the batch needs
      // (their ids exist only once written). The calls were all in flight at once: any order is
      // one they could have run in alone.
      const current = new Map<number, LockedWallet>();
      for (const i of decisionOrder(calls)) {
        const call = calls[i]!;
        const { claim } = claims[i]!;
        const wallets = claims[i]!.wallets.map((wallet) => current.get(wallet.id) ?? wallet);
        const record = (status: number, body: Record<string, unknown>, transactionId: string | null): IdempotencyRecordToStore => ({
          partnerId: call.partnerId, key: call.key, fingerprint: call.fingerprint, status, body, transactionId, createdAt: now,
        });
        if (claim.stored) {
          settled[i] = settle(() => replay(claim.stored!, call.fingerprint));
        } else if (!claim.acquired) {
          settled[i] = { error: new AppError('IDEMPOTENCY_IN_PROGRESS') };
        } else {
          try {
            const decision = await call.decide(tx, wallets, now);
            for (const wallet of wallets) current.set(wallet.id, afterWrite(wallet, decision.write));
            writes.push(decision.write);
            records.push(record(decision.status, decision.body, decision.transactionId));
            settled[i] = { outcome: { kind: 'applied', status: decision.status, body: decision.body } };
          } catch (error) {
            if (!isAppError(error)) throw error;
            records.push(record(error.status, errorBody(error.code, error.message, error.details), null));
            settled[i] = { outcome: { kind: 'refused', error } };
          }
        }
      }
      open = false;
      await (records.length > 0 ? commitBatch(tx, writes, records) : tx.query('ROLLBACK'));
      return settled;
    } catch (error) {
      // After a failed commit round trip the transaction has already ended: this ROLLBACK is a no-op.
      if (open) await tx.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      tx.release();
    }
  }

  private count(call: IdempotentCall, outcome: string, by = 1): void {
    this.ctx.metrics.pointsOperations.inc({ operation: call.operation, outcome }, by);
  }
}

const NO_WALLETS = { pointType: '', users: [] };

/** Indexes of the calls in the order they decide: uses first, then the others, each in arrival order. */
const decisionOrder = (calls: readonly IdempotentCall[]): number[] => {
  const indexes = [...calls.keys()];
  return [...indexes.filter((i) => calls[i]!.operation === 'use'), ...indexes.filter((i) => calls[i]!.operation !== 'use')];
};

/** A wallet as the next call of the batch sees it: this write's balance change and lot changes applied. */
const afterWrite = (wallet: LockedWallet, write: LedgerWrite): LockedWallet => ({
  ...wallet,
  balance: wallet.balance + write.deltaOf(wallet.id),
  lots: wallet.lots.map((lot) => {
    const delta = write.lotDeltas.get(lot.id);
    return delta === undefined ? lot : { ...lot, remaining: lot.remaining + delta };
  }),
});

function settle(answer: () => Outcome): Settled {
  try {
    return { outcome: answer() };
  } catch (error) {
    return { error };
  }
}
