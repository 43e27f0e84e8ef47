// A PostgreSQL restart must not crash a process that holds a pooled connection at that moment (a
// transaction, a job's session): pg emits 'error' on a checked-out client whose server went away,
// and pg-pool listens for it only while the client is idle. Found by
// `npm run chaos -- --quick --seed 5640708` (serve processes exited during PostgreSQL restarts).
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { withDeadline } from '../../test/harness/wait-for.ts';
import { createPool } from './db.ts';
import { createLogger } from './logger.ts';

describe('a pooled connection whose server goes away while it is checked out', () => {
  it('fails its query and is discarded; nothing escapes as an uncaught error', async () => {
    const pool = createPool(inject('databaseUrl'), 2, createLogger('warn'));
    const killer = new pg.Client({ connectionString: inject('databaseUrl') });
    await killer.connect();
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => { uncaught.push(error); };
    process.on('uncaughtException', onUncaught);
    const client = await pool.connect();
    let released = false;
    try {
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await killer.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      await expect(client.query('SELECT pg_sleep(30)')).rejects.toThrow();
      // pg emits 'error' on the client as its connection ends, then 'end'; an unheard 'error' is
      // thrown from the socket's handler (an uncaught exception: the process exits) and 'end' never comes.
      await withDeadline(ended, 10_000, "the connection to end without an uncaught 'error' event");
      expect(uncaught.map((error) => (error as Error).message)).toEqual([]);
      client.release();
      released = true;
      const { rows: after } = await pool.query<{ one: number }>('SELECT 1 AS one');
      expect(after[0]!.one).toBe(1);
    } finally {
      process.off('uncaughtException', onUncaught);
      if (!released) client.release(true);
      await killer.end();
      await pool.end();
    }
  });
});
