import { describe, expect, it } from 'vitest';
import { cronMatcher } from './schedule.ts';

describe('cron schedules', () => {
  it('the default "0 * * * *" fires once an hour, at minute 0 (UTC)', () => {
    const fires = cronMatcher('0 * * * *');
    expect(fires(new Date('2026-11-22T10:00:30.000Z'))).toBe(true);
    expect(fires(new Date('2026-11-22T10:01:00.000Z'))).toBe(false);
    expect(fires(new Date('2026-11-22T23:59:00.000Z'))).toBe(false);
  });

  it('understands ranges, steps and weekdays', () => {
    const fires = cronMatcher('*/15 2-4 * * 1');
    expect(fires(new Date('2026-11-23T03:45:00.000Z'))).toBe(true); // a Monday
    expect(fires(new Date('2026-11-23T05:45:00.000Z'))).toBe(false);
    expect(fires(new Date('2026-11-22T03:45:00.000Z'))).toBe(false); // a Sunday
  });

  it('refuses a malformed schedule', () => {
    expect(() => cronMatcher('every hour')).toThrow();
  });
});
