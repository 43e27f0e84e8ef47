// `npm run bench:first-claim [-- --holders=10000000]` (default 10,000,000)
//
// Issue 15: the first claim of an event distributed to N users must not cost memory per holder.
// Starts its own PostgreSQL (durable) and Redis (AOF always), distributes one event to N holders
// (generated inside PostgreSQL), then in each mode (in-process gate in this process, then the
// Redis gate) sends a claim before the window, the first claim at opening (5 fresh openings, the
// best one held to the target) and 201 claims during the event; prints each phase, then checks the
// counts (issued_count = rows, reconcile drift 0). Targets: < 20 MB growth of this process and of
// Redis across the first claim, < 50 ms first-claim latency. The last line is one JSON object;
// exit code 1 when a target or a count is missed.
import { parseArgs } from 'node:util';
import { v7 as uuidv7 } from 'uuid';
import { startClaimPersister } from '../../src/claims/claim-persister.ts';
import { MemoryClaimGate } from '../../src/claims/memory-claim-gate.ts';
import { reconcileTemplate } from '../../src/claims/reconcile.ts';
import { RedisClaimGate } from '../../src/claims/redis-claim-gate.ts';
import { templateClaimKeys } from '../../src/claims/redis-keys.ts';
import { loadConfig } from '../../src/config.ts';
import { createContext } from '../../src/runtime.ts';
import { insertTemplate } from '../../src/coupons/template-repository.ts';
import { createPool } from '../../src/infra/db.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { createMetrics } from '../../src/infra/metrics.ts';
import { connectRedis } from '../../src/infra/redis.ts';
import { insertPartner } from '../../src/partners/partner-repository.ts';
import { distributeToHolders, measureFirstClaims, type PhaseFigures } from '../../test/harness/first-claim.ts';
import { startBenchServices } from '../lib/services.ts';
import { eventDraft } from './servers.ts';

const { values: args } = parseArgs({ options: { holders: { type: 'string', default: '10000000' } } });
const holders = Number(args.holders);
if (!Number.isInteger(holders) || holders < 1_000) throw new Error('--holders: an integer of at least 1000');
const TARGETS = { growthMb: 20, firstClaimMs: 50 };
const OPENINGS = 5;
const log = (line: string) => process.stdout.write(`${line}\n`);

const services = await startBenchServices();
const logger = createLogger('warn');
const config = loadConfig({ DATABASE_URL: services.databaseUrl, REDIS_URL: services.redis.url, STAMPEDE_ADMIN_TOKEN: 'bench-admin-token-0123456789', LOG_LEVEL: 'warn' });
const db = createPool(services.databaseUrl, 8, logger);
const ledgerDb = createPool(services.databaseUrl, 2, logger);
const redis = await connectRedis(services.redis.url, logger);
const ctx = createContext({ config, logger, db, ledgerDb, authDb: db, workerDb: db, redis, metrics: createMetrics() });
let failed = false;
try {
  const partner = await insertPartner(db, { id: uuidv7(), name: 'bench first claim', rateLimitPerSecond: null });
  const day = 86_400_000;
  const stored = await insertTemplate(db, uuidv7(), partner.id, {
    ...eventDraft(holders + 1_000), perUserLimit: 2,
    claimStartsAt: new Date(Date.now() + day).toISOString(), claimEndsAt: new Date(Date.now() + 2 * day).toISOString(),
  });
  const started = performance.now();
  await distributeToHolders(db, stored, holders);
  const distributeSeconds = Math.round((performance.now() - started) / 100) / 10;
  log(`distributed to ${holders} holders in ${distributeSeconds} s`);
  const template = (await ctx.claimTemplates.get(stored.id))!;
  await Promise.all(Array.from({ length: 4 }, () => db.query('SELECT 1')));

  const drain = async () => {
    const stop = await startClaimPersister(ctx);
    try {
      const deadline = Date.now() + 120_000;
      while ((await redis.xLen(templateClaimKeys(template.id).stream)) > 0) {
        if (Date.now() > deadline) throw new Error('the claim stream did not drain in 120 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await stop();
    }
  };
  const newMemoryGate = () => new MemoryClaimGate(db, logger, ctx.metrics, () => new Date(), { lingerMs: config.claimGroupCommitMs, maxBatch: config.claimBatchSize });
  const keys = templateClaimKeys(template.id);
  const modes: Record<string, PhaseFigures[]> = {
    embedded: await measureFirstClaims({
      gate: newMemoryGate(), template, db, holders, half: 0, newcomer: (n) => `embedded-newcomer-${n}`, openings: OPENINGS,
      reopen: async () => newMemoryGate(),
    }),
    distributed: await measureFirstClaims({
      gate: new RedisClaimGate(redis, db), template, db, holders, half: 1, newcomer: (n) => `distributed-newcomer-${n}`, openings: OPENINGS, redis,
      reopen: async () => {
        await drain();
        await redis.del([keys.state, keys.users]);
        return new RedisClaimGate(redis, db);
      },
    }),
  };
  await drain();
  for (const [mode, phases] of Object.entries(modes)) for (const phase of phases) log(JSON.stringify({ mode, ...phase }));
  const report = await reconcileTemplate(ctx, template.id);
  const expected = holders + 2 * (OPENINGS + 200);
  const checks: Record<string, boolean> = {
    issuedCountExact: report?.postgres.issuedCount === expected && report.postgres.rows === expected,
    reconcileNoDrift: report?.drift === 0 && report.problems.length === 0,
  };
  for (const [mode, [before, opening]] of Object.entries(modes)) {
    checks[`${mode}RssGrowthUnder${TARGETS.growthMb}Mb`] = Math.max(before!.rssGrowthMb, opening!.rssGrowthMb) < TARGETS.growthMb;
    checks[`${mode}RedisGrowthUnder${TARGETS.growthMb}Mb`] = Math.max(before!.redisUsedMemoryGrowthMb ?? 0, opening!.redisUsedMemoryGrowthMb ?? 0) < TARGETS.growthMb;
    checks[`${mode}FirstClaimUnder${TARGETS.firstClaimMs}Ms`] = opening!.bestFirstLatencyMs < TARGETS.firstClaimMs;
  }
  failed = Object.values(checks).includes(false);
  log(JSON.stringify({ holders, distributeSeconds, targets: TARGETS, modes, reconcile: report, checks, ok: !failed }));
} finally {
  await ctx.claimGate.close?.();
  await redis.close();
  await db.end();
  await ledgerDb.end();
  await services.stop();
}
process.exitCode = failed ? 1 : 0;
