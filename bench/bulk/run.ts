// `npm run bench:bulk [-- --users=10000000] [--items=1000000]`
//
// The bulk-job benchmark of issue 6, against the product as a separate process (`stampede serve`)
// on a durable PostgreSQL (fsync on) that the benchmark starts itself:
//   1. distribute one template to N users from a generated CSV stream posted over HTTP, end to end
//      (upload → 202 → job SUCCEEDED), against a raw binary COPY of the same rows into the same
//      table (another template) on as many connections as the product's lanes, in the same run;
//   2. accrue points for M items posted as M/10,000 requests of 10,000, until every job succeeded.
// The product's peak RSS is read from /proc/<pid>/status (VmHWM), a fresh process per part.
// Counts are verified in PostgreSQL (and the points invariants checked); any failure exits
// non-zero. The last line of output is one JSON object with every figure, ratio and target.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Readable } from 'node:stream';
import { couponIdPrefix, writeCoupons } from '../../src/coupons/distribution-repository.ts';
import { freePort } from '../../src/infra/free-port.ts';
import { checkPointsInvariants } from '../../src/points/invariants.ts';
import { spawnStampede, type StampedeProcess } from '../../test/harness/spawn-stampede.ts';
import { startBenchServices } from '../lib/services.ts';

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '10000000' },
    items: { type: 'string', default: '1000000' },
  },
});
const USERS = Number(args.users);
const ITEMS = Number(args.items);
const ITEMS_PER_REQUEST = 10_000;
const ACCRUAL_USERS = Math.max(1, Math.floor(ITEMS / 5));
const CONCURRENT_REQUESTS = 4;
const BASELINE_CONNECTIONS = 2;
const BASELINE_BATCH = 10_000;
const ADMIN = 'bench-bulk-admin-token-0123456789';
const TARGETS = { distributionSeconds: 120, rssMb: 300, copyRatio: 0.5, accrualSeconds: 60 };

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const peakRssMb = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'))!;
  return round(Number(line.split(/\s+/)[1]) / 1024, 1);
};
const problems: string[] = [];
const check = (ok: boolean, message: string) => { if (!ok) problems.push(message); };

/** One user id per line, generated as it is sent: the benchmark never holds the file either. */
function csvStream(count: number, prefix: string): Readable {
  let next = 0;
  return new Readable({
    read() {
      if (next >= count) { this.push(null); return; }
      let chunk = next === 0 ? 'user_id\n' : '';
      const end = Math.min(count, next + 20_000);
      for (; next < end; next++) chunk += `${prefix}${next}\n`;
      this.push(chunk);
    },
  });
}

