// Figures, ratios and targets of the claim benchmark (issues 3 and 21), as tables for people and
// one JSON object for scripts. Every ratio is like for like: the distributed server at N processes
// against the bare routes at N processes; the embedded server and the baseline (one process each)
// against the one-process routes. The minimal bare route is the ceiling the targets are judged on.
import type { MachineAccount } from '../lib/process-cpu.ts';
import { formatTable, round, type LatencySummary } from '../lib/stats.ts';
import { isBare, type ServerKind } from './servers.ts';
import type { Phases } from './load-generator.ts';
import type { RunDiagnostics } from './server-metrics.ts';

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
  /** Answers that took longer than one second. */
  readonly overOneSecond: number;
  /** The answers split at the last 201: the issuing phase and the refusals after it. */
  readonly phases?: Phases;
  readonly outcomes: Record<string, number>;
  readonly rowsInPostgresAfterMs: number | null;
  readonly cpuSeconds: Record<string, number>;
  /** 1-minute load average when the run ended: how much else the two cores were doing. */
  readonly loadAverage: number;
  /**
   * The machine's CPU seconds over the run: busy, busy outside the measured processes and the
   * benchmark's own (other processes, the kernel's own threads), and idle. A run with idle cores
   * and a slow server was held back by something else than CPU.
   */
  readonly machine?: MachineAccount;
  /** The product's own /metrics over the run (group commit, time in the gate, event-loop delay, GC). */
  readonly diagnostics?: RunDiagnostics;
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
  const header = ['server', 'conns', 'rows before', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', '> 1 s', '201', 'SOLD_OUT', 'LIMIT', 'other',
    'rows in PG after last 201', ...CPU_GROUPS.map((group) => `${CPU_LABELS[group]} µs/req`), 'load avg', 'verified'];
  return formatTable(header, runs.map((run) => {
    const known = (run.outcomes['201'] ?? 0) + (run.outcomes['409 SOLD_OUT'] ?? 0) + (run.outcomes['409 CLAIM_LIMIT_REACHED'] ?? 0);
    return [
      run.label, String(run.connections), run.rowsBefore.toLocaleString('en'), Math.round(run.requestsPerSecond).toLocaleString('en'),
      run.latencyMs.p50.toFixed(1), run.latencyMs.p95.toFixed(1), run.latencyMs.p99.toFixed(1), run.latencyMs.max.toFixed(0), String(run.overOneSecond),
      String(run.outcomes['201'] ?? 0), String(run.outcomes['409 SOLD_OUT'] ?? 0), String(run.outcomes['409 CLAIM_LIMIT_REACHED'] ?? 0),
      String(run.requests - known),
      isBare(run.kind) ? '-' : run.rowsInPostgresAfterMs === null ? 'NEVER' : `${Math.round(run.rowsInPostgresAfterMs)} ms`,
      ...CPU_GROUPS.map((group) => String(Math.round(((run.cpuSeconds[group] ?? 0) / run.requests) * 1e6))),
      run.loadAverage.toFixed(1),
      run.problems.length === 0 ? 'yes' : 'NO',
    ];
  }));
}

/** Runs of one kind at one connection count (and process count, when given). */
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

/** The process counts a kind was measured at (empty table only), ascending. */
function processCounts(runs: readonly RunFigures[], kind: ServerKind): number[] {
  return [...new Set(runs.filter((run) => run.kind === kind && run.rowsBefore === 0).map((run) => run.processes))].sort((a, b) => a - b);
}

/**
 * Requests-per-second ratios, always like for like: the same process count on both sides (the
 * embedded server and the baseline run one process, so they are compared with the one-process
 * routes). `bare` is the minimal route (the ceiling), `bare-validating` the second reference.
 */
