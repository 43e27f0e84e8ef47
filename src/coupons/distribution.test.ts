import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { withTransaction } from '../infra/db.ts';
import { insertJob, readJob, setStagedInput } from '../jobs/job-repository.ts';
import { ChunkRaceError } from '../jobs/job-runner.ts';
import { enqueueJobRun } from '../jobs/queue.ts';
import { distributionHandler, stageUserIdList } from './distribution.ts';
import { createSourceDatabase } from '../../test/harness/sql-source.ts';
import { appWithJobQueue, finishedJob } from '../../test/harness/job-app.ts';
import { adminHeaders, createPartner, templateBody, type TestApp } from '../../test/harness/test-app.ts';
import { noOtherTransaction, waitFor } from '../../test/harness/wait-for.ts';

type Headers = Record<string, string>;

async function createTemplate(t: TestApp, headers: Headers, overrides: Record<string, unknown> = {}) {
  const response = await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers, payload: templateBody({ totalQuantity: null, ...overrides }) });
  expect(response.statusCode).toBe(201);
  return response.json<{ id: string }>().id;
}

describe('coupon distribution', () => {
  const t = appWithJobQueue();

  it('distributes a 200,000-line CSV with 1% malformed lines and 5% duplicates with exact counts', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t, partner.headers);
    const malformed = ['has space', 'x'.repeat(129), 'tab\there', 'é-accent', 'back\\slash\\"'];
    const expectedFailures: Array<{ position: number; item: string }> = [];
    // Line 1 is the header; blank lines every 10,000 lines are ignored but keep their number.
    function* lines() {
      yield 'user_id\n';
      let lineNo = 1;
      let unique = 0;
      for (let i = 0; i < 200_000; i++) {
        lineNo++;
        if (i % 10_000 === 5) {
          yield '\r\n';
          lineNo++;
        }
        if (i % 100 === 7) {
          const bad = malformed[i % malformed.length]!;
          expectedFailures.push({ position: lineNo, item: bad });
          yield `${bad}\n`;
        } else if (i % 20 === 3) {
          yield `"user-${Math.floor(unique / 2)}"\r\n`; // a duplicate of an earlier user, quoted
        } else {
          yield `user-${unique++}\n`;
        }
      }
    }
    const body = Readable.from((function* () {
      let buffer = '';
      for (const line of lines()) {
        buffer += line;
        if (buffer.length > 64_000) { yield buffer; buffer = ''; }
      }
      yield buffer;
    })());
    const accepted = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`,
      headers: { ...partner.headers, 'content-type': 'text/csv' }, payload: body,
    });
    expect(accepted.statusCode, accepted.body).toBe(202);
    const { jobId } = accepted.json();

    const job = await finishedJob(t.app, partner.headers, jobId);
    expect(job).toMatchObject({ status: 'SUCCEEDED', type: 'COUPON_DISTRIBUTION', total: 200_000, processed: 200_000, failed: 2_000, skipped: 10_000, succeeded: 188_000, notServed: 0 });
    const { rows: [stats] } = await t.ctx.db.query(
      `SELECT count(*)::int AS coupons, count(DISTINCT user_id)::int AS users, max(seq) AS max_seq, count(slot)::int AS slots,
              (SELECT issued_count FROM coupon_templates WHERE id = $1) AS issued
         FROM coupons WHERE template_id = $1`, [templateId]);
    expect(stats).toEqual({ coupons: 188_000, users: 188_000, max_seq: 1, slots: 0, issued: 188_000 });
    // every field as written through binary COPY: the template's validity, UUIDv7 ids, the user ids read
    const template = (await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: partner.headers })).json();
    const { rows: [fields] } = await t.ctx.db.query(
      `SELECT count(*) FILTER (WHERE partner_id = $2 AND valid_from = $3 AND valid_until = $4 AND status = 'ISSUED'
                                 AND id::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]')::int AS exact,
              count(DISTINCT id)::int AS ids, count(*) FILTER (WHERE user_id ~ '^user-[0-9]+$')::int AS named
         FROM coupons WHERE template_id = $1`, [templateId, partner.id, template.validity.validFrom, template.validity.validUntil]);
    expect(fields).toEqual({ exact: 188_000, ids: 188_000, named: 188_000 });

    const page = (await t.app.inject({ url: `/v1/jobs/${jobId}/failures?limit=3`, headers: partner.headers })).json();
    expect(page.items).toEqual(expectedFailures.slice(0, 3).map((f) => ({ ...f, reason: 'MALFORMED_USER_ID' })));
    let seen = 0;
    let cursor: string | null = null;
    do {
      const next: { items: unknown[]; nextCursor: string | null } = (await t.app.inject({ url: `/v1/jobs/${jobId}/failures?limit=100${cursor ? `&cursor=${cursor}` : ''}`, headers: partner.headers })).json();
      seen += next.items.length;
      cursor = next.nextCursor;
    } while (cursor);
    expect(seen).toBe(2_000);
    const { rows: [staged] } = await t.ctx.db.query('SELECT count(*)::int AS n FROM job_chunks WHERE job_id = $1', [jobId]);
    expect(staged!.n).toBe(0);
  });

  it('cancels a distribution whose chunks run on two connections: it stops, and its counts match its rows', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t, partner.headers);
    const users = 300_000;
    const accepted = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`,
      headers: { ...partner.headers, 'content-type': 'text/csv' },
      payload: Array.from({ length: users }, (_, i) => `lane-${i}`).join('\n'),
    });
    expect(accepted.statusCode, accepted.body).toBe(202);
    const { jobId } = accepted.json();
    await waitFor(async () => (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers: partner.headers })).json().processed > 0,
      { what: 'the first chunk to be processed', timeoutMs: 120_000, intervalMs: 20 });
    const cancelled = await t.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: partner.headers });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json().status).toBe('CANCELLED');
    // A lane that held a chunk has committed or rolled it back: no transaction is left open.
    await waitFor(() => noOtherTransaction(t.ctx.db), { what: 'the lanes to finish their chunks' });
    const job = (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers: partner.headers })).json();
    expect(job.status).toBe('CANCELLED');
    expect(job.processed).toBeLessThan(users);
    const { rows: [stats] } = await t.ctx.db.query(
      `SELECT count(*)::int AS coupons, (SELECT issued_count FROM coupon_templates WHERE id = $1) AS issued,
              (SELECT count(*)::int FROM job_chunks WHERE job_id = $2) AS staged
         FROM coupons WHERE template_id = $1`, [templateId, jobId]);
    expect(stats).toEqual({ coupons: job.succeeded, issued: job.succeeded, staged: 0 });
    expect(job.processed).toBe(job.succeeded);
  });

  it('gives listed users coupons up to perUserLimit, skips holders, and stops at totalQuantity', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t, partner.headers, { totalQuantity: 5, perUserLimit: 2, validity: { type: 'RELATIVE', days: 7 } });
    const first = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: partner.headers,
      payload: { userIds: ['a', 'b', 'a', 'a'] },
    });
    expect(first.statusCode).toBe(202);
    expect(await finishedJob(t.app, partner.headers, first.json().jobId)).toMatchObject({ total: 4, succeeded: 3, skipped: 1, failed: 0, notServed: 0 });
    // a holds 2 (the limit): skipped; b holds 1 and gets one more; c takes the last of the stock (5), so
    // d and e are not served; the second b would exceed the limit: skipped.
    const second = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: partner.headers,
      payload: { userIds: ['a', 'b', 'c', 'd', 'e', 'b'] },
    });
    const job = await finishedJob(t.app, partner.headers, second.json().jobId);
    expect(job).toMatchObject({ status: 'SUCCEEDED', total: 6, processed: 6, succeeded: 2, skipped: 2, notServed: 2 });
    const { rows } = await t.ctx.db.query(
      `SELECT user_id, seq, valid_until - valid_from AS lifetime FROM coupons WHERE template_id = $1 ORDER BY user_id, seq`, [templateId]);
    expect(rows.map((r) => `${r.user_id}${r.seq}`)).toEqual(['a1', 'a2', 'b1', 'b2', 'c1']);
    expect(rows.every((r) => r.lifetime.days === 7)).toBe(true);
    const template = (await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: partner.headers })).json();
    expect(template).toMatchObject({ issuedCount: 5, remaining: 0 });
  });

  it('writes a chunk again when a coupon it decided to write is taken before its COPY', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t, partner.headers);
    const claim = await t.ctx.db.connect();
    const lane = await t.ctx.db.connect();
    const lanePid = (await lane.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    /**
     * Stages users as a job whose queue entry runs only in an hour: the test applies it. (Without an
     * entry, the queue's sweeper in any process of the test run abandons it as lost.)
     */
    const stage = async (users: string[]) => {
      const jobId = randomUUID();
      await withTransaction(t.ctx.db, async (tx) => {
        await insertJob(tx, { id: jobId, partnerId: partner.id, type: 'COUPON_DISTRIBUTION', params: { templateId, input: { kind: 'list' } }, staged: true });
        await setStagedInput(tx, jobId, await stageUserIdList(tx, jobId, users), users.length);
        await enqueueJobRun(tx, jobId, new Date(Date.now() + 3_600_000));
      });
      return (await readJob(t.ctx.db, jobId))!;
    };
    /** A claim of `user`, not committed until `commit` is called; it counts in issued_count. */
    const claimUncommitted = async (user: string) => {
      await claim.query('BEGIN');
      await claim.query(
        `INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, valid_from, valid_until)
         VALUES ($1, $2, $3, $4, NULL, 1, now(), now() + interval '1 day')`, [randomUUID(), partner.id, templateId, user]);
      await claim.query('UPDATE coupon_templates SET issued_count = issued_count + 1 WHERE id = $1', [templateId]);
    };
    /** Applies chunk 0 while the claim is open; the claim commits once the COPY waits on it. */
    const applyDuringClaim = async (job: Awaited<ReturnType<typeof stage>>) => {
      await lane.query('BEGIN');
      const applying = distributionHandler.processChunk(t.ctx, lane, job, 0);
      let settled = false;
      applying.then(() => { settled = true; }, () => { settled = true; });
      await waitFor(async () => settled || (await t.ctx.db.query<{ wait: string | null }>(
        'SELECT wait_event_type AS wait FROM pg_stat_activity WHERE pid = $1', [lanePid])).rows[0]?.wait === 'Lock',
      { what: 'the chunk to wait on the open claim' });
      await claim.query('COMMIT');
      return applying;
    };
    try {
      // The template has no coupon yet, so the chunk does not look holders up: the COPY meets the
      // claim's index entry, and the chunk decides again, now looking, within its transaction.
      await claimUncommitted('race-b');
      expect(await applyDuringClaim(await stage(['race-a', 'race-b', 'race-c']))).toMatchObject({ processed: 3, succeeded: 2, skipped: 1 });
      await lane.query('COMMIT');
      // Now the template has coupons of others, so holders are looked up; one claimed after that
      // lookup still makes the COPY fail, and the whole chunk runs again (the job runner retries).
      await claimUncommitted('race-e');
      const job = await stage(['race-d', 'race-e']);
      await expect(applyDuringClaim(job)).rejects.toBeInstanceOf(ChunkRaceError);
      await lane.query('ROLLBACK');
      await lane.query('BEGIN');
      expect(await distributionHandler.processChunk(t.ctx, lane, job, 0)).toMatchObject({ processed: 2, succeeded: 1, skipped: 1 });
      await lane.query('COMMIT');
    } finally {
      claim.release();
      lane.release();
    }
    const { rows } = await t.ctx.db.query('SELECT user_id FROM coupons WHERE template_id = $1 ORDER BY user_id', [templateId]);
    expect(rows.map((r) => r.user_id)).toEqual(['race-a', 'race-b', 'race-c', 'race-d', 'race-e']);
  });

  it('reads targets from the partner\'s SQL source and refuses anything but a single SELECT', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t, partner.headers);
    const source = await createSourceDatabase(inject('databaseUrl'));
    const table = 'source_users';
    await source.admin(`CREATE TABLE ${table} AS SELECT 'src-' || g AS id FROM generate_series(1, 25000) g`);
    await source.admin(`INSERT INTO ${table} VALUES ('bad id'), (NULL)`);
    await source.admin(`GRANT SELECT ON ${table} TO ${source.role}`);
    const registered = await t.app.inject({ method: 'PUT', url: `/v1/partners/${partner.id}/sql-source`, headers: adminHeaders, payload: { url: source.url } });
    expect(registered.statusCode, registered.body).toBe(200);
    const post = (source: unknown) => t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: partner.headers, payload: { source },
    });
    // a webhook row only to record what job.started announces (its receiver is never reached)
    await t.ctx.db.query(`INSERT INTO webhooks (id, partner_id, url, kind, events) VALUES (gen_random_uuid(), $1, 'http://127.0.0.1:9/', 'json', '{job.started}')`, [partner.id]);
    const accepted = await post({ type: 'sql', query: `SELECT id FROM ${table};` });
    expect(accepted.statusCode, accepted.body).toBe(202);
    const { jobId } = accepted.json<{ jobId: string }>();
    expect(await finishedJob(t.app, partner.headers, jobId)).toMatchObject({ status: 'SUCCEEDED', total: 25_002, processed: 25_002, succeeded: 25_000, failed: 2 });
    const failures = (await t.app.inject({ url: `/v1/jobs/${jobId}/failures`, headers: partner.headers })).json();
    expect(failures.items).toEqual([
      { position: 25_001, item: '', reason: 'MALFORMED_USER_ID' }, // a source row's text is never shown
      { position: 25_002, item: '', reason: 'MISSING_USER_ID' }, // the NULL row
    ]);
    // announced once read from the source, with its total
    const { rows: started } = await t.ctx.db.query(`SELECT payload FROM webhook_deliveries WHERE job_id = $1 AND event = 'job.started'`, [jobId]);
    expect(started.map((row) => row.payload.job.total)).toEqual([25_002]);

    for (const query of [`DELETE FROM ${table} RETURNING id`, `SELECT 1; DELETE FROM ${table}`, `WITH d AS (DELETE FROM ${table} RETURNING id) SELECT id FROM d`, `SELECT id, id FROM ${table}`, 'SELECT nope FROM nowhere']) {
      const refused = await post({ type: 'sql', query });
      expect(refused.statusCode, query).toBe(400);
      expect(refused.json().error.code, query).toBe('SOURCE_QUERY_REJECTED');
    }
    const { rows: [left] } = await source.admin(`SELECT count(*)::int AS n FROM ${table}`);
    expect(left!.n).toBe(25_002);
    await source.drop();
  });

  it('refuses bad requests without creating a job', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t, partner.headers);
    const url = `/v1/coupon-templates/${templateId}/distributions`;
    const other = await createPartner(t.app);
    expect((await t.app.inject({ method: 'POST', url, headers: other.headers, payload: { userIds: ['a'] } })).json().error.code).toBe('TEMPLATE_NOT_FOUND');
    const tooMany = await t.app.inject({ method: 'POST', url, headers: partner.headers, payload: { userIds: Array.from({ length: 10_001 }, (_, i) => `u${i}`) } });
    expect(tooMany.statusCode).toBe(400);
    const badId = await t.app.inject({ method: 'POST', url, headers: partner.headers, payload: { userIds: ['ok', 'not ok'] } });
    expect(badId.json().error.details[0].field).toBe('body.userIds.1');
    const empty = await t.app.inject({ method: 'POST', url, headers: { ...partner.headers, 'content-type': 'text/csv' }, payload: 'user_id\n\n\n' });
    expect(empty.statusCode).toBe(400);
    const unsupported = await t.app.inject({ method: 'POST', url, headers: { ...partner.headers, 'content-type': 'application/xml' }, payload: '<a/>' });
    expect(unsupported.statusCode).toBe(415);
    const { rows: [jobs] } = await t.ctx.db.query('SELECT count(*)::int AS n FROM jobs WHERE partner_id = $1', [partner.id]);
    expect(jobs!.n).toBe(0);
  });

  it('says when the partner has no SQL source', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t, partner.headers);
    const response = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: partner.headers,
      payload: { source: { type: 'sql', query: 'SELECT 1' } },
    });
    expect(response.json().error.code).toBe('SOURCE_NOT_CONFIGURED');
  });
});
