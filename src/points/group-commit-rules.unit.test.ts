// Which waiting calls share a batch, without PostgreSQL or timers: the group commit's scheduling.
import { describe, expect, it } from 'vitest';
import { pickBatch, type WaitingCall } from './group-commit-rules.ts';

const call = (key: string, wallets: string[], kind: 'share' | 'own' | 'alone' = 'share', since = 10): WaitingCall => ({
  key, wallets, holds: [key, ...wallets], alone: kind === 'alone', shares: kind === 'share', since,
});
const NONE = new Set<string>();
/** Calls queued at 10 have not waited long enough to reserve anything. */
const IMPATIENT = 0;

describe('pickBatch', () => {
  it('takes the oldest calls, up to the batch size', () => {
    const queue = [call('k1', ['a']), call('k2', ['b']), call('k3', ['c'])];
    expect(pickBatch(queue, NONE, 2, IMPATIENT)).toEqual([0, 1]);
  });

  it('lets earns and uses share a wallet, but never a key', () => {
    const queue = [call('k1', ['a']), call('k2', ['a']), call('k1', ['b'])];
    expect(pickBatch(queue, NONE, 10, IMPATIENT)).toEqual([0, 1]);
  });

  it('gives a transfer its wallets to itself: it neither joins nor is joined on them', () => {
    const queue = [call('k1', ['a']), call('t1', ['a', 'b'], 'own'), call('k2', ['b']), call('t2', ['c', 'd'], 'own'), call('k3', ['c'])];
    expect(pickBatch(queue, NONE, 10, IMPATIENT)).toEqual([0, 2, 3]);
  });

  it('skips what batches in flight hold, keys and wallets alike', () => {
    const queue = [call('k1', ['a']), call('k2', ['b']), call('k3', ['c'])];
    expect(pickBatch(queue, new Set(['a', 'k2']), 10, IMPATIENT)).toEqual([2]);
  });

  it('runs a call that runs alone only first in an empty batch, and ends the batch with it', () => {
    expect(pickBatch([call('c1', [], 'alone'), call('k1', ['a'])], NONE, 10, IMPATIENT)).toEqual([0]);
    expect(pickBatch([call('k1', ['a']), call('c1', [], 'alone'), call('k2', ['b'])], NONE, 10, IMPATIENT)).toEqual([0, 2]);
    expect(pickBatch([call('c1', [], 'alone')], new Set(['c1']), 10, IMPATIENT)).toEqual([]);
  });

  it('reserves the wallets of a transfer that waited past its patience: later calls do not take them', () => {
    const queue = [call('t1', ['a', 'b'], 'own', 5), call('k1', ['a']), call('k2', ['c'])];
    const busy = new Set(['b']);
    expect(pickBatch(queue, busy, 10, IMPATIENT)).toEqual([1, 2]);
    expect(pickBatch(queue, busy, 10, 5)).toEqual([2]);
  });

  it('reserves nothing for earns and uses, however long they waited', () => {
    const queue = [call('k1', ['a'], 'share', 0), call('k2', ['a'])];
    expect(pickBatch(queue, new Set(['k1']), 10, 100)).toEqual([1]);
  });
});
