// The restart schedule of a queue runner whose start keeps failing, on fake timers (only timers
// and Date.now are involved): 1 s doubling to a 30 s cap, and nothing more once stopped.
// src/jobs/queue-runner-restart.test.ts shows restarts against real PostgreSQL failures.
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { createLogger } from '../infra/logger.ts';
import { keepQueuePoolRunning } from './queue.ts';

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

it('retries a failing start after 1, 2, 4, … s up to 30 s, and not once stopped', async () => {
  const starts: number[] = [];
  let restarts = 0;
  const runner = keepQueuePoolRunning('test', () => {
    starts.push(Date.now());
    throw new Error('start refused');
  }, createLogger('silent'), () => { restarts++; });

  await vi.advanceTimersByTimeAsync(100_000);
  const gaps = starts.slice(1).map((at, i) => at - starts[i]!);
  expect(gaps).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  expect(restarts).toBe(gaps.length);

  // Stopped while a restart is pending (the next one is due at 121 s).
  await runner.stop();
  await vi.advanceTimersByTimeAsync(300_000);
  expect(starts).toHaveLength(gaps.length + 1);
});
