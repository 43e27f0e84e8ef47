import { describe, expect, it } from 'vitest';
import { ClaimRefusal } from './claim-gate.ts';
import { claimRefusal, soldOut, windowRefusal, type ClaimCounters } from './claim-rules.ts';

describe('claimRefusal', () => {
  const counters: ClaimCounters = { totalQuantity: 10, perUserLimit: 2, claimStartsAt: 1_000, claimEndsAt: 2_000, issued: 3 };

  it('lets a claim through inside the window, under the limit, with stock left', () => {
    expect(claimRefusal(counters, 1, 1_500)).toBeUndefined();
  });

  it('opens at the start instant and closes at the end instant', () => {
    expect(claimRefusal(counters, 0, 999)).toBe(ClaimRefusal.NotOpen);
    expect(claimRefusal(counters, 0, 1_000)).toBeUndefined();
    expect(claimRefusal(counters, 0, 1_999)).toBeUndefined();
    expect(claimRefusal(counters, 0, 2_000)).toBe(ClaimRefusal.Closed);
  });

  it('refuses a user at the limit, and when sold out; the window is checked first, then the limit', () => {
    expect(claimRefusal(counters, 2, 1_500)).toBe(ClaimRefusal.LimitReached);
    expect(claimRefusal({ ...counters, issued: 10 }, 0, 1_500)).toBe(ClaimRefusal.SoldOut);
    expect(claimRefusal({ ...counters, issued: 10 }, 2, 1_500)).toBe(ClaimRefusal.LimitReached);
    expect(claimRefusal({ ...counters, issued: 10 }, 2, 2_500)).toBe(ClaimRefusal.Closed);
  });

  it('refuses every claim while paused inside the window, before the limit and the stock; the window answers first', () => {
    const paused = { ...counters, paused: true };
    expect(claimRefusal(paused, 0, 1_500)).toBe(ClaimRefusal.Paused);
    expect(claimRefusal(paused, 2, 1_500)).toBe(ClaimRefusal.Paused);
    expect(claimRefusal({ ...paused, issued: 10 }, 0, 1_500)).toBe(ClaimRefusal.Paused);
    expect(claimRefusal(paused, 0, 999)).toBe(ClaimRefusal.NotOpen);
    expect(claimRefusal(paused, 0, 2_000)).toBe(ClaimRefusal.Closed);
    expect(claimRefusal({ ...counters, paused: false }, 0, 1_500)).toBeUndefined();
  });

  it('never sells out an unlimited event', () => {
    expect(claimRefusal({ ...counters, totalQuantity: null, issued: 1_000_000 }, 0, 1_500)).toBeUndefined();
  });

  it('decides the window alone, before any state exists (what a gate checks before opening an event)', () => {
    expect(windowRefusal(counters, 999)).toBe(ClaimRefusal.NotOpen);
    expect(windowRefusal(counters, 1_000)).toBeUndefined();
    expect(windowRefusal(counters, 2_000)).toBe(ClaimRefusal.Closed);
  });

  it('is sold out only at the total, never when unlimited', () => {
    expect(soldOut({ totalQuantity: 10, issued: 9 })).toBe(false);
    expect(soldOut({ totalQuantity: 10, issued: 10 })).toBe(true);
    expect(soldOut({ totalQuantity: null, issued: 1_000_000 })).toBe(false);
  });
});
