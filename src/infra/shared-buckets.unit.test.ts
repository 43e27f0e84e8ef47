// Token buckets without Redis (embedded mode): exact per window, and bounded in memory per group
// (partner) and in total, least recently used first.
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { SharedBuckets, WINDOW_MS, type BucketRequest } from './shared-buckets.ts';

const logger = createLogger('silent');

function buckets(options: { maxBuckets?: number; maxBucketsPerGroup?: number } = {}) {
  let now = 1_000 * WINDOW_MS + 10;
  const metrics = createMetrics();
  const store = new SharedBuckets({ redis: undefined, logger, metrics, now: () => now, ...options });
  return { store, metrics, advance: (ms: number) => { now += ms; } };
}
const user = (group: string, key: string, limit = 1): BucketRequest => ({ scope: 'claim-user:t', key, group, limit, settle: 'beyond-share' });

describe('shared token buckets in one process', () => {
  it('admits the limit per window, refuses beyond it until the window ends, says when', () => {
    const { store, advance } = buckets();
    const request: BucketRequest = { scope: 'api-key', key: 'k', group: 'p', limit: 3, settle: 'always' };
    expect([1, 2, 3, 4].map(() => store.take(request).allowed)).toEqual([true, true, true, false]);
    expect(store.take(request).retryAfterMs).toBe(WINDOW_MS - 10);
    advance(WINDOW_MS - 10);
    expect([1, 2, 3, 4].map(() => store.take(request).allowed)).toEqual([true, true, true, false]);
  });

  it('a partner over its cap evicts its own least recently used buckets, never another partner\'s', async () => {
    const { store, metrics } = buckets({ maxBuckets: 10, maxBucketsPerGroup: 3 });
    expect(store.take(user('other', 'victim')).allowed).toBe(true);
    for (let i = 0; i < 1_000; i++) store.take(user('flooder', `u-${i}`));
    expect(store.bucketCount).toBe(4);
    // The other partner's user is still counted (refused again in the same window)…
    expect(store.take(user('other', 'victim')).allowed).toBe(false);
    // …while the flooder's first users were dropped: counted afresh (the cost of the cap, one window's limit).
    expect(store.take(user('flooder', 'u-0')).allowed).toBe(true);
    expect((await metrics.bucketEvictions.get()).values[0]?.value).toBeGreaterThanOrEqual(997);
  });

  it('at the total cap the partner holding the most buckets gives one up', () => {
    const { store } = buckets({ maxBuckets: 4, maxBucketsPerGroup: 3 });
    store.take(user('small', 's-1'));
    for (let i = 0; i < 3; i++) store.take(user('large', `l-${i}`));
    expect(store.bucketCount).toBe(4);
    store.take(user('small', 's-2'));
    expect(store.bucketCount).toBe(4);
    expect(store.take(user('small', 's-1')).allowed).toBe(false); // kept: still counted
    expect(store.take(user('large', 'l-0')).allowed).toBe(true); // the large partner's oldest went
  });
});
