// Token buckets settled with Redis (shared-buckets.ts) against the harness Redis: two buckets
// objects with their own settlers stand for two API processes. The figures are counted per window
// the buckets report for each decision, never by wall-clock timing, so a loaded machine slows the
// run down but does not change what is counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { connectRedis, type Redis } from './redis.ts';
import { SharedBuckets, WINDOW_MS, type BucketRequest } from './shared-buckets.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

const logger = createLogger('silent');

describe('shared token buckets across processes (Redis)', () => {
  const clients: Redis[] = [];
  const buckets: SharedBuckets[] = [];
  const connect = async () => {
    const client = await connectRedis(inject('redisUrl'), logger);
    clients.push(client);
    return client;
  };
  const processWith = (redis: Redis, options: { expectedProcesses?: number; now?: () => number } = {}) => {
    const instance = new SharedBuckets({ redis, logger, metrics: createMetrics(), ...options });
    buckets.push(instance);
    return instance;
  };
  beforeAll(async () => { await connect(); await connect(); });
  afterAll(async () => {
    for (const instance of buckets) instance.stop();
    for (const client of clients) await client.close();
  });

  it('two processes flooding a limit of 1,000/s admit 1,000 ± 5% in every whole second after the first', async () => {
    const [a, b] = [processWith(clients[0]!, { expectedProcesses: 2 }), processWith(clients[1]!, { expectedProcesses: 2 })];
    const request: BucketRequest = { scope: 'test-flood', key: `key-${Date.now()}`, group: 'partner', limit: 1_000, settle: 'always' };
    const admitted = new Map<number, number>();
    let offered = 0;
    const first = Math.floor(Date.now() / WINDOW_MS);
    const last = first + 6; // windows first+2 … first+5 are measured: whole, after the first whole one
    // Each process is offered 20 requests per turn of the event loop (≥ 2,000/s each even when a
    // loaded machine runs only 100 turns a second), so both always ask for more than the limit.
    while (Math.floor(Date.now() / WINDOW_MS) <= last) {
      for (const apiProcess of [a, b]) {
        for (let i = 0; i < 20; i++) {
          const decision = apiProcess.take(request);
          offered += 1;
          if (decision.allowed) admitted.set(decision.window, (admitted.get(decision.window) ?? 0) + 1);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const measured = [first + 2, first + 3, first + 4, first + 5].map((window) => admitted.get(window) ?? 0);
    if (process.env.SHOW_FIGURES) console.log({ offeredPerSecond: offered / 7, measured });
    expect(offered / 7, 'requests offered per second').toBeGreaterThan(2_000);
    for (const count of measured) {
      expect(count, `admitted per window: ${measured.join(', ')}`).toBeGreaterThanOrEqual(950);
      expect(count, `admitted per window: ${measured.join(', ')}`).toBeLessThanOrEqual(1_050);
    }
  });

  it('a key busy on one process only gets the whole limit there', async () => {
    const [a] = [processWith(clients[0]!, { expectedProcesses: 2 }), processWith(clients[1]!, { expectedProcesses: 2 })];
    const request: BucketRequest = { scope: 'test-one-sided', key: `key-${Date.now()}`, group: 'partner', limit: 500, settle: 'always' };
    const admitted = new Map<number, number>();
    const first = Math.floor(Date.now() / WINDOW_MS);
    while (Math.floor(Date.now() / WINDOW_MS) <= first + 4) {
      for (let i = 0; i < 20; i++) {
        const decision = a.take(request);
        if (decision.allowed) admitted.set(decision.window, (admitted.get(decision.window) ?? 0) + 1);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const measured = [first + 2, first + 3, first + 4].map((window) => admitted.get(window) ?? 0);
    if (process.env.SHOW_FIGURES) console.log({ oneSided: measured });
    for (const count of measured) expect(count, `admitted per window: ${measured.join(', ')}`).toBeGreaterThanOrEqual(475);
    for (const count of measured) expect(count, `admitted per window: ${measured.join(', ')}`).toBeLessThanOrEqual(500);
  });

  it('a Redis that cannot be reached blocks nothing: each process admits up to the whole limit, counted in a metric', async () => {
    const unreachable = await connectRedis(inject('redisUrl'), logger);
    await unreachable.close(); // every settle fails at once
    const metrics = createMetrics();
    const fixedNow = (Math.floor(Date.now() / WINDOW_MS) + 100) * WINDOW_MS + 500; // mid-window, never rolls
    const down = new SharedBuckets({ redis: unreachable, logger, metrics, expectedProcesses: 2, now: () => fixedNow });
    buckets.push(down);
    const request: BucketRequest = { scope: 'test-down', key: 'k', group: 'partner', limit: 10, settle: 'always' };
    // Before any settle has failed: its floor, the limit over the processes it expects (10 / 2).
    expect(Array.from({ length: 6 }, () => down.take(request).allowed)).toEqual([true, true, true, true, true, false]);
    await waitFor(async () => ((await metrics.bucketSettleFailures.get()).values[0]?.value ?? 0) > 0, { what: 'a failed settle to be counted' });
    // Redis is down: this process alone admits up to the whole limit, then refuses.
    expect(Array.from({ length: 6 }, () => down.take(request).allowed)).toEqual([true, true, true, true, true, false]);
  });
});
