// Group commit for mutating points calls: the calls that arrive while earlier batches are in
// PostgreSQL share one transaction and two round trips, instead of each paying its own.
//
// A batch (repository.ts):
//   1. BEGIN; create the missing wallets of its earns and transfers' receivers; claim every call's
//      idempotency key and lock the wallets of the calls whose key is ours and new, all in one
//      ascending id order; read the lots their decisions need.
//   2. Each call decides (ledger.ts: pure, but for a cancel's reads). A stored record answers a
//      replay (or 422); a key held elsewhere answers 409.
//   3. ONE statement writes every decision and every idempotency record (answers and refusals),
//      then COMMIT; only then is any call of the batch answered.
//
// Keys are distinct within a batch and across the batches this process has in flight, and so are
// wallets across batches in flight: a call whose key or wallet is busy waits in the queue, in
// arrival order, for the batch holding it to end. So batches of one process never wait on each
// other's locks, and a replay sent while its first request is still queued is answered from the
// stored record. Within a batch, earns and uses may share a wallet (a hot wallet's queue drains a
// batch at a time, not a call at a time) and decide one after another on its state so far; a
// transfer's wallets are its own; a cancel (wallet unknown up front) runs alone.
//
// Nothing waits for company: a batch leaves as soon as a slot is free (looked for once per turn of
// the event loop, so the calls that arrived together leave together), an idle server answers a lone
// call at once, and batches grow only while the slots are busy (load).
//
// Failure: a batch is retried whole on serialization failures and deadlocks (jittered, bounded).
// Any other failure of a batch of several (a key a bulk accrual committed meanwhile, a bug that
// trips a CHECK) rolls it all back, and its calls are run again one by one, so one call's problem
// is answered to that call only. Written by hand: the batching is the ledger's own locking and
// idempotency protocol, which no queue library knows.
import { AppError, errorBody, isAppError } from '../errors.ts';
import { isRetryableConflict, isUniqueViolation, sendTogether, withRetry } from '../infra/db.ts';
import type { AppContext } from '../context.ts';
import { replay, type IdempotentCall, type Outcome } from './idempotency.ts';
import type { LedgerWrite } from './ledger-write.ts';
import {
  claimKeysAndLockWallets, commitBatch, findIdempotencyRecord, walletKey, type IdempotencyRecordToStore, type LockedWallet,
} from './ledger-repository.ts';

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

/** Long enough that a transfer usually finds its wallets free by itself, short enough to bound its wait. */
const RESERVE_AFTER_MS = 100;

interface Queued {
  readonly call: IdempotentCall;
  readonly key: string;
  /** The call's wallets; none for a call that runs alone (a cancel: its wallet is not known up front). */
  readonly wallets: readonly string[];
  /** The key and the wallets: what a batch holding the call makes busy. */
  readonly holds: readonly string[];
  readonly alone: boolean;
  /** An earn or a use: may share its wallet with other earns and uses of its batch. */
  readonly shares: boolean;
  /** When it was queued (performance.now()). */
  readonly since: number;
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

  constructor(private readonly ctx: AppContext, private readonly limits: GroupCommitLimits) {}

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

  /**
   * The oldest calls that fit together: keys and wallets no batch in flight holds, distinct keys,
   * a wallet shared only by earns and uses; or one call that runs alone. A call that cannot share
   * and has waited `reserveAfterMs` has what it waits for reserved: no later call takes it. (A
   * transfer between two hot wallets otherwise waits until both are free at once, which under load
   * they may never be: seconds. Reserving at once instead queues each hot wallet behind every
   * transfer on it: p95 450–900 ms → 1.1 s in bench:points.)
   */
  private takeBatch(): Queued[] {
    const batch: Queued[] = [];
    const keys = new Set<string>();
    const wallets = new Map<string, boolean>(); // the batch's wallets → whether only earns and uses hold them
    const reserved = new Set<string>(); // keys and wallets of older calls that waited too long
    const patience = performance.now() - (this.limits.reserveAfterMs ?? RESERVE_AFTER_MS);
    const free = (hold: string) => !this.busy.has(hold) && !reserved.has(hold);
    const joinable = (wallet: string, shares: boolean) => free(wallet) && (wallets.get(wallet) ?? true) && (shares || !wallets.has(wallet));
    for (let i = 0; i < this.queue.length && batch.length < this.limits.maxBatch;) {
      const queued = this.queue[i]!;
      const fits = queued.alone
        ? batch.length === 0 && free(queued.key)
        : free(queued.key) && !keys.has(queued.key) && queued.wallets.every((wallet) => joinable(wallet, queued.shares));
      if (!fits) {
        if (!queued.shares && queued.since <= patience) for (const hold of queued.holds) reserved.add(hold);
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      const left = (this.queuedOf.get(queued.call.partnerId) ?? 1) - 1;
      if (left > 0) this.queuedOf.set(queued.call.partnerId, left);
      else this.queuedOf.delete(queued.call.partnerId);
      batch.push(queued);
      if (queued.alone) break;
      keys.add(queued.key);
      for (const wallet of queued.wallets) wallets.set(wallet, queued.shares && (wallets.get(wallet) ?? true));
    }
    for (const queued of batch) for (const hold of queued.holds) this.busy.add(hold);
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
