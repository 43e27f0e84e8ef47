// Per-partner SQL sources: registration refuses what could read other tenants; a job whose source
// fails mid-stream, sleeps past its timeout or is cancelled while staging ends within seconds,
// releases everything, and the next job runs; no source row text reaches the partner.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor, withDeadline } from '../../test/harness/wait-for.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { createSourceDatabase, withCredentials, type TestSourceDatabase } from '../../test/harness/sql-source.ts';
import { appWithJobQueue, finishedJob } from '../../test/harness/job-app.ts';
import { adminHeaders, createPartner } from '../../test/harness/test-app.ts';

type Headers = Record<string, string>;
const SECRET = 'SECRET-ROW-TEXT';

describe('per-partner SQL sources', () => {
  let source: TestSourceDatabase;
  beforeAll(async () => {
    source = await createSourceDatabase(inject('databaseUrl'));
    await source.admin(`CREATE TABLE members (n int PRIMARY KEY, id text)`);
    // 20,000 rows: every 1,000th is not a user id and carries text the partner must never see back.
    await source.admin(`INSERT INTO members SELECT g, CASE WHEN g % 1000 = 7 THEN '${SECRET} ' || g ELSE 'm-' || g END FROM generate_series(1, 20000) g`);
    await source.admin(`GRANT SELECT ON members TO ${source.role}`);
  });
  afterAll(async () => {
    await source.drop();
  });
  const t = appWithJobQueue(); // registered last: closed first, before the source is dropped

  const register = (partnerId: string, url: string) =>
    t.app.inject({ method: 'PUT', url: `/v1/partners/${partnerId}/sql-source`, headers: adminHeaders, payload: { url } });
  const job = async (headers: Headers, jobId: string) => (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers })).json();
  const finished = (headers: Headers, jobId: string, timeoutMs: number) => finishedJob(t.app, headers, jobId, timeoutMs);
  const partnerWithSource = async () => {
    const partner = await createPartner(t.app);
    const registered = await register(partner.id, source.url);
    expect(registered.statusCode, registered.body).toBe(200);
    // a webhook row only to record what the jobs announce (its receiver is never reached)
    await t.ctx.db.query(
      `INSERT INTO webhooks (id, partner_id, url, kind, events) VALUES (gen_random_uuid(), $1, 'http://127.0.0.1:9/', 'json', '{job.started,job.failed,job.succeeded}')`,
      [partner.id]);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
    return { ...partner, templateId };
  };
  const distribute = (partner: { headers: Headers; templateId: string }, payload: unknown) =>
    t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${partner.templateId}/distributions`, headers: partner.headers, payload: payload as Record<string, unknown> });
  const sqlJob = async (partner: { headers: Headers; templateId: string }, query: string) => {
    const accepted = await distribute(partner, { source: { type: 'sql', query } });
    expect(accepted.statusCode, accepted.body).toBe(202);
    return accepted.json<{ jobId: string }>().jobId;
  };
  /** Nothing of the job is left held: no run's advisory lock, no staged chunk, no source session. */
  const releasedEverything = async (jobId: string) => {
    const { rows: [held] } = await t.ctx.db.query(
      `SELECT (SELECT count(*)::int FROM job_chunks WHERE job_id = $1) AS chunks,
              (SELECT count(*)::int FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1
                  AND ((l.classid::bigint << 32) | l.objid::bigint) = ('x' || right(replace($1::text, '-', ''), 16))::bit(64)::bigint) AS locks,
              (SELECT count(*)::int FROM pg_stat_activity WHERE datname = $2 AND application_name = 'stampede-source') AS source_sessions`,
      [jobId, source.database]);
    return held;
  };
  /** Another partner's job runs to the end afterwards. */
  const anotherPartnersJobRuns = async () => {
    const other = await createPartner(t.app);
    const templateId = await createTemplate(t.app, other.headers, { totalQuantity: null });
    const accepted = await distribute({ headers: other.headers, templateId }, { userIds: ['next-1', 'next-2'] });
    expect(accepted.statusCode, accepted.body).toBe(202);
    expect(await finished(other.headers, accepted.json().jobId, 15_000)).toMatchObject({ status: 'SUCCEEDED', succeeded: 2 });
  };
  const expectNoRowText = async (partnerId: string, jobId: string, ...answers: string[]) => {
    const { rows: deliveries } = await t.ctx.db.query('SELECT payload::text AS payload FROM webhook_deliveries WHERE job_id = $1', [jobId]);
    const { rows: failures } = await t.ctx.db.query('SELECT item, reason FROM job_failures WHERE job_id = $1', [jobId]);
    const { rows: [stored] } = await t.ctx.db.query('SELECT error FROM jobs WHERE id = $1 AND partner_id = $2', [jobId, partnerId]);
    const everything = [...answers, ...deliveries.map((row) => row.payload), JSON.stringify(failures), String(stored?.error)].join('\n');
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toMatch(/m-\d+|invalid input syntax|division by zero|pg_sleep/);
  };

  it('refuses a superuser connection and one that reaches Stampede\'s own database; stores the rest sealed, never shown again', async () => {
    const partner = await createPartner(t.app);
    const superuser = await register(partner.id, inject('databaseUrl'));
    expect(superuser.statusCode).toBe(400);
    expect(superuser.json().error.code).toBe('SOURCE_NOT_ALLOWED');

    // An ordinary role on Stampede's own database that can read partners and API keys.
    const role = `stampede_reader_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const password = randomUUID();
    await t.ctx.db.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    try {
      await t.ctx.db.query(`GRANT SELECT ON partners, api_keys TO ${role}`);
      const reader = await register(partner.id, withCredentials(inject('databaseUrl'), role, password));
      expect(reader.statusCode, reader.body).toBe(400);
      expect(reader.json().error.code).toBe('SOURCE_NOT_ALLOWED');
    } finally {
      await t.ctx.db.query(`REVOKE ALL ON partners, api_keys FROM ${role}`);
      await t.ctx.db.query(`DROP ROLE ${role}`);
    }

    const unreachable = await register(partner.id, withCredentials(source.url, source.role, 'wrong-password'));
    expect(unreachable.json().error.code).toBe('SOURCE_UNREACHABLE');
    expect((await t.app.inject({ url: `/v1/partners/${partner.id}/sql-source`, headers: adminHeaders })).statusCode).toBe(404);

    const accepted = await register(partner.id, source.url);
    expect(accepted.statusCode, accepted.body).toBe(200);
    const password2 = new URL(source.url.replace(/@.*$/, '@h/')).password;
    const shown = await t.app.inject({ url: `/v1/partners/${partner.id}/sql-source`, headers: adminHeaders });
    expect(shown.json()).toMatchObject({ configured: true, database: source.database, username: source.role });
    expect(shown.body).not.toContain(password2);
    const { rows: [row] } = await t.ctx.db.query('SELECT sealed_url FROM partner_sql_sources WHERE partner_id = $1', [partner.id]);
    expect(row.sealed_url.toString('latin1')).not.toContain(password2);
    // the admin API only; a partner's key does not reach it
    expect((await t.app.inject({ method: 'PUT', url: `/v1/partners/${partner.id}/sql-source`, headers: partner.headers, payload: { url: source.url } })).statusCode).toBe(401);

    expect((await t.app.inject({ method: 'DELETE', url: `/v1/partners/${partner.id}/sql-source`, headers: adminHeaders })).statusCode).toBe(204);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
    const without = await distribute({ headers: partner.headers, templateId }, { source: { type: 'sql', query: 'SELECT id FROM members' } });
    expect(without.json().error.code).toBe('SOURCE_NOT_CONFIGURED');
  });

  it('reads a partner\'s own source, reporting rows that are no user id by position only', async () => {
    const partner = await partnerWithSource();
    const refused = await distribute(partner, { source: { type: 'sql', query: `SELECT ('${SECRET}' || id)::int FROM members` } });
    expect(refused.statusCode).toBe(202); // the cast fails only when rows are read
    const bad = await distribute(partner, { source: { type: 'sql', query: `SELECT ${SECRET.replaceAll('-', '_')} FROM members` } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('SOURCE_QUERY_REJECTED');
    expect(bad.body).not.toContain(SECRET.replaceAll('-', '_'));
    const castFailed = await finished(partner.headers, refused.json().jobId, 15_000);
    expect(castFailed).toMatchObject({ status: 'FAILED' });
    expect(castFailed.error).toMatch(/^SOURCE_QUERY_FAILED: /);

    const jobId = await sqlJob(partner, 'SELECT id FROM members ORDER BY n');
    const done = await finished(partner.headers, jobId, 30_000);
    expect(done).toMatchObject({ status: 'SUCCEEDED', total: 20_000, succeeded: 19_980, failed: 20 });
    const failures = (await t.app.inject({ url: `/v1/jobs/${jobId}/failures?limit=2`, headers: partner.headers })).json();
    expect(failures.items).toEqual([{ position: 7, item: '', reason: 'MALFORMED_USER_ID' }, { position: 1007, item: '', reason: 'MALFORMED_USER_ID' }]);
    await expectNoRowText(partner.id, jobId, JSON.stringify(done), JSON.stringify(failures), bad.body, JSON.stringify(castFailed));
  });

  it('fails a job whose source fails mid-stream within seconds, releasing everything; the next job runs', async () => {
    const partner = await partnerWithSource();
    // Rows 1..15,000 are fine; row 15,001 fails its cast (its text would be in PostgreSQL's message).
    const jobId = await sqlJob(partner, `SELECT CASE WHEN n <= 15000 THEN 'm-' || n ELSE ('${SECRET}' || id)::int::text END FROM members ORDER BY n`);
    const failed = await finished(partner.headers, jobId, 30_000);
    expect(failed).toMatchObject({ status: 'FAILED', processed: 0 });
    expect(failed.error).toMatch(/^SOURCE_QUERY_FAILED: .*after row 10000 \(SQLSTATE 22P02\)/); // mid-stream, not at the end
    await waitFor(async () => Object.values(await releasedEverything(jobId)).every((n) => n === 0), { timeoutMs: 30_000, what: 'the job to release everything' });
    await expectNoRowText(partner.id, jobId, JSON.stringify(failed));
    await anotherPartnersJobRuns();
  });

  it('fails a job whose source sleeps past the statement timeout within seconds', async () => {
    const partner = await partnerWithSource();
    const jobId = await sqlJob(partner, `SELECT id FROM members WHERE pg_sleep(5) IS NOT NULL`);
    // 20,000 rows × 5 s would take a day: failing within the deadline, with SOURCE_TIMEOUT, is the 2 s timeout.
    const failed = await finished(partner.headers, jobId, 30_000);
    expect(failed).toMatchObject({ status: 'FAILED' });
    expect(failed.error).toMatch(/^SOURCE_TIMEOUT: /);
    await waitFor(async () => Object.values(await releasedEverything(jobId)).every((n) => n === 0), { timeoutMs: 30_000, what: 'the job to release everything' });
    await expectNoRowText(partner.id, jobId, JSON.stringify(failed));
    await anotherPartnersJobRuns();
  });

  it('cancels a job while it stages its source: the cancel answers at once and the run stops', async () => {
    const partner = await partnerWithSource();
    // A 1 ms sleep every 100 rows: each FETCH of 10,000 rows takes ≈ 0.1 s (far under the 2 s
    // timeout, which must not be what stops it), and the whole read over 20 s.
    const jobId = await sqlJob(partner, `SELECT 'm-' || g FROM generate_series(1, 2000000) g WHERE g % 100 <> 0 OR pg_sleep(0.001) IS NOT NULL`);
    await waitFor(async () => (await releasedEverything(jobId)).source_sessions > 0 && (await job(partner.headers, jobId)).status === 'RUNNING', { timeoutMs: 15_000, what: 'the job to stage' });
    // The read takes over 20 s: a cancel (and a release) that waited for it would miss these deadlines,
    // and the total of 0 checked below shows the read never finished.
    const cancelled = await withDeadline(t.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: partner.headers }), 10_000, 'the cancel answering while the source is read');
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json().status).toBe('CANCELLED');
    await waitFor(async () => Object.values(await releasedEverything(jobId)).every((n) => n === 0), { timeoutMs: 10_000, what: 'the cancelled run to release everything' });
    expect(await job(partner.headers, jobId)).toMatchObject({ status: 'CANCELLED', total: 0, processed: 0 });
    await anotherPartnersJobRuns();
  });

  it('checks the source again on every use: a role made superuser after registration is refused', async () => {
    const partner = await partnerWithSource();
    const role = `src_reader_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const password = randomUUID();
    await source.admin(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    try {
      await source.admin(`GRANT SELECT ON members TO ${role}`);
      const url = withCredentials(source.url, role, password);
      expect((await register(partner.id, url)).statusCode).toBe(200);
      const jobId = await (async () => {
        const accepted = await distribute(partner, { source: { type: 'sql', query: 'SELECT id FROM members' } });
        expect(accepted.statusCode, accepted.body).toBe(202);
        return accepted.json<{ jobId: string }>().jobId;
      })();
      expect(await finished(partner.headers, jobId, 30_000)).toMatchObject({ status: 'SUCCEEDED' });
      await source.admin(`ALTER ROLE ${role} SUPERUSER`);
      const next = await distribute(partner, { source: { type: 'sql', query: 'SELECT id FROM members' } });
      expect(next.json().error.code).toBe('SOURCE_NOT_ALLOWED');
    } finally {
      await source.admin(`DROP OWNED BY ${role}`).catch(() => undefined);
      await source.admin(`DROP ROLE ${role}`).catch(() => undefined);
    }
  });
});
