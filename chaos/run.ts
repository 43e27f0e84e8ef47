// `npm run chaos -- --seed N [--minutes M] [--quick] [--redis single|cluster|sentinel]`: a distributed Stampede on this machine under
// a closed-loop mixed load, with faults injected on a schedule derived from the seed, then
// checkers over the recorded history. The last line printed is one JSON object: the verdict.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPool } from '../src/infra/db.ts';
import { connectRedis } from '../src/infra/redis.ts';
import { createLogger } from '../src/infra/logger.ts';
import { templateClaimKeys } from '../src/claims/redis-keys.ts';
import { spawnStampede } from '../test/harness/spawn-stampede.ts';
import { checkAnswers, checkClaims, checkPoints, checkRedemptions, type Verdict } from './checkers.ts';
import { RECLAIM_IDLE_MS, startDeployment, type Deployment, type UnplannedExit } from './deployment.ts';
import { createHistory, delay, runClients, settlePointsCalls } from './load.ts';
import { CLUSTER_MASTERS } from './redis-topology.ts';
import { buildSchedule, type Fault, type RedisTopology } from './schedule.ts';

const USAGE = 'usage: npm run chaos -- --seed N [--minutes M] [--quick] [--redis single|cluster|sentinel]';
const { values } = parseArgs({ options: { seed: { type: 'string' }, minutes: { type: 'string' }, quick: { type: 'boolean' }, redis: { type: 'string', default: 'single' } } });
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 1_000_000);
const minutes = values.minutes !== undefined ? Number(values.minutes) : values.quick ? 1.5 : 5;
const topology = values.redis as RedisTopology;
if (!Number.isInteger(seed) || seed < 0 || !(minutes > 0) || !['single', 'cluster', 'sentinel'].includes(topology)) throw new Error(USAGE);
const SHAPE = { serves: 2, workers: 2, redis: topology };
const CLIENTS = values.quick ? 12 : 24;
const EVENTS = 4;
// Stock and users grow with the run, so claims are still being issued (and can be lost) in its
// last minutes rather than sold out after the first two.
const SCALE = Math.max(1, Math.round(minutes / 1.5));
const STOCK = 400 * SCALE;
const USERS_PER_CLIENT = 12 * SCALE;
const PER_USER = 2;
const BULK_USERS = 2_000;

