// The set-up every job test shares: an app with its job queue running (the in-process worker that
// runs bulk jobs and webhook deliveries), built before the tests of the describe block (or file)
// that calls it and stopped after them; and the wait for a job to finish.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { startJobQueue } from '../../src/job-queue.ts';
import { createTestApp, type TestApp, type TestAppOptions } from './test-app.ts';
import { waitFor } from './wait-for.ts';

/**
 * Registers the beforeAll/afterAll that build the app and start its queue, and returns the app:
 * its `app` and `ctx` are there from beforeAll on. Closing is afterAll's (queue first, then app).
 */
export function appWithJobQueue(options: TestAppOptions = {}): TestApp {
  let t: TestApp | undefined;
  let stopQueue: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    t = await createTestApp(options);
    stopQueue = await startJobQueue(t.ctx);
  });
  afterAll(async () => {
    await stopQueue?.();
    await t?.close();
  });
  const built = (): TestApp => {
    if (!t) throw new Error('appWithJobQueue: the app is built in beforeAll; use it in a test or a later hook');
    return t;
  };
  return {
    get app() { return built().app; },
    get ctx() { return built().ctx; },
    close: () => Promise.reject(new Error('appWithJobQueue: afterAll closes the app')),
  };
}

const FINAL_STATUSES = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** The job as GET /v1/jobs/{id} shows it once it has finished (succeeded, failed or cancelled). */
export async function finishedJob(app: FastifyInstance, headers: Record<string, string>, jobId: string, timeoutMs = 120_000) {
  let status = '';
  try {
    return await waitFor(async () => {
      const job = (await app.inject({ url: `/v1/jobs/${jobId}`, headers })).json();
      status = job.status;
      return FINAL_STATUSES.includes(job.status) && job;
    }, { what: `job ${jobId} to finish`, timeoutMs, intervalMs: 100 });
  } catch (error) {
    throw new Error(`${(error as Error).message}; still ${status}`);
  }
}
