// Configuration is read once from the environment, validated, typed and frozen. Every bad key is
// reported at once so an operator fixes them in one go. Names are part of the public contract
// (docs/configuration.md; .env.example lists the same, a test keeps them equal to what this file
// reads); new ones are STAMPEDE_-prefixed.
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseCronItem } from 'graphile-worker';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Unset: embedded PostgreSQL under dataDir. */
  readonly databaseUrl: string | undefined;
  /** Unset: in-process claim gate, in-process caches and rate limits. */
  readonly redisUrl: string | undefined;
  /** How REDIS_URL is read: one Redis, a Redis Cluster's seed nodes, or the Sentinels of a primary. */
  readonly redisMode: 'single' | 'cluster' | 'sentinel';
  /** Sentinel mode: the name of the master the Sentinels monitor. */
  readonly redisSentinelMaster: string | undefined;
  /** A claim is answered 201 only once this many replicas have it (WAIT); 0: once the primary has it. */
  readonly redisMinReplicas: number;
  /** How long a claim waits for those replicas before it is answered 503 CLAIM_NOT_REPLICATED. */
  readonly redisReplicaTimeoutMs: number;
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
  /**
   * Key of the AES-256-GCM seal on stored secrets (partners' SQL source URLs). Unset in embedded
   * mode: generated once and kept in the data directory (runtime.ts).
   */
  readonly secretKey: string | undefined;
  /** A partner's source query: each statement (FETCH) must answer within this time. */
  readonly sourceStatementTimeoutMs: number;
  /** Most rows a job reads from a partner's SQL source. */
  readonly sourceMaxRows: number;
  /** Most unfinished (queued or running) jobs per partner. */
  readonly partnerMaxQueuedJobs: number;
  /** Most bytes of staged input over a partner's unfinished jobs. */
  readonly partnerMaxStagedBytes: number;
  /** Cron schedule (graphile-worker crontab syntax) of the point expiry job. */
  readonly pointsExpirySchedule: string;
  /** Cron schedule of the daily points.expiring digest (one per partner and UTC day). */
  readonly pointsExpiringSchedule: string;
  /** Cron schedule of the claim reconcile that feeds stampede_reconcile_drift (distributed mode). */
  readonly reconcileSchedule: string;
  /** Set: every schedule (points expiry, reconcile, job retention) runs this often instead of on its cron (tests, demos). */
  readonly scheduleIntervalMs: number | undefined;
  readonly shutdownTimeoutMs: number;
  /** `stampede worker` serves /metrics and /health on this port; unset: it serves no HTTP. */
  readonly metricsPort: number | undefined;
  /** Most claims the persister (or the embedded group commit) writes in one transaction. */
  readonly claimBatchSize: number;
  /** A claim delivered to a persister and not acknowledged for this long is taken over by another. */
  readonly claimReclaimIdleMs: number;
  /** Embedded gate: how long a free commit slot waits for more claims (0: to the end of the event-loop turn, no timer). */
  readonly claimGroupCommitMs: number;
  /** Distributed: how long a refusal flag is trusted without the gate confirming it (0: no shortcut refusals). */
  readonly claimRefusalFlagTtlMs: number;
  /** Embedded gate: group commits in PostgreSQL at once (claims arriving during one go out beside it). */
  readonly claimCommitsInFlight: number;
  /** Most points calls in one ledger transaction (src/points/group-commit.ts). */
  readonly pointsBatchSize: number;
  /** Most ledger transactions a process has in PostgreSQL at once. */
  readonly pointsBatchesInFlight: number;
  /** Bulk jobs (distributions, accruals) a worker process runs at once, each on its own connection. */
  readonly bulkJobConcurrency: number;
  /** Finished jobs, with their failures and webhook deliveries, are deleted this long after they finish. */
  readonly jobRetentionDays: number;
  // uploads and pools (h-uploads)
  /** A bulk request body (CSV distribution, accrual) must have arrived this long after it started, trickling or not. */
  readonly uploadDeadlineMs: number;
  /** CSV uploads one partner may have in progress at once in a process (beyond: 429). */
  readonly uploadsPerPartner: number;
  /** CSV uploads a process receives at once, all partners together (beyond: 503). */
  readonly uploadsTotal: number;
  /** Live-stream viewers (GET /v1/coupon-templates/{id}/live) one partner may hold open in a process (beyond: 429). */
  readonly liveViewersPerPartner: number;
  /** Live-stream viewers a process serves at once, all partners together (beyond: 503). */
  readonly liveViewersTotal: number;
  /** Where CSV uploads are spooled until they are staged; leftovers are deleted at start. */
  readonly uploadDir: string;
  /** How long a request waits for a pooled PostgreSQL connection before it answers 503 DATABASE_BUSY. */
  readonly dbAcquireTimeoutMs: number;
  /** Connections of the pool reserved for API key look-ups, so auth never waits behind other work. */
  readonly dbAuthPoolSize: number;
  // --- auth, durability and process hardening (h-auth) ---
  /** Look-ups of API keys that do not exist one client address may make per minute (per process). */
  readonly unknownKeyLookupsPerMinute: number;
  /** Points calls waiting for a ledger transaction in one process beyond which new ones get 503. */
  readonly pointsQueueLimit: number;
  /**
   * Fastify's trustProxy: false (the client address is the socket's), a hop count, or the proxies'
   * addresses and CIDR ranges; then the client address is the last trusted hop of X-Forwarded-For.
   */
  readonly trustProxy: false | number | string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/** STAMPEDE_TRUST_PROXY: unset (false), a hop count 1–16, or a comma-separated list of addresses, CIDR ranges and range names. */
