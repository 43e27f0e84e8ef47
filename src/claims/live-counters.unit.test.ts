// The live stream's pure parts: latency buckets and their p99, the per-event counters the claim
// route feeds, and the status an event shows.
import { describe, expect, it } from 'vitest';
import { LATENCY_BOUNDS_MS, LiveClaimCounters, latencyBucket, quantileMs } from './live-counters.ts';
import { liveStatus } from './live-feed.ts';

describe('latency buckets', () => {
  it('puts each latency in the first bucket whose bound holds it, within 20 %', () => {
    for (const ms of [0, 0.01, 0.05, 0.051, 0.3, 1, 2.5, 17, 250, 4_000, 59_000]) {
      const bucket = latencyBucket(ms);
      expect(LATENCY_BOUNDS_MS[bucket]).toBeGreaterThanOrEqual(Math.min(ms, LATENCY_BOUNDS_MS.at(-1)!));
      if (bucket > 0) expect(LATENCY_BOUNDS_MS[bucket - 1]).toBeLessThan(ms);
    }
    expect(latencyBucket(1e9)).toBe(LATENCY_BOUNDS_MS.length - 1);
  });

  it('reads the p99 as the bound of the bucket holding the 99th percentile', () => {
    const buckets = new Uint32Array(LATENCY_BOUNDS_MS.length);
    for (let i = 0; i < 990; i++) buckets[latencyBucket(1)]! += 1;
    for (let i = 0; i < 10; i++) buckets[latencyBucket(100)]! += 1;
    expect(quantileMs(buckets, 0.99)).toBe(LATENCY_BOUNDS_MS[latencyBucket(1)]);
    buckets[latencyBucket(100)]! += 1;
    expect(quantileMs(buckets, 0.99)).toBe(LATENCY_BOUNDS_MS[latencyBucket(100)]);
    expect(quantileMs(new Uint32Array(LATENCY_BOUNDS_MS.length), 0.99)).toBeNull();
  });
});

describe('LiveClaimCounters', () => {
  it('counts only watched events, by outcome, and starts afresh at each read', () => {
    const live = new LiveClaimCounters();
    live.record('a', 'issued', 1);
    const counters = live.watch('a');
    expect(live.watch('a')).toBe(counters);
    live.record('a', 'issued', 1);
    live.record('a', 'issued', 2);
    live.record('a', 'sold_out', 0.5);
    live.record('a', 'something_new', 0.5);
    live.record('b', 'issued', 1);
    const first = counters.take();
    expect(first.counts).toEqual({ issued: 2, sold_out: 1, limit_reached: 0, not_open: 0, closed: 0, paused: 0, other: 1 });
    expect(first.p99Ms).toBe(LATENCY_BOUNDS_MS[latencyBucket(2)]);
    expect(counters.take().counts.issued).toBe(0);
    live.unwatch('a');
    expect(live.watchedCount).toBe(0);
  });
});

describe('liveStatus', () => {
  const base = { claimStartsAt: new Date('2026-01-01T10:00:00Z'), claimEndsAt: new Date('2026-01-01T11:00:00Z'), totalQuantity: 10, paused: false };
  it.each([
    ['scheduled', base, 0, '2026-01-01T09:59:59Z'],
    ['open', base, 9, '2026-01-01T10:00:00Z'],
    ['sold_out', base, 10, '2026-01-01T10:30:00Z'],
    ['paused', { ...base, paused: true }, 10, '2026-01-01T10:30:00Z'],
    ['ended', { ...base, paused: true }, 3, '2026-01-01T11:00:00Z'],
    ['open', { ...base, totalQuantity: null }, 1_000_000, '2026-01-01T10:30:00Z'],
  ] as const)('%s', (expected, template, issued, now) => {
    expect(liveStatus(template, issued, new Date(now))).toBe(expected);
  });
});
