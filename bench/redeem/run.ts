// bench:redeem — coupon redemption under contention, through HTTP, against the product run as
// its own process (`bin/stampede.js serve`) and against the baseline (SELECT … FOR UPDATE, then
// UPDATE) served by the same app from baseline-server.ts, on one durable PostgreSQL started here.
// Each strategy redeems its own BENCH_COUPONS issued coupons (after BENCH_WARMUP warm-up ones)
// over BENCH_CONNECTIONS keep-alive connections from a separate load-generator process; 1
// request in 10 targets a coupon another request is redeeming at the same moment.
// The measured coupons are split into BENCH_ROUNDS chunks run in ABBA order (baseline, product,
// product, baseline, …), so load from anything else on the machine falls on both alike.
// Every answer and every row is then checked exactly (verify.ts); any discrepancy exits non-zero.
// Last line of output: one JSON object with the figures and ratios.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/infra/free-port.ts';
import { STAMPEDE_COMMAND } from '../../test/harness/spawn-stampede.ts';
import { positiveIntEnv } from '../lib/env.ts';
import { startServerProcess, type ServerProcess } from '../lib/server-process.ts';
import { startBenchServices, type BenchServices } from '../lib/services.ts';
import { formatTable, round, summariseLatencies, type LatencySummary } from '../lib/stats.ts';
import { runLoadProcess, type LoadFiles } from '../lib/load-process.ts';
import type { Answer, LoadPlan, LoadResult, PlannedRedeem } from './load-generator.ts';
import { createBenchPartner, issueBenchCoupons, redeemPlan } from './seed.ts';
import { verifyRedemptions, type Verification } from './verify.ts';

const COUPONS = positiveIntEnv('BENCH_COUPONS', 100_000);
const WARMUP = positiveIntEnv('BENCH_WARMUP', 5_000);
const CONNECTIONS = positiveIntEnv('BENCH_CONNECTIONS', 256);
const ROUNDS = positiveIntEnv('BENCH_ROUNDS', 4);
const CONTENDED_EVERY = 9;
const LOAD_GENERATOR = fileURLToPath(new URL('./load-generator.ts', import.meta.url));

type Strategy = 'baseline' | 'stampede';
const LABELS: Record<Strategy, string> = {
  baseline: 'baseline (SELECT … FOR UPDATE, then UPDATE)',
  stampede: 'stampede (one conditional UPDATE)',
};

interface Contender {
  readonly strategy: Strategy;
  readonly server: ServerProcess;
  readonly templateId: string;
  readonly warmup: PlannedRedeem[];
  readonly chunks: PlannedRedeem[][];
  readonly answers: Answer[];
  durationMs: number;
}

interface Figures {
  readonly requests: number;
  readonly redemptionsPerSecond: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: LatencySummary;
  readonly verification: Verification;
}

async function runLoad(services: BenchServices, dir: string, name: string, plan: Omit<LoadPlan, keyof LoadFiles>, requests: PlannedRedeem[]) {
  // Every chunk starts from the same clean slate of dirty buffers and full-page writes.
  await services.db.query('CHECKPOINT');
  return runLoadProcess<LoadResult, Answer>(LOAD_GENERATOR, dir, name, plan, requests);
}

async function startContender(strategy: Strategy, services: BenchServices, partnerId: string, dir: string): Promise<Contender> {
  const { templateId, coupons } = await issueBenchCoupons(services.db, partnerId, strategy, WARMUP + COUPONS);
  const warmup = redeemPlan(coupons.slice(0, WARMUP), `${strategy}-warm`, CONTENDED_EVERY);
  const measured = coupons.slice(WARMUP);
  const chunkSize = Math.ceil(measured.length / ROUNDS);
  const chunks = Array.from({ length: ROUNDS }, (_, pass) =>
    redeemPlan(measured.slice(pass * chunkSize, (pass + 1) * chunkSize), `${strategy}-${pass}`, CONTENDED_EVERY));
  const args = strategy === 'stampede'
    ? [...STAMPEDE_COMMAND, 'serve']
    : ['--import', 'tsx', fileURLToPath(new URL('./baseline-server.ts', import.meta.url))];
  const server = await startServerProcess(strategy, args, await freePort(), {
    DATABASE_URL: services.databaseUrl,
    STAMPEDE_DATA_DIR: path.join(dir, `${strategy}-data`),
    STAMPEDE_WORKERS: 'off',
    // The benchmark measures redemptions, not the per-key limiter: far above any rate here.
    STAMPEDE_RATE_LIMIT_PER_SECOND: '10000000',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  });
  return { strategy, server, templateId, warmup, chunks, answers: [], durationMs: 0 };
}