function parseTrustProxy(raw: string | undefined, problems: string[]): false | number | string[] {
  if (raw === undefined || raw.trim() === '') return false;
  const value = raw.trim();
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops >= 1 && hops <= 16) return hops;
    problems.push(`STAMPEDE_TRUST_PROXY=${JSON.stringify(raw)}: a hop count must be between 1 and 16`);
    return false;
  }
  const entries = value.split(',').map((entry) => entry.trim());
  const bad = entries.filter((entry) => {
    if (PROXY_RANGE_NAMES.includes(entry)) return false;
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || rest.length > 0) return true;
    return prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
  });
  if (entries.length > 64 || bad.length > 0) {
    problems.push(`STAMPEDE_TRUST_PROXY=${JSON.stringify(raw)}: expected a hop count or up to 64 comma-separated addresses, CIDR ranges or ${PROXY_RANGE_NAMES.join('/')}${bad.length > 0 ? ` (not understood: ${bad.join(', ')})` : ''}`);
    return false;
  }
  return entries;
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
  const urlList = (name: string, protocols: string[]): string | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const parts = raw.split(',').map((part) => part.trim()).filter((part) => part !== '');
    if (parts.length === 0 || parts.length > 64) problems.push(`${name}: expected 1 to 64 comma-separated URLs`);
    for (const part of parts) {
      try {
        if (!protocols.includes(new URL(part).protocol)) problems.push(`${name}: protocol must be one of ${protocols.join(', ')}`);
      } catch {
        problems.push(`${name}: not a list of valid URLs`);
      }
    }
    return raw;
  };
  // Checked here, not when the schedule first fires: a typo would otherwise surface hours later.
  const cron = (name: string, fallback: string): string => {
    const raw = env[name] || fallback;
    try {
      parseCronItem({ task: 'check', match: raw });
    } catch (error) {
      problems.push(`${name}=${JSON.stringify(raw)}: not a cron schedule (minute hour day-of-month month day-of-week): ${(error as Error).message}`);
      return fallback;
    }
    return raw;
  };

  const logLevel = (env.LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL=${JSON.stringify(env.LOG_LEVEL)}: expected one of ${LOG_LEVELS.join(', ')}`);

  const adminToken = env.STAMPEDE_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) problems.push('STAMPEDE_ADMIN_TOKEN: must be at least 16 characters');

  const secretKey = env.STAMPEDE_SECRET_KEY || undefined;
  if (secretKey !== undefined && secretKey.length < 32) problems.push('STAMPEDE_SECRET_KEY: must be at least 32 characters (e.g. openssl rand -base64 32)');
  // Removed (issue 15): one source for every partner let any partner read what that URL could read.
  if (env.STAMPEDE_SOURCE_DATABASE_URL) problems.push('STAMPEDE_SOURCE_DATABASE_URL: no longer supported; register each partner\'s own source with PUT /v1/partners/{id}/sql-source');

  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const redisMode = (env.STAMPEDE_REDIS_MODE || 'single') as Config['redisMode'];
  if (!['single', 'cluster', 'sentinel'].includes(redisMode)) problems.push(`STAMPEDE_REDIS_MODE=${JSON.stringify(env.STAMPEDE_REDIS_MODE)}: expected one of single, cluster, sentinel`);
  // Outside single mode REDIS_URL lists several nodes (cluster seeds or Sentinels), comma-separated.
  const redisUrl = redisMode === 'single' ? url('REDIS_URL', ['redis:', 'rediss:']) : urlList('REDIS_URL', ['redis:', 'rediss:']);
  const redisSentinelMaster = env.STAMPEDE_REDIS_SENTINEL_MASTER || undefined;
  if (redisMode === 'sentinel' && redisUrl !== undefined && redisSentinelMaster === undefined) problems.push('STAMPEDE_REDIS_SENTINEL_MASTER: required when STAMPEDE_REDIS_MODE=sentinel (the master name the Sentinels monitor)');
  if (redisSentinelMaster !== undefined && !/^[\x21-\x7E]{1,200}$/.test(redisSentinelMaster)) problems.push('STAMPEDE_REDIS_SENTINEL_MASTER: expected 1 to 200 printable ASCII characters');

  // Embedded mode is for one machine: its admin API stays on loopback unless HOST opens it.
  const host = env.HOST || (databaseUrl === undefined ? '127.0.0.1' : '0.0.0.0');
  if (isIP(host) === 0 && !/^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$/i.test(host)) problems.push(`HOST=${JSON.stringify(host)}: expected an IP address or a host name`);

  const trustProxy = parseTrustProxy(env.STAMPEDE_TRUST_PROXY, problems);

  const config: Config = {
    port: int('PORT', 3000, 0, 65535),
    host,
    databaseUrl,
    redisUrl,
    redisMode,
    redisSentinelMaster,
    redisMinReplicas: int('STAMPEDE_REDIS_MIN_REPLICAS', 0, 0, 16),
    redisReplicaTimeoutMs: int('STAMPEDE_REDIS_REPLICA_TIMEOUT_MS', 1_000, 10, 60_000),
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
    secretKey,
    sourceStatementTimeoutMs: int('STAMPEDE_SOURCE_STATEMENT_TIMEOUT_MS', 30_000, 100, 3_600_000),
    sourceMaxRows: int('STAMPEDE_SOURCE_MAX_ROWS', 10_000_000, 1, 1_000_000_000),
    partnerMaxQueuedJobs: int('STAMPEDE_PARTNER_MAX_QUEUED_JOBS', 50, 1, 100_000),
    partnerMaxStagedBytes: int('STAMPEDE_PARTNER_MAX_STAGED_BYTES', 8 * 1024 ** 3, 1_024, Number.MAX_SAFE_INTEGER),
    pointsExpirySchedule: cron('STAMPEDE_POINTS_EXPIRY_SCHEDULE', '0 * * * *'),
    pointsExpiringSchedule: cron('STAMPEDE_POINTS_EXPIRING_SCHEDULE', '0 8 * * *'),
    reconcileSchedule: cron('STAMPEDE_RECONCILE_SCHEDULE', '* * * * *'),
    scheduleIntervalMs: env.STAMPEDE_SCHEDULE_INTERVAL_MS ? int('STAMPEDE_SCHEDULE_INTERVAL_MS', 0, 100, 86_400_000) : undefined,
    shutdownTimeoutMs: int('STAMPEDE_SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    metricsPort: env.STAMPEDE_METRICS_PORT ? int('STAMPEDE_METRICS_PORT', 0, 0, 65535) : undefined,
    claimBatchSize: int('STAMPEDE_CLAIM_BATCH_SIZE', 1_000, 1, 10_000),
    claimReclaimIdleMs: int('STAMPEDE_CLAIM_RECLAIM_IDLE_MS', 30_000, 100, 3_600_000),
    claimGroupCommitMs: int('STAMPEDE_CLAIM_GROUP_COMMIT_MS', 0, 0, 1_000),
    claimRefusalFlagTtlMs: int('STAMPEDE_CLAIM_REFUSAL_FLAG_TTL_MS', 1_000, 0, 60_000),
    claimCommitsInFlight: int('STAMPEDE_CLAIM_COMMITS_IN_FLIGHT', 2, 1, 16),
    pointsBatchSize: int('STAMPEDE_POINTS_BATCH_SIZE', 100, 1, 1_000),
    pointsBatchesInFlight: int('STAMPEDE_POINTS_BATCHES_IN_FLIGHT', 4, 1, 100),
    bulkJobConcurrency: int('STAMPEDE_BULK_JOB_CONCURRENCY', 2, 1, 64),
    jobRetentionDays: int('STAMPEDE_JOB_RETENTION_DAYS', 30, 1, 3650),
    // uploads and pools (h-uploads)
    uploadDeadlineMs: int('STAMPEDE_UPLOAD_DEADLINE_MS', 900_000, 1_000, 86_400_000),
    uploadsPerPartner: int('STAMPEDE_UPLOADS_PER_PARTNER', 2, 1, 1_000),
    uploadsTotal: int('STAMPEDE_UPLOADS_TOTAL', 4, 1, 10_000),
    liveViewersPerPartner: int('STAMPEDE_LIVE_VIEWERS_PER_PARTNER', 250, 1, 10_000),
    liveViewersTotal: int('STAMPEDE_LIVE_VIEWERS_TOTAL', 1_000, 1, 100_000),
    uploadDir: path.resolve(env.STAMPEDE_UPLOAD_DIR || path.join(os.tmpdir(), 'stampede-uploads')),
    dbAcquireTimeoutMs: int('STAMPEDE_DB_ACQUIRE_TIMEOUT_MS', 5_000, 100, 600_000),
    dbAuthPoolSize: int('STAMPEDE_DB_AUTH_POOL_SIZE', 4, 1, 100),
    // --- auth, durability and process hardening (h-auth) ---
    unknownKeyLookupsPerMinute: int('STAMPEDE_UNKNOWN_KEY_LOOKUPS_PER_MINUTE', 60, 1, 1_000_000),
    pointsQueueLimit: int('STAMPEDE_POINTS_QUEUE_LIMIT', 20_000, 1, 10_000_000),
    trustProxy,
  };

  // The embedded claim gate lives in one process; N processes would each sell the whole stock.
  if (config.processes > 1 && redisUrl === undefined) problems.push('STAMPEDE_PROCESSES > 1 requires distributed mode: set REDIS_URL (the embedded claim gate is in-process)');
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

export const isDistributed = (config: Config): boolean => config.redisUrl !== undefined;

/** The Redis to connect to, as src/infra/redis.ts takes it (distributed mode only). */
export const redisTargetOf = (config: Config) => ({ url: config.redisUrl!, mode: config.redisMode, sentinelMaster: config.redisSentinelMaster });
