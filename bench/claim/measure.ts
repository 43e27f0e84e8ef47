// One measured run: the load generator (wrk or the Node one) in its own process against one fresh
// event, while this process polls PostgreSQL for the event's rows (to time when the last
// acknowledged coupon is durable there) and /proc for the CPU each process spent.
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Db } from '../../src/infra/db.ts';
import { cpuSecondsBetween, cpuSnapshot, machineAccount, machineTicks, type MachineAccount } from '../lib/process-cpu.ts';
import type { LoadPlan, LoadResult } from './load-generator.ts';
import type { RunningServer } from './servers.ts';
import { generateLoadWithWrk } from './wrk-generator.ts';

export type GeneratorName = 'wrk' | 'node';

export interface RunPlan {
  readonly users: number;
  readonly claimsPerUser: number;
  readonly connections: number;
  readonly userPrefix: string;
  /** Coupons in the event; rows are awaited only when the server writes any (not the bare route). */
  readonly quantity: number;
  readonly expectsRows: boolean;
  readonly generator: GeneratorName;
  /** wrk threads (the Node generator is one process). */
  readonly wrkThreads: number;
}

export interface RunResult {
  readonly load: LoadResult;
  /** Milliseconds from the last 201 received to the poll that first saw every row (≤ 10 ms late). */
  readonly rowsInPostgresAfterMs: number | null;
  /** CPU seconds per process group during the run ("server", "postgres", "redis-server", "load generator"). */
  readonly cpuSeconds: Record<string, number>;
  /** The whole machine over the run: CPU seconds busy, busy outside the measured groups and this runner, idle. */
  readonly machine: MachineAccount;
}

const LOAD_GENERATOR = fileURLToPath(new URL('./load-generator.ts', import.meta.url));
const POLL_INTERVAL_MS = 10;
/** How long after the load ends the rows may take before the run counts as not durable. */
const ROWS_DEADLINE_MS = 60_000;

export async function measureRun(server: RunningServer, db: Db, templateId: string, plan: RunPlan): Promise<RunResult> {
  const loadPlan: LoadPlan = {
    host: '127.0.0.1',
    port: server.process.port,
    path: `/v1/coupon-templates/${templateId}/claims`,
    headers: server.headers,
    users: plan.users,
    claimsPerUser: plan.claimsPerUser,
    connections: plan.connections,
    userPrefix: plan.userPrefix,
    collectAcknowledged: plan.expectsRows,
    timeoutMs: 30_000,
  };

  let load: LoadResult | 'running' | 'failed' = 'running';
  let rowsCompleteAt: number | null = null;
  const countRows = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM coupons WHERE template_id = $1', [templateId])).rows[0]!.n;
  const loadState = () => (load === 'running' || load === 'failed' ? load : 'done');
  const poller = plan.expectsRows ? pollUntil(countRows, plan.quantity, loadState, (at) => { rowsCompleteAt = at; }) : Promise.resolve();

  const before = cpuSnapshot();
  const machineBefore = machineTicks();
  const runnerBefore = process.cpuUsage();
  try {
    load = plan.generator === 'wrk'
      ? await generateLoadWithWrk(loadPlan, plan.wrkThreads, (stop) => stoppers.add(stop))
      : await runLoadGenerator(loadPlan);
  } catch (error) {
    load = 'failed';
    await poller;
    throw error;
  } finally {
    stoppers.clear();
  }
  const cpuSeconds = { ...cpuSecondsBetween(before, cpuSnapshot(), server.pids), 'load generator': load.cpuSeconds };
  const runner = process.cpuUsage(runnerBefore);
  const measured = Object.values(cpuSeconds).reduce((sum, seconds) => sum + seconds, 0) + (runner.user + runner.system) / 1e6;
  const machine = machineAccount(machineBefore, machineTicks(), measured);
  await poller;

  const lag = rowsCompleteAt !== null && load.last201At !== null ? Math.max(0, rowsCompleteAt - load.last201At) : null;
  return { load, rowsInPostgresAfterMs: lag, cpuSeconds, machine };
}

const loadGenerators = new Set<ChildProcess>();
/** wrk runs are ended with SIGINT, so they still print what they measured. */
const stoppers = new Set<() => void>();

/** Kills the load generator in flight, if any: a benchmark cut short still reports what it measured. */
export function stopLoadGenerators(): void {
  for (const child of loadGenerators) child.kill('SIGKILL');
  for (const stop of stoppers) stop();
  stoppers.clear();
}

export async function runLoadGenerator(plan: LoadPlan): Promise<LoadResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', LOAD_GENERATOR, JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'pipe'] });
  loadGenerators.add(child);
  child.once('exit', () => loadGenerators.delete(child));
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the load generator failed (exit ${code}):\n${stderr.slice(-4000)}`);
  return JSON.parse(Buffer.concat(stdout).toString('utf8')) as LoadResult;
}

/**
 * Reads `count()` every 10 ms until it reaches `target`, and reports the epoch time of the first
 * read that did. Gives up ROWS_DEADLINE_MS after the load ended, at once if it failed.
 */
export async function pollUntil(count: () => Promise<number>, target: number, load: () => 'running' | 'done' | 'failed', complete: (at: number) => void): Promise<void> {
  let deadline = Number.POSITIVE_INFINITY;
  for (;;) {
    if ((await count()) >= target) {
      complete(performance.timeOrigin + performance.now());
      return;
    }
    if (load() === 'failed') return;
    if (load() === 'done' && deadline === Number.POSITIVE_INFINITY) deadline = Date.now() + ROWS_DEADLINE_MS;
    if (Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
