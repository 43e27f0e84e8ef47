// Figures, ratios and targets of the claim benchmark (issue 3), as tables for people and one JSON
// object for scripts. Ratio targets are judged like for like: the bare route, the baseline and the
// embedded server run one process, so the distributed server is compared at STAMPEDE_PROCESSES=1;
// ratios of other process counts are printed, marked as such, and judge nothing.
import { formatTable, round, type LatencySummary } from '../lib/stats.ts';
import type { ServerKind } from './servers.ts';

export interface RunFigures {
  readonly label: string;
  readonly kind: ServerKind;
  readonly processes: number;
  readonly connections: number;
  /** Coupon rows already in the table before the run (the index-growth case). */
  readonly rowsBefore: number;
  readonly requests: number;
  readonly durationSeconds: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: LatencySummary;
  readonly outcomes: Record<string, number>;
  readonly rowsInPostgresAfterMs: number | null;
  readonly cpuSeconds: Record<string, number>;
  /** 1-minute load average when the run ended: how much else the two cores were doing. */
  readonly loadAverage: number;
  readonly problems: string[];
}

export interface TargetCheck {
  readonly target: string;
  readonly actual: string;
  readonly pass: boolean;
  /** How far from the target, in words, when missed. */
  readonly missedBy?: string;
}

/** CPU time per request of each process group: what the run cost, whatever else shared the cores. */
const CPU_GROUPS = ['server', 'postgres', 'redis-server', 'load generator'];
const CPU_LABELS: Record<string, string> = { server: 'cpu server', postgres: 'cpu pg', 'redis-server': 'cpu redis', 'load generator': 'cpu loadgen' };

export function runsTable(runs: readonly RunFigures[]): string {
  const header = ['server', 'conns', 'rows before', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', '201', 'SOLD_OUT', 'LIMIT', 'other',
    'rows in PG after last 201', ...CPU_GROUPS.map((group) => `${CPU_LABELS[group]} µs/req`), 'load avg', 'verified'];
  return formatTable(header, runs.map((run) => {
    const known = (run.outcomes['201'] ?? 0) + (run.outcomes['409 SOLD_OUT'] ?? 0) + (run.outcomes['409 CLAIM_LIMIT_REACHED'] ?? 0);
    return [
      run.label, String(run.connections), run.rowsBefore.toLocaleString('en'), Math.round(run.requestsPerSecond).toLocaleString('en'),
      run.latencyMs.p50.toFixed(1), run.latencyMs.p95.toFixed(1), run.latencyMs.p99.toFixed(1), run.latencyMs.max.toFixed(0),
      String(run.outcomes['201'] ?? 0), String(run.outcomes['409 SOLD_OUT'] ?? 0), String(run.outcomes['409 CLAIM_LIMIT_REACHED'] ?? 0),
      String(run.requests - known),
      run.kind === 'bare' ? '-' : run.rowsInPostgresAfterMs === null ? 'NEVER' : `${Math.round(run.rowsInPostgresAfterMs)} ms`,
      ...CPU_GROUPS.map((group) => String(Math.round(((run.cpuSeconds[group] ?? 0) / run.requests) * 1e6))),
      run.loadAverage.toFixed(1),
      run.problems.length === 0 ? 'yes' : 'NO',
    ];
  }));
}

/** Runs of one kind at one connection count; for the distributed kind, the given process count. */
function pick(runs: readonly RunFigures[], kind: ServerKind, connections: number, options: { processes?: number; rowsBefore?: number } = {}) {
  return runs.find((run) => run.kind === kind && run.connections === connections && run.rowsBefore === (options.rowsBefore ?? 0) &&
    (options.processes === undefined || run.processes === options.processes));
}

/** The STAMPEDE_PROCESSES setting whose distributed runs served the most requests per second, on average. */
export function bestDistributedProcesses(runs: readonly RunFigures[]): number | undefined {
  const perSetting = new Map<number, number[]>();
  for (const run of runs) {
    if (run.kind === 'distributed' && run.rowsBefore === 0) perSetting.set(run.processes, [...(perSetting.get(run.processes) ?? []), run.requestsPerSecond]);
  }
  let best: { processes: number; mean: number } | undefined;
  for (const [processes, rates] of perSetting) {
    const mean = rates.reduce((sum, rate) => sum + rate, 0) / rates.length;
    if (!best || mean > best.mean) best = { processes, mean };
  }
  return best?.processes;
}

/** The process counts the distributed server was measured at (empty table only), ascending. */
function distributedProcessCounts(runs: readonly RunFigures[]): number[] {
  return [...new Set(runs.filter((run) => run.kind === 'distributed' && run.rowsBefore === 0).map((run) => run.processes))].sort((a, b) => a - b);
}

