// Assembles a process's shared resources from configuration: PostgreSQL (embedded or given),
// migrations, Redis (distributed mode, with its durability check) and the context. Closing
// releases them in reverse order.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isDistributed, type Config } from './config.ts';
import { createContext, type AppContext } from './context.ts';
import { createPool } from './infra/db.ts';
import { startEmbeddedPostgres } from './infra/embedded-postgres.ts';
import type { Logger } from './infra/logger.ts';
import { createMetrics } from './infra/metrics.ts';
import { migrate } from './infra/migrate.ts';
import { connectRedis, redisDurabilityProblems } from './infra/redis.ts';

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

export async function openRuntime(config: Config, logger: Logger, options: RuntimeOptions): Promise<Runtime> {
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch((error: unknown) => logger.warn({ err: error }, 'close failed'));
  };
  try {
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
      closers.push(() => embedded.stop());
      databaseUrl = embedded.url;
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
      const client = await connectRedis(config.redisUrl!, logger);
      redis = client;
      closers.push(async () => { await client.close(); });
      if (options.checkRedisDurability) {
        const problems = await redisDurabilityProblems(client);
        if (problems.length > 0 && !config.allowUnsafeRedis) {
          throw new Error(`Redis is not safe for the claim gate: ${problems.join('; ')}. ` +
            'Fix its configuration, or set STAMPEDE_ALLOW_UNSAFE_REDIS=true to run anyway (acknowledged claims may be lost).');
        }
        if (problems.length > 0) logger.warn({ problems }, 'running on an unsafe Redis because STAMPEDE_ALLOW_UNSAFE_REDIS is set');
      }
    }

    const ctx = createContext({ config, logger, db, ledgerDb, authDb, workerDb, redis, metrics: createMetrics() });
    return { ctx, databaseUrl, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The admin token: STAMPEDE_ADMIN_TOKEN, or in embedded mode one generated on first start and kept
 * in the data directory (printed when created, so the operator can copy it once).
 */
export async function resolveAdminToken(config: Config, logger: Logger): Promise<string | undefined> {
  if (config.adminToken) return config.adminToken;
  if (isDistributed(config) || config.databaseUrl !== undefined) {
    logger.warn('STAMPEDE_ADMIN_TOKEN is not set: the admin API is disabled');
    return undefined;
  }
  const file = path.join(config.dataDir, 'admin-token');
  try {
    const token = (await readFile(file, 'utf8')).trim();
    logger.info({ file }, 'admin token loaded from the data directory');
    return token;
  } catch {
    const token = randomBytes(24).toString('base64url');
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    await writeFile(file, token, { mode: 0o600 });
    process.stdout.write(`\n  Stampede admin token (shown once, kept in ${file}):\n  ${token}\n\n`);
    return token;
  }
}
