// Vitest set-up file of the `integration` and `e2e` projects: runs in the test file's own process
// before the file, and gives that file a PostgreSQL database of its own (a copy of the migrated
// template) and a Redis logical database of its own. The claim persister's stream index, the
// graphile-worker queue and everything else a worker reads is then per file, so files running in
// parallel forks (any number of them) cannot drain or run each other's work.
//
// `inject('databaseUrl')` and `inject('redisUrl')` answer this file's URLs: vitest provides one
// context per project, so the per-file values are written into the worker's copy of it here.
import { afterAll, inject } from 'vitest';
import pg from 'pg';
import { createClient } from 'redis';
import { TEST_REDIS_DATABASES } from './redis-server.ts';
import { withDatabase } from './sql-source.ts';

const FILE_COUNTER_KEY = 'stampede-test:files';

async function nextFileNumber(): Promise<number> {
  const redis = createClient({ url: inject('serverRedisUrl') });
  await redis.connect();
  try {
    return await redis.incr(FILE_COUNTER_KEY);
  } finally {
    await redis.close();
  }
}

async function emptyRedisDatabase(url: string): Promise<void> {
  const redis = createClient({ url });
  await redis.connect();
  try {
    await redis.flushDb(); // only matters when the index is reused (more files than databases)
  } finally {
    await redis.close();
  }
}

async function onAdminConnection<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(inject('templateDatabaseUrl'), 'postgres') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const fileNumber = await nextFileNumber();
const database = `stampede_file_${fileNumber}`;
const redisDatabase = 1 + ((fileNumber - 1) % (TEST_REDIS_DATABASES - 1)); // database 0 holds the counter
const template = /\/([^/?]+)(\?|$)/.exec(inject('templateDatabaseUrl'))![1];
await onAdminConnection((client) => client.query(`CREATE DATABASE ${database} TEMPLATE ${template}`));
const redisUrl = `${inject('serverRedisUrl')}/${redisDatabase}`;
await emptyRedisDatabase(redisUrl);

const state = (globalThis as { __vitest_worker__?: { providedContext: Record<string, unknown> } }).__vitest_worker__;
if (!state) throw new Error('file-services.ts must run as a vitest setup file');
state.providedContext.databaseUrl = withDatabase(inject('templateDatabaseUrl'), database);
state.providedContext.redisUrl = redisUrl;

// Registered first, so it runs after the file's own afterAll hooks (vitest runs them as a stack).
// A process the file leaked may still hold a connection: then the database stays until the
// harness PostgreSQL is removed at the end of the run, rather than cutting that process off.
afterAll(async () => {
  await onAdminConnection((client) => client.query(`DROP DATABASE IF EXISTS ${database}`)).catch(() => undefined);
});