export function ratios(runs: readonly RunFigures[], connectionCounts: readonly number[], grownProcesses: number | undefined): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  const ratio = (a: RunFigures | undefined, b: RunFigures | undefined) => (a && b ? round(a.requestsPerSecond / b.requestsPerSecond, 3) : null);
  const counts = [...new Set([1, ...distributedProcessCounts(runs), ...processCounts(runs, 'bare')])].sort((a, b) => a - b);
  for (const connections of connectionCounts) {
    for (const processes of counts) {
      const at = (kind: ServerKind) => pick(runs, kind, connections, { processes });
      const distributed = at('distributed');
      if (!distributed && processes > 1) continue;
      out[`distributed(${processes} proc)/bare(${processes} proc)@${connections}`] = ratio(distributed, at('bare'));
      out[`distributed(${processes} proc)/bare-validating(${processes} proc)@${connections}`] = ratio(distributed, at('bare-validating'));
      out[`bare-validating(${processes} proc)/bare(${processes} proc)@${connections}`] = ratio(at('bare-validating'), at('bare'));
    }
    const one = (kind: ServerKind) => pick(runs, kind, connections, { processes: 1 });
    out[`embedded/bare(1 proc)@${connections}`] = ratio(one('embedded'), one('bare'));
    out[`embedded/bare-validating(1 proc)@${connections}`] = ratio(one('embedded'), one('bare-validating'));
    if (one('baseline')) {
      out[`distributed(1 proc)/baseline@${connections}`] = ratio(one('distributed'), one('baseline'));
      out[`embedded/baseline@${connections}`] = ratio(one('embedded'), one('baseline'));
    }
    const grown = runs.find((run) => run.kind === 'distributed' && run.connections === connections && run.rowsBefore > 0);
    if (grown) out[`distributedGrownIndex/distributed@${connections}`] = ratio(grown, pick(runs, 'distributed', connections, { processes: grownProcesses }));
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
  const atMost = (target: string, run: RunFigures | undefined, actual: (run: RunFigures) => number, maximum: number) => {
    if (!run) return checks.push({ target, actual: 'not measured', pass: false, missedBy: 'not measured' });
    const value = actual(run);
    const pass = value <= maximum;
    return checks.push({ target, actual: `${value} ms`, pass, ...(pass ? {} : { missedBy: `${round(value - maximum, 1)} ms over` }) });
  };
  const table = ratios(runs, connectionCounts, grownProcesses);
  const distributedCounts = distributedProcessCounts(runs);
  const baselineMeasured = runs.some((run) => run.kind === 'baseline');
  for (const connections of connectionCounts) {
    for (const processes of distributedCounts.length > 0 ? distributedCounts : [1]) {
      const key = `distributed(${processes} proc)/bare(${processes} proc)@${connections}`;
      atLeast(`distributed ≥ 0.6 × bare req/s @${connections} (${processes} process${processes > 1 ? 'es' : ''} each)`, table[key] ?? null, 0.6, '×');
      if (processes === 1) atLeast(`moonshot: distributed ≥ 0.75 × bare req/s @${connections} (1 process each)`, table[key] ?? null, 0.75, '×');
    }
    atLeast(`embedded ≥ 0.5 × bare req/s @${connections} (1 process each)`, table[`embedded/bare(1 proc)@${connections}`] ?? null, 0.5, '×');
    if (baselineMeasured) {
      atLeast(`distributed ≥ 5 × baseline req/s @${connections} (1 process each)`, table[`distributed(1 proc)/baseline@${connections}`] ?? null, 5, '×');
      atLeast(`embedded ≥ 3 × baseline req/s @${connections} (1 process each)`, table[`embedded/baseline@${connections}`] ?? null, 3, '×');
    }
  }
  // p99 at 256 connections, each mode and process count on its own line.
  for (const processes of distributedCounts.length > 0 ? distributedCounts : [1]) {
    atMost(`distributed (${processes} proc) p99 ≤ 50 ms @256`, pick(runs, 'distributed', 256, { processes }), (run) => run.latencyMs.p99, 50);
  }
  atMost('embedded p99 ≤ 50 ms @256', pick(runs, 'embedded', 256), (run) => run.latencyMs.p99, 50);
  // No starved request in embedded mode: the slowest answer at every connection count.
  for (const connections of connectionCounts) {
    atMost(`embedded max ≤ 1,000 ms @${connections}`, pick(runs, 'embedded', connections), (run) => run.latencyMs.max, 1_000);
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
