// Builds a real app against the test file's own PostgreSQL database (and Redis database in
// distributed mode; see file-services.ts). Every test creates its own partner as well.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { inject } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig, redisTargetOf, type Config } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import { createContext } from '../../src/runtime.ts';
import { createPool, type Db, type Tx } from '../../src/infra/db.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { createMetrics } from '../../src/infra/metrics.ts';
import { connectRedis } from '../../src/infra/redis.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
/** Every test process seals and opens partners' SQL sources with the same key and timeout. */
export const TEST_SECRET_KEY = 'test-secret-key-0123456789abcdefghijklmnop';
export const TEST_SOURCE_STATEMENT_TIMEOUT_MS = '2000';
/** How long a test app's query may wait for a pool connection (the product's default is 5 s). */
const TEST_DB_ACQUIRE_TIMEOUT_MS = 60_000;

export interface TestApp {
  readonly app: FastifyInstance;
  readonly ctx: AppContext;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Use the harness Redis (distributed mode). */
  readonly distributed?: boolean;
  /** Extra environment, e.g. STAMPEDE_API_KEY_CACHE_MS. */
  readonly env?: Record<string, string>;
  readonly clock?: () => Date;
  readonly redisUrl?: string;
  /** Adds test-only hooks (to observe a request's progress) before the app is ready. */
  readonly beforeReady?: (app: FastifyInstance) => void;
}

export function testConfig(options: TestAppOptions = {}): Config {
  return loadConfig({
    DATABASE_URL: inject('databaseUrl'),
    ...(options.distributed ? { REDIS_URL: options.redisUrl ?? inject('redisUrl') } : {}),
    STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN,
    STAMPEDE_SECRET_KEY: TEST_SECRET_KEY,
    STAMPEDE_SOURCE_STATEMENT_TIMEOUT_MS: TEST_SOURCE_STATEMENT_TIMEOUT_MS,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    // A deadline for a pool connection, not a speed claim: at load average 12-15 a claim stampede
    // waited 1.4 s for one (a busy event loop opening it) and 1,000 revocations 1.8 s, so at 30-45
    // the 5 s default answered 503 mid-test. database-busy.test.ts sets its own to prove the 503.
    STAMPEDE_DB_ACQUIRE_TIMEOUT_MS: String(TEST_DB_ACQUIRE_TIMEOUT_MS),
    ...options.env,
  });
}

export async function testContext(options: TestAppOptions = {}): Promise<AppContext> {
  const config = testConfig(options);
  const logger = createLogger(config.logLevel);
  const acquireTimeoutMs = config.dbAcquireTimeoutMs;
  const db = createPool(config.databaseUrl!, config.dbPoolSize, logger, { acquireTimeoutMs });
  const ledgerDb = createPool(config.databaseUrl!, config.dbPoolSize, logger, { pipelined: true, indexPlans: true, acquireTimeoutMs });
  const authDb = createPool(config.databaseUrl!, config.dbAuthPoolSize, logger, { acquireTimeoutMs });
  const workerDb = createPool(config.databaseUrl!, config.dbPoolSize, logger, { acquireTimeoutMs });
  const redis = config.redisUrl ? await connectRedis(redisTargetOf(config), logger) : undefined;
  return createContext({ config, logger, db, ledgerDb, authDb, workerDb, redis, metrics: createMetrics(), ...(options.clock ? { clock: options.clock } : {}) });
}

export async function closeContext(ctx: AppContext): Promise<void> {
  await ctx.claimGate.close?.();
  await ctx.redis?.close();
  await ctx.db.end();
  await ctx.ledgerDb.end();
  await ctx.authDb.end();
  await ctx.workerDb.end();
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const ctx = await testContext(options);
  const app = await buildApp(ctx, { adminToken: ADMIN_TOKEN });
  options.beforeReady?.(app);
  await app.ready();
  return {
    app,
    ctx,
    close: async () => {
      await app.close();
      await closeContext(ctx);
    },
  };
}

export const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** Creates a partner with a unique name; returns its id and API key headers. */
export async function createPartner(app: FastifyInstance, body: Record<string, unknown> = {}) {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/partners',
    headers: adminHeaders,
    payload: { name: `partner-${randomUUID()}`, ...body },
  });
  if (response.statusCode !== 201) throw new Error(`partner creation failed: ${response.statusCode} ${response.body}`);
  const partner = response.json<{ id: string; apiKey: string }>();
  return { id: partner.id, apiKey: partner.apiKey, headers: { 'x-api-key': partner.apiKey } };
}

/** A template body open for claims now, valid for 30 days; override any field. */
export function templateBody(overrides: Record<string, unknown> = {}) {
  const now = Date.now();
  return {
    name: 'Black Friday 10%',
    discount: { type: 'PERCENT', value: 10, maxAmount: 5_000 },
    minOrderAmount: 10_000,
    totalQuantity: 100,
    perUserLimit: 1,
    claimStartsAt: new Date(now - 60_000).toISOString(),
    claimEndsAt: new Date(now + 3_600_000).toISOString(),
    validity: { type: 'ABSOLUTE', validFrom: new Date(now - 60_000).toISOString(), validUntil: new Date(now + 30 * 86_400_000).toISOString() },
    ...overrides,
  };
}

/** Runs `work` in a transaction that is rolled back whatever happens (the file's tests share it). */
export async function inRolledBackTransaction(db: Db, work: (tx: Tx) => Promise<void>): Promise<void> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    await work(client);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}
