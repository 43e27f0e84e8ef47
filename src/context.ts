// Everything a process shares between its HTTP routes and workers, built once at boot and passed
// explicitly (no module-level singletons, so tests can build several apps side by side).
import type { Config } from './config.ts';
import type { Db } from './infra/db.ts';
import type { Logger } from './infra/logger.ts';
import type { Metrics } from './infra/metrics.ts';
import { observeResources } from './infra/resource-metrics.ts';
import { observeClaimBacklog } from './claims/claim-backlog.ts';
import type { Redis } from './infra/redis.ts';
import { KeyAuthenticator } from './partners/key-authenticator.ts';
import type { PendingCoupons } from './coupons/pending-coupons.ts';
import type { ClaimGate } from './claims/claim-gate.ts';
import type { ClaimTemplates } from './claims/claim-templates.ts';
import { createClaimParts } from './claims/claim-wiring.ts';
import { LiveClaimCounters } from './claims/live-counters.ts';

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
  /** Claim outcomes and latencies of the events someone watches live (claims/live-feed.ts). */
  readonly liveClaims: LiveClaimCounters;
}

// Without Redis one process serves the API and drops revoked keys itself, so a long local cache
// is safe; with Redis other processes learn of revocation through it within the local TTL.
const EMBEDDED_KEY_CACHE_MS = 300_000;

export function createContext(parts: {
  config: Config;
  logger: Logger;
  db: Db;
  ledgerDb: Db;
  authDb: Db;
  workerDb: Db;
  redis: Redis | undefined;
  metrics: Metrics;
  clock?: () => Date;
}): AppContext {
  const keyCacheMs = parts.redis ? parts.config.apiKeyCacheMs : EMBEDDED_KEY_CACHE_MS;
  observeResources(parts.metrics, { general: parts.db, ledger: parts.ledgerDb, auth: parts.authDb, worker: parts.workerDb }, parts.redis);
  if (parts.redis) observeClaimBacklog(parts.metrics, parts.redis);
  const clock = parts.clock ?? (() => new Date());
  return {
    ...parts,
    keys: new KeyAuthenticator(parts.authDb, parts.redis, { localTtlMs: keyCacheMs, unknownKeyLookupsPerMinute: parts.config.unknownKeyLookupsPerMinute }),
    clock,
    liveClaims: new LiveClaimCounters(),
    ...createClaimParts({ ...parts, clock }),
  };
}
