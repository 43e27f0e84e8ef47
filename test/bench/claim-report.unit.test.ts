// The claim benchmark judges its ratio targets like for like (issues 17 and 21): the distributed
// server at N processes against the bare route at N processes; the embedded server and the
// baseline (one process) against the one-process routes. Never a process count against another.
import { describe, expect, it } from 'vitest';
import { ratios, targetChecks, type RunFigures } from '../../bench/claim/report.ts';
import type { ServerKind } from '../../bench/claim/servers.ts';

const run = (kind: ServerKind, processes: number, connections: number, requestsPerSecond: number, p99 = 50, max = 100): RunFigures => ({
  label: `${kind} ${processes}`, kind, processes, connections, rowsBefore: 0, requests: 1, durationSeconds: 1, requestsPerSecond,
  latencyMs: { p50: 1, p95: 1, p99, max, mean: 1 }, overOneSecond: max > 1000 ? 1 : 0, outcomes: {},
  rowsInPostgresAfterMs: kind.startsWith('bare') ? null : 5, cpuSeconds: {}, loadAverage: 1, problems: [],
});

describe('claim benchmark targets', () => {
  const runs = [
    run('bare', 1, 256, 10_000), run('bare', 2, 256, 15_000), run('bare-validating', 1, 256, 8_000), run('baseline', 1, 256, 1_000),
    run('distributed', 1, 256, 4_000, 150), run('distributed', 2, 256, 9_000, 40), run('embedded', 1, 256, 6_000, 60, 1_200),
  ];

  it('compares each process count with the bare route at the same count', () => {
    const table = ratios(runs, [256], 2);
    expect(table['distributed(1 proc)/bare(1 proc)@256']).toBe(0.4);
    expect(table['distributed(2 proc)/bare(2 proc)@256']).toBe(0.6);
    expect(table['distributed(1 proc)/bare-validating(1 proc)@256']).toBe(0.5);
    expect(table['bare-validating(1 proc)/bare(1 proc)@256']).toBe(0.8);
    expect(table['embedded/bare(1 proc)@256']).toBe(0.6);
    expect(table['distributed(1 proc)/baseline@256']).toBe(4);
    expect(Object.keys(table).some((key) => key.includes('(2 proc)/bare(1 proc)'))).toBe(false);
    const checks = targetChecks(runs, [256], 2);
    expect(checks.find((check) => check.target === 'distributed ≥ 0.6 × bare req/s @256 (1 process each)')).toMatchObject({ actual: '0.4×', pass: false });
    expect(checks.find((check) => check.target === 'distributed ≥ 0.6 × bare req/s @256 (2 processes each)')).toMatchObject({ actual: '0.6×', pass: true });
    expect(checks.find((check) => check.target.startsWith('moonshot'))).toMatchObject({ pass: false });
    expect(checks.find((check) => check.target.startsWith('embedded ≥ 0.5 × bare'))).toMatchObject({ actual: '0.6×', pass: true });
    expect(checks.find((check) => check.target.startsWith('distributed ≥ 5 × baseline'))).toMatchObject({ actual: '4×', pass: false });
  });

  it('judges p99 at 256 connections per mode and process count, and embedded mode\'s slowest answer', () => {
    const checks = targetChecks(runs, [256], 2);
    expect(checks.find((check) => check.target === 'distributed (1 proc) p99 ≤ 50 ms @256')).toMatchObject({ pass: false });
    expect(checks.find((check) => check.target === 'distributed (2 proc) p99 ≤ 50 ms @256')).toMatchObject({ pass: true });
    expect(checks.find((check) => check.target === 'embedded p99 ≤ 50 ms @256')).toMatchObject({ actual: '60 ms', pass: false });
    expect(checks.find((check) => check.target === 'embedded max ≤ 1,000 ms @256')).toMatchObject({ actual: '1200 ms', pass: false, missedBy: '200 ms over' });
  });

  it('says "not measured" when the bare route did not run at that process count, and leaves the baseline out when it did not run', () => {
    const checks = targetChecks(runs.filter((candidate) => !(candidate.kind === 'bare' && candidate.processes === 2) && candidate.kind !== 'baseline'), [256], 2);
    expect(checks.find((check) => check.target === 'distributed ≥ 0.6 × bare req/s @256 (2 processes each)')).toMatchObject({ actual: 'not measured', pass: false });
    expect(checks.some((check) => check.target.includes('baseline'))).toBe(false);
  });
});
