// The claim benchmark judges its ratio targets like for like (issue 17): one distributed process
// against the one-process bare route and baseline, never the best process count against them.
import { describe, expect, it } from 'vitest';
import { ratios, targetChecks, type RunFigures } from '../../bench/claim/report.ts';
import type { ServerKind } from '../../bench/claim/servers.ts';

const run = (kind: ServerKind, processes: number, connections: number, requestsPerSecond: number, p99 = 50): RunFigures => ({
  label: `${kind} ${processes}`, kind, processes, connections, rowsBefore: 0, requests: 1, durationSeconds: 1, requestsPerSecond,
  latencyMs: { p50: 1, p95: 1, p99, max: 1, mean: 1 }, outcomes: {}, rowsInPostgresAfterMs: kind === 'bare' ? null : 5, cpuSeconds: {}, loadAverage: 1, problems: [],
});

describe('claim benchmark targets', () => {
  const runs = [run('bare', 1, 256, 10_000), run('baseline', 1, 256, 1_000), run('distributed', 1, 256, 4_000, 150), run('distributed', 2, 256, 9_000, 70)];

  it('judges the distributed ratios at one process, like the bare route and the baseline', () => {
    const table = ratios(runs, [256], 2);
    expect(table['distributed/bare@256']).toBe(0.4);
    expect(table['distributed/baseline@256']).toBe(4);
    expect(table['distributed(2 proc)/bare(1 proc)@256']).toBe(0.9);
    const checks = targetChecks(runs, [256], 2);
    expect(checks.find((check) => check.target.startsWith('distributed ≥ 0.6 × bare'))).toMatchObject({ actual: '0.4×', pass: false });
    expect(checks.find((check) => check.target.startsWith('distributed ≥ 5 × baseline'))).toMatchObject({ actual: '4×', pass: false });
  });

  it('reports p99 at each process count measured, each on its own line', () => {
    const checks = targetChecks(runs, [256], 2);
    expect(checks.find((check) => check.target === 'distributed (1 proc) p99 ≤ 100 ms @256')).toMatchObject({ pass: false });
    expect(checks.find((check) => check.target === 'distributed (2 proc) p99 ≤ 100 ms @256')).toMatchObject({ pass: true });
  });

  it('says "not measured" when only several processes ran, rather than judging them against one', () => {
    const checks = targetChecks(runs.filter((candidate) => !(candidate.kind === 'distributed' && candidate.processes === 1)), [256], 2);
    expect(checks.find((check) => check.target.startsWith('distributed ≥ 0.6 × bare'))).toMatchObject({ actual: 'not measured', pass: false });
  });
});
