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

export async function openRuntime(givenConfig: Config, logger: Logger, options: RuntimeOptions): Promise<Runtime> {
  let config = givenConfig;
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch((error: unknown) => logger.warn({ err: error }, 'close failed'));
  };
  try {
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
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
      const client = await connectRedis(config.redisUrl!, logger);
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
    return { ctx, databaseUrl, close };
  } catch (error) {
    await close();
    throw error;
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
  const file = path.join(config.dataDir, 'admin-token');
  try {
    const token = (await readFile(file, 'utf8')).trim();
    logger.info({ file }, 'admin token loaded from the data directory');
    return { token, file, created: false };
  } catch {
    const token = randomBytes(24).toString('base64url');
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    logger.info({ file }, 'admin token generated in the data directory');
    return { token, file, created: true };
  }
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
  const file = path.join(dataDir, 'secret-key');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const key = randomBytes(32).toString('base64url');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await writeFile(file, key, { mode: 0o600, flag: 'wx' }).catch(async (error: unknown) => {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
    });
    return (await readFile(file, 'utf8')).trim();
  }
}