const started = Date.now();
const log = (line: string) => process.stderr.write(`[chaos +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
const durationMs = Math.round(minutes * 60_000);
const schedule = buildSchedule(seed, {
  durationMs, serves: SHAPE.serves, workers: SHAPE.workers, minPauseMs: RECLAIM_IDLE_MS + 1_000,
  redis: { topology, shards: topology === 'cluster' ? CLUSTER_MASTERS : 1 },
});
const replay = `npm run chaos -- --seed ${seed} --minutes ${minutes}${values.quick ? ' --quick' : ''}${topology === 'single' ? '' : ` --redis ${topology}`}`;
const loadAtStart = os.loadavg();
log(`seed ${seed}, ${minutes} min, ${CLIENTS} clients, Redis ${topology}; replay with: ${replay}`);
for (const fault of schedule) log(`  schedule +${(fault.at / 1000).toFixed(1)}s ${fault.kind} ${fault.target} for ${fault.holdMs} ms`);

/** Faults by kind that struck, and those that could not (their target was still down from another fault, say). */
const injected: Record<string, number> = {};
const skipped: Record<string, number> = {};

const logDir = path.join(os.tmpdir(), `stampede-chaos-${seed}-${process.pid}`);
const deployment = await startDeployment(SHAPE, log, logDir);
// An error nobody awaited must not leave PostgreSQL, Redis and four Stampede processes running.
const abort = (error: unknown) => {
  log(`aborting: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  console.log(JSON.stringify({ verdict: 'error', seed, minutes, redis: topology, error: String(error) }));
  void deployment.stop().finally(() => process.exit(1));
};
process.once('uncaughtException', abort).once('unhandledRejection', abort);
let exitCode = 1;
try {
  exitCode = await run(deployment);
} catch (error) {
  log(`run failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  console.log(JSON.stringify({ verdict: 'error', seed, minutes, redis: topology, error: String(error) }));
} finally {
  await deployment.stop().catch((error) => log(`stop: ${String(error)}`));
  log(`process logs: ${logDir}`);
}
process.exit(exitCode);

async function run(d: Deployment): Promise<number> {
  const admin = async (name: string) => {
    const response = await fetch(`${d.apis[0]}/v1/partners`, {
      method: 'POST', headers: { authorization: `Bearer ${d.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }),
    });
    if (response.status !== 201) throw new Error(`partner: ${response.status} ${await response.text()}`);
    return await response.json() as { id: string; apiKey: string };
  };
  const live = await admin('chaos live');
  const bulk = await admin('chaos bulk');
  const call = async (apiKey: string, path: string, body: unknown) => {
    const response = await fetch(`${d.apis[0]}${path}`, { method: 'POST', headers: { 'x-api-key': apiKey, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (response.status !== 201 && response.status !== 202) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return await response.json() as Record<string, string>;
  };
  const window = { claimStartsAt: new Date(Date.now() - 60_000).toISOString(), claimEndsAt: new Date(Date.now() + 4 * 3_600_000).toISOString() };
  const template = (name: string, totalQuantity: number | null, perUserLimit: number) => call(live.apiKey, '/v1/coupon-templates', {
    name, discount: { type: 'FIXED', value: 500 }, totalQuantity, perUserLimit, ...window, validity: { type: 'RELATIVE', days: 30 },
  });
  const events = await Promise.all(Array.from({ length: EVENTS }, (_, i) => template(`chaos event ${i}`, STOCK, PER_USER)));
  const gift = await template('chaos gift', null, 1);
  // The bulk jobs are submitted before the first fault and must finish exactly despite every later one.
  const distribution = await call(live.apiKey, `/v1/coupon-templates/${gift.id}/distributions`, { userIds: Array.from({ length: BULK_USERS }, (_, i) => `g-${i}`) });
  const accrual = await call(bulk.apiKey, '/v1/points/accruals', { items: Array.from({ length: BULK_USERS }, (_, i) => ({ userId: `a-${i % 200}`, amount: 7, idempotencyKey: `acc-${i}` })) });

  const target = { apis: d.apis, apiKey: live.apiKey, templates: events.map((e) => ({ id: e.id! })), usersPerClient: USERS_PER_CLIENT };
  const history = createHistory();
  const loadStart = Date.now();
  const faults = runSchedule(d, schedule, loadStart);
  await runClients(target, history, { clients: CLIENTS, seed, until: () => Date.now() - loadStart >= durationMs });
  await faults;
  log(`load done: ${history.attempts.length} requests; healing and draining`);
  await d.healAll();

  const logger = createLogger('warn');
  const db = createPool(d.databaseUrl, 4, logger);
  const redis = await connectRedis(d.redisTarget, createLogger('error')); // its reconnect warnings are not the verdict's stdout
  try {
    const deadline = Date.now() + 180_000;
    const settled = await settlePointsCalls(target, history, deadline);
    for (const e of events) {
      while ((await redis.xLen(templateClaimKeys(e.id!).stream)) > 0) {
        if (Date.now() > deadline) throw new Error(`claims of ${e.id} not drained`);
        await delay(200);
      }
    }
    const jobs: Record<string, unknown>[] = [];
    for (const [job, apiKey] of [[distribution.jobId!, live.apiKey], [accrual.jobId!, bulk.apiKey]] as const) {
      for (;;) {
        const view = await (await fetch(`${d.apis[0]}/v1/jobs/${job}`, { headers: { 'x-api-key': apiKey } })).json() as Record<string, unknown>;
        if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(view.status as string)) { jobs.push(view); break; }
        if (Date.now() > deadline) throw new Error(`job ${job} not finished: ${JSON.stringify(view)}`);
        await delay(500);
      }
    }

    const answers = checkAnswers(history);
    const claims = await checkClaims(db, history, events.map((e) => ({ id: e.id!, totalQuantity: STOCK, perUserLimit: PER_USER })));
    const redemptions = await checkRedemptions(db, history);
    const points = await checkPoints(db, history, live.id);
    const bulkCheck = await checkBulk(db, jobs, gift.id!, bulk.id);
    const reconcile = await checkReconcile(d, events.map((e) => e.id!));
    const exits = checkExits(d.exits());
    const verdicts: Record<string, Verdict> = { answers, claims, redemptions, points, bulk: bulkCheck, reconcile, exits };
    const violations = Object.entries(verdicts).flatMap(([name, v]) => v.violations.map((line) => `${name}: ${line}`));
    for (const line of violations.slice(0, 50)) log(`VIOLATION ${line}`);
    const verdict = violations.length === 0 ? 'pass' : 'fail';
    console.log(JSON.stringify({
      verdict, seed, minutes, redis: topology, requests: history.attempts.length, answers: answers.byStatus,
      faultsScheduled: schedule.length, faultsInjected: Object.values(injected).reduce((sum, n) => sum + n, 0), faultsByKind: injected, faultsSkipped: skipped,
      unplannedExits: exits.summary, pointsCallsSettledAfterwards: settled,
      acknowledgedChecked: { claims: claims.checked, redemptions: redemptions.checked, points: points.checked, bulkItems: bulkCheck.checked },
      lost: claims.lost + redemptions.lost + points.lost + bulkCheck.lost, violations: violations.length, seconds: Math.round((Date.now() - started) / 1000),
      loadAverage: { atStart: loadAtStart.map((n) => Number(n.toFixed(1))), atEnd: os.loadavg().map((n) => Number(n.toFixed(1))) }, replay,
    }));
    return verdict === 'pass' ? 0 : 1;
  } finally {
    await redis.close().catch(() => undefined);
    await db.end();
  }
}

async function runSchedule(d: Deployment, faults: readonly Fault[], loadStart: number): Promise<void> {
  await Promise.all(faults.map(async (fault) => {
    await delay(Math.max(0, loadStart + fault.at - Date.now()));
    log(`inject ${fault.kind} ${fault.target}`);
    // A fault that cannot be injected or healed now (its target is still restarting) is logged;
    // healAll() brings everything back before the checks.
    await d.inject(fault).then(
      () => { injected[fault.kind] = (injected[fault.kind] ?? 0) + 1; },
      (error) => { skipped[fault.kind] = (skipped[fault.kind] ?? 0) + 1; log(`inject ${fault.kind} ${fault.target} failed: ${String(error)}`); });
    await delay(fault.holdMs);
    log(`heal ${fault.kind} ${fault.target}`);
    await d.heal(fault).catch((error) => log(`heal ${fault.kind} ${fault.target} failed: ${String(error)}`));
  }));
}

/** Both jobs succeeded with exact counts, and what they wrote is there once. */
async function checkBulk(db: ReturnType<typeof createPool>, jobs: Record<string, unknown>[], giftId: string, bulkPartnerId: string): Promise<Verdict> {
  const violations: string[] = [];
  for (const job of jobs) {
    if (job.status !== 'SUCCEEDED' || job.succeeded !== BULK_USERS || job.total !== BULK_USERS) violations.push(`job ${String(job.type)}: ${JSON.stringify(job)}`);
  }
  const { rows: [gifts] } = await db.query<{ rows: number; users: number }>('SELECT count(*)::int AS rows, count(DISTINCT user_id)::int AS users FROM coupons WHERE template_id = $1', [giftId]);
  if (gifts!.rows !== BULK_USERS || gifts!.users !== BULK_USERS) violations.push(`distribution wrote ${gifts!.rows} coupons for ${gifts!.users} users, expected ${BULK_USERS}`);
  const { rows: [points] } = await db.query<{ total: string }>('SELECT coalesce(sum(balance), 0)::text AS total FROM point_wallets WHERE partner_id = $1', [bulkPartnerId]);
  if (Number(points!.total) !== BULK_USERS * 7) violations.push(`accrual credited ${points!.total} points, expected ${BULK_USERS * 7}`);
  violations.push(...(await import('../src/points/invariants.ts').then((m) => m.checkPointsInvariants(db, { partnerId: bulkPartnerId }))).violations);
  return { checked: 2 * BULK_USERS, lost: Math.max(0, BULK_USERS - gifts!.rows), violations };
}

/** `stampede reconcile` exits 0 for every event: Redis and PostgreSQL agree after the drain. */
async function checkReconcile(d: Deployment, templateIds: readonly string[]): Promise<Verdict> {
  const violations: string[] = [];
  for (const id of templateIds) {
    const run = spawnStampede(['reconcile', id], d.env);
    const code = await run.exited;
    if (code !== 0) violations.push(`reconcile ${id} exited ${String(code)}: ${run.output().trim().split('\n').slice(-3).join(' | ')}`);
  }
  return { checked: templateIds.length, lost: 0, violations };
}

/**
 * Exits nobody asked for. At start-up they are by design (a process refuses to start while it
 * cannot migrate PostgreSQL or check Redis's durability; the supervisor starts it again): reported
 * with the reason the process logged. While running they are a bug: a process must ride out a
 * restart of PostgreSQL or Redis, answering 503 meanwhile.
 */
function checkExits(exits: readonly UnplannedExit[]): Verdict & { summary: Record<string, unknown> } {
  const count = (phase: UnplannedExit['phase']) => {
    const byProcess: Record<string, number> = {};
    for (const exit of exits) if (exit.phase === phase) byProcess[exit.process] = (byProcess[exit.process] ?? 0) + 1;
    return byProcess;
  };
  const reasons = new Map<string, number>();
  for (const exit of exits) {
    const key = `${exit.phase}: ${exit.reason}`;
    reasons.set(key, (reasons.get(key) ?? 0) + 1);
  }
  const violations = exits.filter((exit) => exit.phase === 'running').map((exit) => `${exit.process} exited while running (${String(exit.code)}): ${exit.reason}`);
  return {
    checked: exits.length, lost: 0, violations,
    summary: {
      atStartUp: count('start-up'), whileRunning: count('running'),
      reasons: [...reasons].map(([reason, n]) => (n > 1 ? `${reason} (×${n})` : reason)),
    },
  };
}