const services = await startBenchServices();
const dir = await mkdtemp(path.join(os.tmpdir(), 'stampede-bench-redeem-'));
const contenders: Contender[] = [];
let failed = false;
try {
  const { partnerId, apiKey } = await createBenchPartner(services.db);
  for (const strategy of ['baseline', 'stampede'] as const) contenders.push(await startContender(strategy, services, partnerId, dir));
  const requests = contenders[0]!.chunks.flat().length;
  console.log(`bench:redeem — per strategy ${COUPONS} issued coupons (+${WARMUP} warm-up), ${requests} redeem requests ` +
    `(${requests - COUPONS}, 1 in 10, race another request for the same coupon), ${CONNECTIONS} keep-alive connections from one ` +
    `load-generator process, one server process each (pool ${process.env.STAMPEDE_DB_POOL_SIZE ?? 20}), ${ROUNDS} rounds in ABBA order, ` +
    `durable embedded PostgreSQL (fsync and synchronous_commit on). Machine: ${os.cpus().length} CPUs, ` +
    `${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}.`);
  const planFor = (c: Contender) => ({
    host: '127.0.0.1', port: c.server.port, pathPrefix: c.strategy === 'stampede' ? '' : '/baseline',
    headers: { 'x-api-key': apiKey }, connections: CONNECTIONS, timeoutMs: 60_000,
  });
  const warmupAnswers = new Map<Strategy, Answer[]>();
  for (const c of contenders) warmupAnswers.set(c.strategy, (await runLoad(services, dir, `${c.strategy}-warmup`, planFor(c), c.warmup)).answers);
  for (let pass = 0; pass < ROUNDS; pass++) {
    const order = pass % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      const { result, answers } = await runLoad(services, dir, `${c.strategy}-${pass}`, planFor(c), c.chunks[pass]!);
      c.answers.push(...answers);
      c.durationMs += result.durationMs;
      console.log(`round ${pass + 1}/${ROUNDS} ${c.strategy}: ${result.requests} requests in ${round(result.durationMs / 1000)} s`);
    }
  }
  for (const c of contenders) await c.server.stop();

  const figures = new Map<Strategy, Figures>();
  for (const c of contenders) {
    const verification = await verifyRedemptions(services.db, c.templateId, [...c.warmup, ...c.chunks.flat()], [...warmupAnswers.get(c.strategy)!, ...c.answers]);
    const successes = c.answers.filter(([status]) => status === 200).length;
    figures.set(c.strategy, {
      requests: c.answers.length,
      redemptionsPerSecond: round(successes / (c.durationMs / 1000), 1),
      requestsPerSecond: round(c.answers.length / (c.durationMs / 1000), 1),
      latencyMs: summariseLatencies(Float64Array.from(c.answers, ([, , latencyMs]) => latencyMs)),
      verification,
    });
    for (const problem of verification.problems) console.log(`PROBLEM (${c.strategy}): ${problem}`);
  }
  const baseline = figures.get('baseline')!;
  const stampede = figures.get('stampede')!;
  console.log('');
  console.log(formatTable(
    ['strategy', 'requests', 'redemptions/s', 'requests/s', 'p50 ms', 'p99 ms', 'max ms', 'used once (+warm-up)', 'already used (+warm-up)', 'double uses', 'problems'],
    (['baseline', 'stampede'] as const).map((strategy) => {
      const f = figures.get(strategy)!;
      return [LABELS[strategy], String(f.requests), String(f.redemptionsPerSecond), String(f.requestsPerSecond),
        String(f.latencyMs.p50), String(f.latencyMs.p99), String(f.latencyMs.max),
        String(f.verification.successes), String(f.verification.alreadyUsed), String(f.verification.doubleUses), String(f.verification.problems.length)];
    }),
  ));
  const ratios = {
    redemptionsPerSecond: round(stampede.redemptionsPerSecond / baseline.redemptionsPerSecond),
    p99: round(stampede.latencyMs.p99 / baseline.latencyMs.p99),
  };
  console.log(`\nstampede / baseline: ${ratios.redemptionsPerSecond}× redemptions/s, p99 ${ratios.p99}× (lower is better)`);
  failed = [baseline, stampede].some((f) => f.verification.problems.length > 0);
  console.log(failed
    ? 'VERIFICATION FAILED'
    : 'verified (warm-up included): every coupon answered 200 exactly once, every other answer 409 COUPON_ALREADY_USED, ' +
      'USED rows = successful answers with the answered order and discount, one redemption in force per coupon in the history: 0 double uses');
  const json = (f: Figures) => ({
    requests: f.requests, redemptionsPerSecond: f.redemptionsPerSecond, requestsPerSecond: f.requestsPerSecond, latencyMs: f.latencyMs,
    usedOnce: f.verification.successes, alreadyUsed: f.verification.alreadyUsed, doubleUses: f.verification.doubleUses, problems: f.verification.problems.length,
  });
  console.log(JSON.stringify({
    bench: 'redeem', coupons: COUPONS, warmup: WARMUP, connections: CONNECTIONS, rounds: ROUNDS, contendedShare: 0.1,
    verified: !failed, stampede: json(stampede), baseline: json(baseline), ratios,
  }));
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  for (const c of contenders) await c.server.stop();
  await services.stop();
  await rm(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
