// Configuration is read once from the environment, validated, typed and frozen. Every bad key is
// reported at once so an operator fixes them in one go. Names are part of the public contract
// (DESIGN.md section 6); new ones are STAMPEDE_-prefixed.
import os from 'node:os';
import path from 'node:path';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Unset: embedded PostgreSQL under dataDir. */
  readonly databaseUrl: string | undefined;
  /** Unset: in-process claim gate, in-process caches and rate limits. */
  readonly redisUrl: string | undefined;
  /** Unset in embedded mode: a token is generated and printed once at startup. */
  readonly adminToken: string | undefined;
  readonly dataDir: string;
  /** Port of the embedded PostgreSQL; 0 picks a free one. */
  readonly embeddedPgPort: number;
  readonly processes: number;
  readonly workers: boolean;
  readonly logLevel: LogLevel;
  readonly dbPoolSize: number;
  /** Start `serve` even if Redis is not configured for durability (noeviction + AOF). */
  readonly allowUnsafeRedis: boolean;
  /** Accept webhook receivers on loopback / private / link-local addresses (src/jobs/webhook-address.ts). */
  readonly webhookAllowPrivate: boolean;
  /** Requests per second allowed per API key unless the partner overrides it. */
  readonly rateLimitPerSecond: number;
  /** Lifetime of an API key in the in-process cache; bounds how late revocation is seen. */
  readonly apiKeyCacheMs: number;
  readonly bodyLimitBytes: number;
  /** A connection that sends and receives nothing for this long is closed (a stalled upload too). */
  readonly idleTimeoutMs: number;
  /** Read-only database that bulk distributions may read user ids from. */
  readonly sourceDatabaseUrl: string | undefined;
  /** Cron schedule (graphile-worker crontab syntax) of the point expiry job. */
  readonly pointsExpirySchedule: string;
  /** Cron schedule of the claim reconcile that feeds stampede_reconcile_drift (distributed mode). */
  readonly reconcileSchedule: string;
  readonly shutdownTimeoutMs: number;
  /** `stampede worker` serves /metrics and /health on this port; unset: it serves no HTTP. */
  readonly metricsPort: number | undefined;
  /** Most claims the persister (or the embedded group commit) writes in one transaction. */
  readonly claimBatchSize: number;
  /** A claim delivered to a persister and not acknowledged for this long is taken over by another. */
  readonly claimReclaimIdleMs: number;
  /** Embedded gate: how long an idle group commit waits for more claims before committing. */
  readonly claimGroupCommitMs: number;
  /** Most points calls in one ledger transaction (src/points/group-commit.ts). */
  readonly pointsBatchSize: number;
  /** Most ledger transactions a process has in PostgreSQL at once. */
  readonly pointsBatchesInFlight: number;
  /** Bulk jobs (distributions, accruals) a worker process runs at once, each on its own connection. */
  readonly bulkJobConcurrency: number;
  /** Finished jobs, with their failures and webhook deliveries, are deleted this long after they finish. */
  readonly jobRetentionDays: number;
  // --- auth, durability and process hardening (h-auth) ---
  /** Look-ups of API keys that do not exist one client address may make per minute (per process). */
  readonly unknownKeyLookupsPerMinute: number;
  /** Points calls waiting for a ledger transaction in one process beyond which new ones get 503. */
  readonly pointsQueueLimit: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected an integer between ${min} and ${max}`);
      return fallback;
    }
    return value;
  };
  const bool = (name: string, fallback: boolean, truthy = ['1', 'true', 'on', 'yes'], falsy = ['0', 'false', 'off', 'no']): boolean => {
    const raw = env[name]?.toLowerCase();
    if (raw === undefined || raw === '') return fallback;
    if (truthy.includes(raw)) return true;
    if (falsy.includes(raw)) return false;
    problems.push(`${name}=${JSON.stringify(env[name])}: expected one of ${[...truthy, ...falsy].join(', ')}`);
    return fallback;
  };
  const url = (name: string, protocols: string[]): string | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) problems.push(`${name}: protocol must be one of ${protocols.join(', ')}`);
    } catch {
      problems.push(`${name}: not a valid URL`);
    }
    return raw;
  };

  const logLevel = (env.LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL=${JSON.stringify(env.LOG_LEVEL)}: expected one of ${LOG_LEVELS.join(', ')}`);

  const adminToken = env.STAMPEDE_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) problems.push('STAMPEDE_ADMIN_TOKEN: must be at least 16 characters');

  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const redisUrl = url('REDIS_URL', ['redis:', 'rediss:']);

  const config: Config = {
    port: int('PORT', 3000, 0, 65535),
    host: env.HOST || '0.0.0.0',
    databaseUrl,
    redisUrl,
    adminToken,
    dataDir: path.resolve(env.STAMPEDE_DATA_DIR || './.stampede'),
    embeddedPgPort: int('STAMPEDE_EMBEDDED_PG_PORT', 0, 0, 65535),
    processes: int('STAMPEDE_PROCESSES', 1, 1, Math.max(64, os.availableParallelism() * 4)),
    workers: bool('STAMPEDE_WORKERS', true),
    logLevel,
    dbPoolSize: int('STAMPEDE_DB_POOL_SIZE', 20, 1, 500),
    allowUnsafeRedis: bool('STAMPEDE_ALLOW_UNSAFE_REDIS', false),
    webhookAllowPrivate: bool('STAMPEDE_WEBHOOK_ALLOW_PRIVATE', false),
    rateLimitPerSecond: int('STAMPEDE_RATE_LIMIT_PER_SECOND', 50_000, 1, 10_000_000),
    apiKeyCacheMs: int('STAMPEDE_API_KEY_CACHE_MS', 500, 0, 60_000),
    bodyLimitBytes: int('STAMPEDE_BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
    idleTimeoutMs: int('STAMPEDE_IDLE_TIMEOUT_MS', 120_000, 1_000, 3_600_000),
    sourceDatabaseUrl: url('STAMPEDE_SOURCE_DATABASE_URL', ['postgres:', 'postgresql:']),
    pointsExpirySchedule: env.STAMPEDE_POINTS_EXPIRY_SCHEDULE || '0 * * * *',
    reconcileSchedule: env.STAMPEDE_RECONCILE_SCHEDULE || '* * * * *',
    shutdownTimeoutMs: int('STAMPEDE_SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    metricsPort: env.STAMPEDE_METRICS_PORT ? int('STAMPEDE_METRICS_PORT', 0, 0, 65535) : undefined,
    claimBatchSize: int('STAMPEDE_CLAIM_BATCH_SIZE', 1_000, 1, 10_000),
    claimReclaimIdleMs: int('STAMPEDE_CLAIM_RECLAIM_IDLE_MS', 30_000, 100, 3_600_000),
    claimGroupCommitMs: int('STAMPEDE_CLAIM_GROUP_COMMIT_MS', 2, 0, 1_000),
    pointsBatchSize: int('STAMPEDE_POINTS_BATCH_SIZE', 100, 1, 1_000),
    pointsBatchesInFlight: int('STAMPEDE_POINTS_BATCHES_IN_FLIGHT', 4, 1, 100),
    bulkJobConcurrency: int('STAMPEDE_BULK_JOB_CONCURRENCY', 2, 1, 64),
    jobRetentionDays: int('STAMPEDE_JOB_RETENTION_DAYS', 30, 1, 3650),
    // --- auth, durability and process hardening (h-auth) ---
    unknownKeyLookupsPerMinute: int('STAMPEDE_UNKNOWN_KEY_LOOKUPS_PER_MINUTE', 60, 1, 1_000_000),
    pointsQueueLimit: int('STAMPEDE_POINTS_QUEUE_LIMIT', 20_000, 1, 10_000_000),
  };

  // The embedded claim gate lives in one process; N processes would each sell the whole stock.
  if (config.processes > 1 && redisUrl === undefined) problems.push('STAMPEDE_PROCESSES > 1 requires distributed mode: set REDIS_URL (the embedded claim gate is in-process)');
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

export const isDistributed = (config: Config): boolean => config.redisUrl !== undefined;
