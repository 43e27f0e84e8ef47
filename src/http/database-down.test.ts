// PostgreSQL going away (restart, immediate shutdown) is "unavailable, retry", never a 500: the
// errors pg really raises then are answered 503 SERVICE_UNAVAILABLE with Retry-After. Found by
// `npm run chaos -- --seed 1 --quick` (a points call answered 500 during a PostgreSQL restart).
import Fastify from 'fastify';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { installErrorHandling } from './error-handler.ts';

/** The errors pg raises when a connection is terminated under a query: the running query's, a query
 *  queued behind it (terminated with it), and a query issued afterwards (the client is now unusable). */
async function terminatedConnectionErrors(): Promise<unknown[]> {
  const victim = new pg.Client({ connectionString: inject('databaseUrl') });
  const killer = new pg.Client({ connectionString: inject('databaseUrl') });
  victim.on('error', () => undefined);
  await Promise.all([victim.connect(), killer.connect()]);
  try {
    const { rows } = await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const pid = rows[0]!.pid;
    const settle = (query: Promise<unknown>) => query.then(() => undefined, (error: unknown) => error);
    const inFlight = settle(victim.query('SELECT pg_sleep(30)'));
    const queued = settle(victim.query('SELECT 1'));
    await killer.query('SELECT pg_terminate_backend($1)', [pid]);
    const running = await inFlight;
    const behind = await queued;
    const after = await settle(victim.query('SELECT 1'));
    return [running, behind, after];
  } finally {
    await killer.end();
  }
}

async function missingSocketError(): Promise<unknown> {
  const client = new pg.Client({ connectionString: `postgres://nobody@${encodeURIComponent('/nonexistent-stampede-socket-dir')}:5432/x` });
  return client.connect().then(() => undefined, (error: unknown) => error);
}

describe('a database that went away', () => {
  it('answers 503 SERVICE_UNAVAILABLE for every error pg raises when PostgreSQL drops or refuses connections', async () => {
    const errors = [...await terminatedConnectionErrors(), await missingSocketError()];
    expect(errors.map((error) => (error as Error | undefined)?.message)).toEqual([
      'terminating connection due to administrator command', 'Connection terminated unexpectedly',
      'Client has encountered a connection error and is not queryable', expect.stringContaining('ENOENT'),
    ]);
    const app = Fastify();
    installErrorHandling(app);
    app.get('/fail/:n', async (request) => { throw errors[Number((request.params as { n: string }).n)]; });
    for (const n of errors.keys()) {
      const response = await app.inject({ url: `/fail/${n}` });
      expect(response.statusCode, `${(errors[n] as Error).message}: ${response.body}`).toBe(503);
      expect(response.json().error.code).toBe('SERVICE_UNAVAILABLE');
      expect(response.headers['retry-after']).toBe('1');
    }
    await app.close();
  });
});
