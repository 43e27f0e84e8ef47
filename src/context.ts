// Everything a process shares between its HTTP routes and workers, built once at boot by
// runtime.ts's createContext and passed explicitly (no module-level singletons, so tests can build
// several apps side by side). Types only: every domain imports this file, so it imports no code.
import type { Config } from './config.ts';
import type { Db } from './infra/db.ts';
import type { Logger } from './infra/logger.ts';
import type { Metrics } from './infra/metrics.ts';
import type { Redis } from './infra/redis.ts';
import type { SharedBuckets } from './infra/shared-buckets.ts';
import type { KeyAuthenticator } from './partners/key-authenticator.ts';
import type { PendingCoupons } from './coupons/pending-coupons.ts';
import type { ClaimGate } from './claims/claim-gate.ts';
import type { ClaimTemplates } from './claims/claim-templates.ts';
import type { PointsGroupCommit } from './points/group-commit.ts';
import type { LiveClaimCounters } from './claims/live-counters.ts';

export interface AppContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Db;
  /** Pipelined connections for points ledger calls (src/points/idempotency.ts); no COPY or cursors. */
  readonly ledgerDb: Db;
  /**
   * A few connections for API key look-ups only: authentication never waits for a connection that
   * uploads, jobs or a burst of reads hold in `db` (issue 15).
   */
  readonly authDb: Db;
  /**
   * Background work's pool (job queue, claim persister, schedules; src/workers.ts hands it to them
   * as their `db`), so bulk jobs never take the connections requests need, nor the reverse.
   */
  readonly workerDb: Db;
  /** Present in distributed mode only. */
  readonly redis: Redis | undefined;
  readonly metrics: Metrics;
  readonly keys: KeyAuthenticator;
  /** Injectable "now" so time rules are tested without sleeping. */
  readonly clock: () => Date;
  /** Claims acknowledged but not yet persisted (read-your-writes); see coupons/pending-coupons.ts. */
  readonly pendingCoupons: PendingCoupons;
  /** The claim gate of this mode (src/claims/): Redis script or in-process group commit. */
  readonly claimGate: ClaimGate;
  /** Template metadata cached for the claim path. */
  readonly claimTemplates: ClaimTemplates;
  /** The batcher every mutating points call of this process goes through (src/points/group-commit.ts). */
  readonly pointsGroupCommit: PointsGroupCommit;
  /** Claim outcomes and latencies of the events someone watches live (claims/live-feed.ts). */
  readonly liveClaims: LiveClaimCounters;
  /** Per-key limits of this process, settled with Redis in the background: API key rate limits, claim throttles. */
  readonly buckets: SharedBuckets;
}

/** Starts one kind of background work (src/workers.ts runs them); the returned function stops it after flushing. */
export type WorkerStarter = (ctx: AppContext) => Promise<() => Promise<void>>;
