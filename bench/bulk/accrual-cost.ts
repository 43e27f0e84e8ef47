// `npx tsx bench/bulk/accrual-cost.ts [--items=200000] [--lanes=2] [--statements] [--waits] [--explain] [--pg=name=value]`
//
// What one accrual item costs PostgreSQL, without HTTP: stages --items items as jobs of 10,000
// (the bench:bulk shape: items/5 users, half with expiresAt) straight into job_chunks, then applies
// every chunk with the accrual handler on --lanes connections (one job per connection at a time,
// as the job queue runs them), on a durable embedded PostgreSQL (fsync on). Prints the backends'
// CPU time per item (from /proc/<pid>/stat), WAL bytes per item, the wall time and, with
// --statements, the top statements of pg_stat_statements. Verifies the points invariants.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../../src/context.ts';
import { createPool } from '../../src/infra/db.ts';
import { startEmbeddedPostgres } from '../../src/infra/embedded-postgres.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { migrate } from '../../src/infra/migrate.ts';
import { insertJob, readJob, recordChunk, setStagedInput } from '../../src/jobs/job-repository.ts';
import { accrualHandler, stageAccrualItems, type AccrualItem } from '../../src/points/accrual.ts';
import { checkPointsInvariants } from '../../src/points/invariants.ts';

const { values: args } = parseArgs({
  options: {
    items: { type: 'string', default: '200000' },
    lanes: { type: 'string', default: '2' },
    statements: { type: 'boolean', default: false },
    waits: { type: 'boolean', default: false },
    explain: { type: 'boolean', default: false },
    // extra server settings, e.g. --pg=wal_buffers=64MB (repeatable)
    pg: { type: 'string', multiple: true, default: [] },
  },
});
const ITEMS = Number(args.items);
const LANES = Number(args.lanes);
const PER_JOB = 10_000;
const USERS = Math.max(1, Math.floor(ITEMS / 5));

const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

/** The chunk's statements run under EXPLAIN ANALYZE, their plans printed (counts then read 0, no wallet missing or due). */
function explaining(client: pg.PoolClient): pg.PoolClient {
  const query = async (text: string, values?: unknown[]) => {
    if (!/^\s*(WITH|INSERT|SELECT|UPDATE)/.test(text)) return client.query(text, values);
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${text}`, values);
    console.log(rows.map((row) => row['QUERY PLAN']).join('\n'));
    return { rows: [{ items: 0, fresh: 0, recorded: 0, reused: 0, expired: 0, missing: false, due: [] }], rowCount: 0 };
  };
  return new Proxy(client, { get: (target, key) => (key === 'query' ? query : Reflect.get(target, key)) }) as pg.PoolClient;
}

const logger = createLogger('warn');
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-accrual-cost-'));
const postgres = await startEmbeddedPostgres({
  dataDir, port: 0, logger, fast: false,
  settings: {
    ...(args.statements ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'top' } : {}),
    ...Object.fromEntries(args.pg.map((setting) => setting.split('=', 2) as [string, string])),
  },
});
const db = createPool(postgres.url, LANES + 2, logger);
try {
  await migrate(db, logger);
  if (args.statements) await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const partnerId = uuidv7();
  await db.query(`INSERT INTO partners (id, name) VALUES ($1, 'accrual-cost')`, [partnerId]);
  const expiresAt = new Date(Date.now() + 365 * 86_400_000).toISOString();
  const jobIds: string[] = [];
  for (let start = 0; start < ITEMS; start += PER_JOB) {
    const items: AccrualItem[] = [];
    for (let n = start; n < Math.min(ITEMS, start + PER_JOB); n++) {
      items.push({ userId: `member-${n % USERS}`, amount: 1 + (n % 100), idempotencyKey: `cost:${n}`, expiresAt: n % 2 ? expiresAt : undefined });
    }
    const id = uuidv7();
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      await insertJob(client, { id, partnerId, type: 'POINT_ACCRUAL', params: { pointType: 'default' }, staged: true });
      await setStagedInput(client, id, await stageAccrualItems(client, id, 'default', items), items.length);
      await client.query(`UPDATE jobs SET status = 'RUNNING' WHERE id = $1`, [id]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    jobIds.push(id);
  }
  await db.query('CHECKPOINT');
  if (args.statements) await db.query('SELECT pg_stat_statements_reset()');
  const ctx = { clock: () => new Date() } as unknown as AppContext;
  const walBefore = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!.lsn;
  const started = performance.now();
  const waits = new Map<string, number>();
  let sampling = args.waits;
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await db.query<{ w: string }>(
        `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()
         UNION ALL SELECT 'bg ' || backend_type || ' ' || coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity WHERE backend_type <> 'client backend'`);
      for (const { w } of rows) waits.set(w, (waits.get(w) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  let nextJob = 0;
  const backendCpu = await Promise.all(Array.from({ length: LANES }, async () => {
    const client = await db.connect();
    try {
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const before = cpuSeconds(pid);
      while (nextJob < jobIds.length) {
        const jobId = jobIds[nextJob++]!;
        for (;;) {
          const job = (await readJob(client, jobId))!;
          if (job.nextChunk >= job.chunkCount) break;
          await client.query('BEGIN');
          await client.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [jobId]);
          const explainThis = args.explain && jobId === jobIds[Math.floor(jobIds.length / 2)] && job.nextChunk === 1;
          const outcome = await accrualHandler.processChunk(ctx, explainThis ? explaining(client) : client, job, job.nextChunk);
          await recordChunk(client, jobId, { ...outcome, notServed: outcome.notServed }, job.nextChunk + 1);
          await client.query('COMMIT');
        }
      }
      return cpuSeconds(pid) - before;
    } finally {
      client.release();
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  sampling = false;
  await sampler;
  if (args.waits) console.log([...waits].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([w, n]) => `${n}\t${w}`).join('\n'));
  const { rows: [wal] } = await db.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::bigint AS bytes', [walBefore]);
  const cpu = backendCpu.reduce((a, b) => a + b, 0);
  const { rows: [applied] } = await db.query<{ n: number }>(`SELECT coalesce(sum(succeeded), 0)::int AS n FROM jobs WHERE id = ANY($1::uuid[])`, [jobIds]);
  const invariants = await checkPointsInvariants(db, { partnerId });
  console.log(`${ITEMS} items on ${LANES} lanes: ${seconds.toFixed(2)} s wall, backend CPU ${cpu.toFixed(2)} s = ${Math.round((cpu / ITEMS) * 1e6)} µs/item `
    + `(${backendCpu.map((c) => c.toFixed(1)).join(' + ')}), WAL ${Math.round(Number(wal!.bytes) / ITEMS)} B/item, applied ${applied!.n}, `
    + `invariants ${invariants.violations.length === 0 ? 'hold' : `BROKEN: ${invariants.violations.slice(0, 3).join('; ')}`}`);
  if (args.statements) {
    const { rows } = await db.query(
      `SELECT round(total_exec_time)::int AS ms, calls, round((total_exec_time / calls)::numeric, 2) AS ms_per_call, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS query
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`);
    console.table(rows);
  }
} finally {
  await db.end();
  await postgres.stop();
  await rm(dataDir, { recursive: true, force: true });
}
