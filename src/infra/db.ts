// PostgreSQL access: one pool per process, explicit transactions, bounded retries.
import pg from 'pg';
import type { Logger } from './logger.ts';

export type Db = pg.Pool;
export type Tx = pg.PoolClient;
/** Anything that can run a query: the pool or a transaction's client. */
export type Queryable = Pick<pg.Pool, 'query'>;

// int8 (bigint) columns carry counts and amounts that stay far below 2^53; numbers are what the
// API speaks, so parse them as such instead of strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/**
 * `pipelined`: node-postgres pipeline mode, where queries issued without awaiting each other are
 * written back to back and answered in order (one round trip for several statements). Such a
 * connection cannot run COPY or cursors, so it gets a pool of its own (the points ledger's).
 * `indexPlans`: for a pool whose statements all find their rows by index (the ledger's): each
 * named statement is planned once per connection (plan_cache_mode force_generic_plan), where
 * PostgreSQL would otherwise re-plan every call of a statement over arrays of unknown length,
 * planning costing more CPU than running it; and seq scans are priced out (enable_seqscan off), so
 * a plan made while a table was still small never scans it once it has grown.
 */
export function createPool(
  connectionString: string, max: number, logger: Logger, options: { pipelined?: boolean; indexPlans?: boolean; acquireTimeoutMs?: number } = {},
): Db {
  const pool = new pg.Pool({
    connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: options.acquireTimeoutMs ?? 10_000, pipeline: options.pipelined ?? false,
    ...(options.indexPlans ? { options: '-c plan_cache_mode=force_generic_plan -c enable_seqscan=off' } : {}),
  });
  // An idle client whose server went away emits 'error' on the pool; without a listener the
  // process would crash. The next checkout gets a fresh connection.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle PostgreSQL client failed'));
  // A checked-out client whose server goes away (PostgreSQL restarting) emits 'error' as well as
  // failing its query, and pg-pool listens only while it is idle: unheard, that event crashed the
  // process. The caller sees the failed query; the pool discards the client on release.
  pool.on('connect', (client) => client.on('error', (error) => logger.debug({ err: error }, 'PostgreSQL connection lost')));
  return pool;
}

/**
 * pg-pool's refusal when every connection stayed busy for `connectionTimeoutMillis` (it has no code,
 * only this message): the pool is exhausted, not PostgreSQL down; answered 503 DATABASE_BUSY.
 */
export const isPoolExhausted = (error: unknown): boolean =>
  error instanceof Error && error.message === 'timeout exceeded when trying to connect';

/**
 * Issues the queries `issue` starts on a pipelined client (createPool `pipelined`) as ONE socket
 * write: node-postgres writes each query as it is issued; corked, they leave together. A send costs
 * tens of microseconds of CPU on a virtual machine's loopback, so this matters on the hot path.
 */
export function sendTogether<T>(client: Tx, issue: () => T): T {
  const stream = client.connection.stream;
  stream.cork();
  try {
    return issue();
  } finally {
    stream.uncork();
  }
}

/** Runs `work` in one transaction on one client; commits on success, rolls back on any error. */
export async function withTransaction<T>(db: Db, work: (tx: Tx) => Promise<T>, isolation?: 'SERIALIZABLE' | 'REPEATABLE READ'): Promise<T> {
  const client = await db.connect();
  try {
    await client.query(isolation ? `BEGIN ISOLATION LEVEL ${isolation}` : 'BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

const RETRYABLE = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected

export const isRetryableConflict = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && RETRYABLE.has((error as { code?: string }).code ?? '');

/**
 * Retries a whole transaction on serialization failures and deadlocks, with full jitter, a bounded
 * number of times. Only the transaction's own conflicts are retried; anything else surfaces at once.
 */
export async function withRetry<T>(work: () => Promise<T>, attempts = 8, baseDelayMs = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isRetryableConflict(error) || attempt >= attempts) throw error;
      const cap = baseDelayMs * 2 ** attempt;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
    }
  }
}

export const isUniqueViolation = (error: unknown, constraint?: string): boolean =>
  typeof error === 'object' && error !== null && (error as { code?: string }).code === '23505' &&
  (constraint === undefined || (error as { constraint?: string }).constraint === constraint);