function post(base: string, path: string, headers: Record<string, string>, body: Readable | string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${base}${path}`, { method: 'POST', headers }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
    if (typeof body === 'string') request.end(body);
    else body.pipe(request);
  });
}

async function main() {
  console.log(`bench:bulk — ${os.availableParallelism()} cores, ${round(os.totalmem() / 1024 ** 3, 1)} GiB RAM, node ${process.version}`);
  console.log(`config: distribution ${USERS.toLocaleString('en-US')} users (CSV over HTTP); accrual ${ITEMS.toLocaleString('en-US')} items as ${Math.ceil(ITEMS / ITEMS_PER_REQUEST)} requests of ${ITEMS_PER_REQUEST} (${CONCURRENT_REQUESTS} at a time) for ${ACCRUAL_USERS.toLocaleString('en-US')} users; durable PostgreSQL (fsync on)`);
  const services = await startBenchServices();
  let product: StampedeProcess | undefined;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const startProduct = async () => {
    // One partner posts all 100 accrual requests at once: its quota of unfinished jobs (default 50)
    // is raised to fit, as an operator would for such a load. One job per partner still runs at a time.
    const p = spawnStampede(['serve'], {
      DATABASE_URL: services.databaseUrl, PORT: String(port), HOST: '127.0.0.1', STAMPEDE_ADMIN_TOKEN: ADMIN, LOG_LEVEL: 'info',
      STAMPEDE_PARTNER_MAX_QUEUED_JOBS: '200',
    });
    await p.waitForOutput(/Server listening/, 120_000);
    return p;
  };
  const stopProduct = async (p: StampedeProcess) => { p.child.kill('SIGTERM'); await p.exited; };
  const json = (headers: Record<string, string>) => ({ ...headers, 'content-type': 'application/json' });
  try {
    product = await startProduct();
    const partner = JSON.parse((await post(base, '/v1/partners', json({ authorization: `Bearer ${ADMIN}` }), JSON.stringify({ name: 'bench-bulk' }))).body) as { id: string; apiKey: string };
    await services.db.query('UPDATE partners SET rate_limit_per_second = 1000000 WHERE id = $1', [partner.id]);
    const headers = { 'x-api-key': partner.apiKey };
    const now = Date.now();
    const templateBody = (name: string) => JSON.stringify({
      name, discount: { type: 'FIXED', value: 1000 }, totalQuantity: null, perUserLimit: 1,
      claimStartsAt: new Date(now).toISOString(), claimEndsAt: new Date(now + 86_400_000).toISOString(),
      validity: { type: 'ABSOLUTE', validFrom: new Date(now).toISOString(), validUntil: new Date(now + 30 * 86_400_000).toISOString() },
    });
    const createTemplate = async (name: string) => (JSON.parse((await post(base, '/v1/coupon-templates', json(headers), templateBody(name))).body) as { id: string }).id;
    const baselineTemplate = await createTemplate('raw COPY baseline');
    const productTemplate = await createTemplate('bulk distribution');
    const jobOf = async (id: string) => (await services.db.query('SELECT * FROM jobs WHERE id = $1', [id])).rows[0];

    // 1a. Baseline: raw COPY of the same rows (ids, user ids, validity) into coupons, as fast as
    // PostgreSQL takes them: binary COPY encoded by the product's writeCoupons, in batches of
    // 10,000 users sorted like a chunk's, on two connections (the product's two lanes), one
    // transaction each. No upload, staging, decision, job bookkeeping or commit per chunk.
    const validFrom = new Date(now);
    const validUntil = new Date(now + 30 * 86_400_000);
    const copyStarted = performance.now();
    await Promise.all(Array.from({ length: BASELINE_CONNECTIONS }, async (_, connection) => {
      const client = await services.db.connect();
      try {
        await client.query('BEGIN');
        for (let start = connection * BASELINE_BATCH; start < USERS; start += BASELINE_CONNECTIONS * BASELINE_BATCH) {
          const userIds = Array.from({ length: Math.min(BASELINE_BATCH, USERS - start) }, (_, i) => `user-${start + i}`).sort();
          const rows = { partnerId: partner.id, templateId: baselineTemplate, validFrom, validUntil, idPrefix: couponIdPrefix(new Date()) };
          await writeCoupons(client, rows, { userIds });
        }
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }));
    const copySeconds = (performance.now() - copyStarted) / 1000;
    const { rows: [baseline] } = await services.db.query('SELECT count(*)::int AS rows FROM coupons WHERE template_id = $1', [baselineTemplate]);
    check(baseline.rows === USERS, `raw COPY wrote ${baseline.rows} rows`);
    console.log(`raw COPY (binary, ${BASELINE_CONNECTIONS} connections): ${USERS.toLocaleString('en-US')} rows in ${round(copySeconds)} s (${Math.round(USERS / copySeconds).toLocaleString('en-US')} rows/s)`);

    // 1b. The product: CSV stream over HTTP → 202 → job SUCCEEDED.
    const started = performance.now();
    const accepted = await post(base, `/v1/coupon-templates/${productTemplate}/distributions`, { ...headers, 'content-type': 'text/csv' }, csvStream(USERS, 'user-'));
    check(accepted.status === 202, `distribution upload answered ${accepted.status}: ${accepted.body}`);
    const uploadSeconds = (performance.now() - started) / 1000;
    const { jobId } = JSON.parse(accepted.body) as { jobId: string };
    let job = await jobOf(jobId);
    while (!['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.status)) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      job = await jobOf(jobId);
    }
    const distributionSeconds = (performance.now() - started) / 1000;
    const distributionRssMb = peakRssMb(product.child.pid!);
    const { rows: [coupons] } = await services.db.query(
      `SELECT count(*)::int AS rows, count(DISTINCT user_id)::int AS users, (SELECT issued_count FROM coupon_templates WHERE id = $1) AS issued
         FROM coupons WHERE template_id = $1`, [productTemplate]);
    check(job.status === 'SUCCEEDED', `distribution job ${job.status}: ${job.error}`);
    check(job.total === USERS && job.succeeded === USERS && job.skipped === 0 && job.failed === 0, `distribution counts ${JSON.stringify(job)}`);
    check(coupons.rows === USERS && coupons.users === USERS && coupons.issued === USERS, `distribution rows ${JSON.stringify(coupons)}`);
    const distributionRate = USERS / distributionSeconds;
    const copyRate = USERS / copySeconds;
    console.log(`distribution: upload staged in ${round(uploadSeconds)} s, job done at ${round(distributionSeconds)} s end to end (${Math.round(distributionRate).toLocaleString('en-US')} users/s, ${round(distributionRate / copyRate)} × raw COPY), peak RSS ${distributionRssMb} MB`);
    await stopProduct(product);

    // 2. Accrual: ITEMS items as requests of 10,000, a few in flight at a time.
    product = await startProduct();
    const requests = Math.ceil(ITEMS / ITEMS_PER_REQUEST);
    const expiresAt = new Date(now + 365 * 86_400_000).toISOString();
    const body = (r: number) => JSON.stringify({
      items: Array.from({ length: Math.min(ITEMS_PER_REQUEST, ITEMS - r * ITEMS_PER_REQUEST) }, (_, i) => {
        const n = r * ITEMS_PER_REQUEST + i;
        return { userId: `member-${n % ACCRUAL_USERS}`, amount: 1 + (n % 100), idempotencyKey: `bench:${n}`, ...(n % 2 ? { expiresAt } : {}) };
      }),
    });
    const accrualStarted = performance.now();
    const jobIds: string[] = [];
    let nextRequest = 0;
    await Promise.all(Array.from({ length: CONCURRENT_REQUESTS }, async () => {
      while (nextRequest < requests) {
        const r = nextRequest++;
        const answer = await post(base, '/v1/points/accruals', json(headers), body(r));
        check(answer.status === 202, `accrual request ${r} answered ${answer.status}: ${answer.body}`);
        if (answer.status === 202) jobIds.push((JSON.parse(answer.body) as { jobId: string }).jobId);
      }
    }));
    const postedSeconds = (performance.now() - accrualStarted) / 1000;
    for (;;) {
      const { rows: [left] } = await services.db.query(`SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1::uuid[]) AND status IN ('QUEUED', 'RUNNING')`, [jobIds]);
      if (left.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const accrualSeconds = (performance.now() - accrualStarted) / 1000;
    const accrualRssMb = peakRssMb(product.child.pid!);
    const { rows: [accrual] } = await services.db.query(
      `SELECT count(*) FILTER (WHERE status = 'SUCCEEDED')::int AS succeeded_jobs, coalesce(sum(succeeded), 0)::bigint AS applied
         FROM jobs WHERE id = ANY($1::uuid[])`, [jobIds]);
    const { rows: [ledger] } = await services.db.query(
      `SELECT (SELECT count(*) FROM point_wallets WHERE partner_id = $1)::int AS wallets,
              (SELECT coalesce(sum(balance), 0) FROM point_wallets WHERE partner_id = $1)::bigint AS balance,
              (SELECT count(*) FROM point_transactions WHERE partner_id = $1 AND type = 'EARN')::int AS earns`, [partner.id]);
    let expectedBalance = 0;
    for (let n = 0; n < ITEMS; n++) expectedBalance += 1 + (n % 100);
    check(accrual.succeeded_jobs === requests && accrual.applied === ITEMS, `accrual jobs ${JSON.stringify(accrual)}`);
    check(ledger.wallets === Math.min(ACCRUAL_USERS, ITEMS) && ledger.earns === ITEMS && ledger.balance === expectedBalance, `accrual ledger ${JSON.stringify(ledger)} (expected balance ${expectedBalance})`);
    const invariants = await checkPointsInvariants(services.db, { partnerId: partner.id });
    check(invariants.violations.length === 0, `points invariants: ${invariants.violations.slice(0, 5).join('; ')}`);
    console.log(`accrual: ${requests} requests posted in ${round(postedSeconds)} s, all ${ITEMS.toLocaleString('en-US')} items applied at ${round(accrualSeconds)} s (${Math.round(ITEMS / accrualSeconds).toLocaleString('en-US')} items/s), peak RSS ${accrualRssMb} MB, invariants ${invariants.violations.length === 0 ? 'hold' : 'BROKEN'}`);
    await stopProduct(product);
    product = undefined;

    const result = {
      bench: 'bulk',
      users: USERS,
      items: ITEMS,
      copySeconds: round(copySeconds),
      copyRowsPerSecond: Math.round(copyRate),
      distributionUploadSeconds: round(uploadSeconds),
      distributionSeconds: round(distributionSeconds),
      distributionUsersPerSecond: Math.round(distributionRate),
      distributionVsCopy: round(distributionRate / copyRate, 3),
      distributionPeakRssMb: distributionRssMb,
      accrualPostSeconds: round(postedSeconds),
      accrualSeconds: round(accrualSeconds),
      accrualItemsPerSecond: Math.round(ITEMS / accrualSeconds),
      accrualPeakRssMb: accrualRssMb,
      targets: {
        distributionWithin120s: distributionSeconds <= TARGETS.distributionSeconds,
        distributionRssWithin300Mb: distributionRssMb <= TARGETS.rssMb,
        distributionAtLeastHalfCopyRate: distributionRate / copyRate >= TARGETS.copyRatio,
        accrualWithin60s: accrualSeconds <= TARGETS.accrualSeconds,
        accrualRssWithin300Mb: accrualRssMb <= TARGETS.rssMb,
      },
      verified: problems.length === 0,
    };
    for (const problem of problems) console.error(`VERIFICATION FAILED: ${problem}`);
    console.log(JSON.stringify(result));
    process.exitCode = problems.length === 0 ? 0 : 1;
  } finally {
    if (product) await stopProduct(product).catch(() => undefined);
    await services.stop();
  }
}

await main();
