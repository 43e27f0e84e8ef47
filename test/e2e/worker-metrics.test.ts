// `stampede worker` with STAMPEDE_METRICS_PORT serves /metrics and /health, so the processes that
// persist claims and run jobs are scraped like the API. Its own Redis and embedded PostgreSQL:
// a worker on the shared harness would persist other test files' claims and run their jobs.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/free-port.ts';
import { startRedisServer, type RedisServerHandle } from '../harness/redis-server.ts';
import { spawnStampede } from '../harness/spawn-stampede.ts';

describe('stampede worker with STAMPEDE_METRICS_PORT', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => { for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined); });

  it('serves the worker metrics and readiness, and nothing else', async () => {
    const redis: RedisServerHandle = await startRedisServer();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-worker-'));
    cleanups.push(() => redis.stop(), () => rm(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const worker = spawnStampede(['worker'], { STAMPEDE_DATA_DIR: dataDir, REDIS_URL: redis.url, STAMPEDE_METRICS_PORT: String(port), HOST: '127.0.0.1' });
    cleanups.push(async () => { if (worker.child.exitCode === null) worker.child.kill('SIGKILL'); });
    await worker.waitForOutput(/Server listening/, 120_000);
    const base = `http://127.0.0.1:${port}`;

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE stampede_claim_batch_commit_seconds histogram$/m);
    expect(metrics).toMatch(/^# TYPE stampede_jobs_total counter$/m);
    expect(metrics).toMatch(/^stampede_dependency_up\{dependency="database"\} 1$/m);
    expect(metrics).toMatch(/^stampede_dependency_up\{dependency="redis"\} 1$/m);
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
    expect((await fetch(`${base}/v1/coupon-templates`)).status).toBe(404);

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  }, 180_000);
});
