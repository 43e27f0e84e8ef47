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

export function createPool(connectionString: string, max: number, logger: Logger): Db {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // An idle client whose server went away emits 'error' on the pool; without a listener the
  // process would crash. The next checkout gets a fresh connection.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle PostgreSQL client failed'));
  return pool;
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