/**
 * Requests-per-second ratios. The unmarked keys compare one process with one process (the only
 * like-for-like comparison: bare, baseline and embedded always run one); keys naming
 * `distributed(N proc)` compare N distributed processes with those one-process servers.
 */
export function ratios(runs: readonly RunFigures[], connectionCounts: readonly number[], grownProcesses: number | undefined): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  const ratio = (a: RunFigures | undefined, b: RunFigures | undefined) => (a && b ? round(a.requestsPerSecond / b.requestsPerSecond, 3) : null);
  for (const connections of connectionCounts) {
    const distributed = pick(runs, 'distributed', connections, { processes: 1 });
    const embedded = pick(runs, 'embedded', connections);
    const baseline = pick(runs, 'baseline', connections);
    const bare = pick(runs, 'bare', connections);
    out[`distributed/baseline@${connections}`] = ratio(distributed, baseline);
    out[`distributed/bare@${connections}`] = ratio(distributed, bare);
    out[`embedded/baseline@${connections}`] = ratio(embedded, baseline);
    out[`embedded/bare@${connections}`] = ratio(embedded, bare);
    for (const processes of distributedProcessCounts(runs).filter((count) => count > 1)) {
      const several = pick(runs, 'distributed', connections, { processes });
      out[`distributed(${processes} proc)/baseline(1 proc)@${connections}`] = ratio(several, baseline);
      out[`distributed(${processes} proc)/bare(1 proc)@${connections}`] = ratio(several, bare);
    }
    const grown = runs.find((run) => run.kind === 'distributed' && run.connections === connections && run.rowsBefore > 0);
    out[`distributedGrownIndex/distributed@${connections}`] = ratio(grown, pick(runs, 'distributed', connections, { processes: grownProcesses }));
  }
  return out;
}

export function targetChecks(runs: readonly RunFigures[], connectionCounts: readonly number[], grownProcesses: number | undefined): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const atLeast = (target: string, actual: number | null, minimum: number, unit: string) => {
    if (actual === null) return checks.push({ target, actual: 'not measured', pass: false, missedBy: 'not measured' });
    const pass = actual >= minimum;
    return checks.push({ target, actual: `${round(actual, 2)}${unit}`, pass, ...(pass ? {} : { missedBy: `${round((1 - actual / minimum) * 100, 1)}% short` }) });
  };
  const table = ratios(runs, connectionCounts, grownProcesses);
  for (const connections of connectionCounts) {
    atLeast(`distributed ≥ 0.6 × bare req/s @${connections} (1 process each)`, table[`distributed/bare@${connections}`] ?? null, 0.6, '×');
    atLeast(`distributed ≥ 5 × baseline req/s @${connections} (1 process each)`, table[`distributed/baseline@${connections}`] ?? null, 5, '×');
    atLeast(`embedded ≥ 3 × baseline req/s @${connections} (1 process each)`, table[`embedded/baseline@${connections}`] ?? null, 3, '×');
  }
  // p99 is judged at every process count measured, each on its own line.
  const counts = distributedProcessCounts(runs);
  for (const processes of counts.length > 0 ? counts : [1]) {
    const at256 = pick(runs, 'distributed', 256, { processes });
    const target = `distributed (${processes} proc) p99 ≤ 100 ms @256`;
    if (at256) {
      const pass = at256.latencyMs.p99 <= 100;
      checks.push({ target, actual: `${at256.latencyMs.p99} ms`, pass, ...(pass ? {} : { missedBy: `${round(at256.latencyMs.p99 - 100, 1)} ms over` }) });
    } else {
      checks.push({ target, actual: 'not measured', pass: false, missedBy: 'not measured' });
    }
  }
  for (const run of runs.filter((candidate) => candidate.kind === 'distributed')) {
    const lag = run.rowsInPostgresAfterMs;
    const pass = lag !== null && lag <= 2_000;
    checks.push({
      target: `all rows in PostgreSQL ≤ 2 s after the last 201 (${run.label}, @${run.connections}${run.rowsBefore ? `, ${run.rowsBefore.toLocaleString('en')} rows before` : ''})`,
      actual: lag === null ? 'never' : `${Math.round(lag)} ms`,
      pass,
      ...(pass ? {} : { missedBy: lag === null ? 'rows never complete' : `${Math.round(lag - 2_000)} ms over` }),
    });
  }
  return checks;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  return formatTable(['target', 'actual', 'result'], checks.map((check) => [check.target, check.actual, check.pass ? 'PASS' : `MISS (${check.missedBy})`]));
}
