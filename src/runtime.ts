// Assembles a process's shared resources from configuration: PostgreSQL (embedded or given),
// migrations, Redis (distributed mode, with its durability check) and the context. Closing
// releases them in reverse order.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isDistributed, redisTargetOf, type Config } from './config.ts';
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
