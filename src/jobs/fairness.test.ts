// Bulk jobs are shared fairly between partners: at most one running job per partner, every
// partner's first job before anyone's second, and per-partner bounds on unfinished jobs and on
// staged bytes.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { stageUserIdList } from '../coupons/distribution.ts';
import { withTransaction } from '../infra/db.ts';
import { startJobQueue } from '../job-queue.ts';
import { insertJob, setStagedInput } from './job-repository.ts';
import { enqueueJobRun, ensureQueueSchema } from './queue.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

interface Timing { id: string; partner_id: string; status: string; started_at: Date; finished_at: Date }

describe('fair share of bulk jobs between partners', () => {
  const apps: TestApp[] = [];
  afterAll(async () => { for (const app of apps) await app.close(); });
  const app = async (env: Record<string, string> = {}) => {
    const t = await createTestApp({ env });
    apps.push(t);
    return t;
  };

  /** Distribution jobs of `users` users each, due at `runAt`. */
  const queueJobs = async (t: TestApp, partnerId: string, templateId: string, count: number, runAt: Date, users = 2_000) => {
    await ensureQueueSchema(t.ctx.db, t.ctx.logger);
    const ids: string[] = [];
    for (let n = 0; n < count; n++) {
      const jobId = randomUUID();
      const userIds = Array.from({ length: users }, (_, i) => `fair-${n}-${i}`);
      await withTransaction(t.ctx.db, async (tx) => {
        await insertJob(tx, { id: jobId, partnerId, type: 'COUPON_DISTRIBUTION', params: { templateId, input: { kind: 'list' } }, staged: true });
        await setStagedInput(tx, jobId, await stageUserIdList(tx, jobId, userIds), userIds.length);
        await enqueueJobRun(tx, jobId, runAt);
      });
      ids.push(jobId);
    }
    return ids;
  };
  /** Makes the jobs due together, in one commit, however long queueing them took (an hour ahead until then). */
  const releaseJobs = (t: TestApp, ids: string[]) => withTransaction(t.ctx.db, async (tx) => {
    for (const id of ids) await enqueueJobRun(tx, id);
  });
  const later = () => new Date(Date.now() + 3_600_000);
  const timings = async (t: TestApp, ids: string[]) => {
    const { rows } = await t.ctx.db.query<Timing>('SELECT id, partner_id, status, started_at, finished_at FROM jobs WHERE id = ANY($1::uuid[])', [ids]);
    return new Map(rows.map((row) => [row.id, row]));
  };
  const allFinished = (t: TestApp, ids: string[]) => waitFor(async () => {
    const rows = await timings(t, ids);
    return ids.every((id) => rows.get(id)?.status === 'SUCCEEDED');
  }, { timeoutMs: 90_000, what: 'every job to succeed' });

  it('starts the job of a partner with one queued before the second of a partner with ten (one worker slot)', async () => {
    const t = await app({ STAMPEDE_BULK_JOB_CONCURRENCY: '1' });
    const busy = await createPartner(t.app);
    const quiet = await createPartner(t.app);
    const busyTemplate = await createTemplate(t.app, busy.headers, { totalQuantity: null });
    const quietTemplate = await createTemplate(t.app, quiet.headers, { totalQuantity: null });
    const busyJobs = await queueJobs(t, busy.id, busyTemplate, 10, later());
    const [quietJob] = await queueJobs(t, quiet.id, quietTemplate, 1, later());
    await releaseJobs(t, [...busyJobs, quietJob!]);
    const stop = await startJobQueue(t.ctx);
    try {
      await allFinished(t, [...busyJobs, quietJob!]);
    } finally {
      await stop();
    }
    const rows = await timings(t, [...busyJobs, quietJob!]);
    expect(rows.get(quietJob!)!.started_at.getTime()).toBeLessThan(rows.get(busyJobs[1]!)!.started_at.getTime());
  });

  it('never runs two jobs of one partner at once, even with free worker slots', async () => {
    const t = await app({ STAMPEDE_BULK_JOB_CONCURRENCY: '3' });
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
    const jobs = await queueJobs(t, partner.id, templateId, 5, later(), 5_000);
    await releaseJobs(t, jobs);
    const stop = await startJobQueue(t.ctx);
    try {
      await allFinished(t, jobs);
    } finally {
      await stop();
    }
    const runs = [...(await timings(t, jobs)).values()].sort((a, b) => a.started_at.getTime() - b.started_at.getTime());
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.started_at.getTime()).toBeGreaterThanOrEqual(runs[i - 1]!.finished_at.getTime());
  });

  it('bounds a partner\'s unfinished jobs and staged bytes, even when asked at once', async () => {
    const t = await app({ STAMPEDE_PARTNER_MAX_QUEUED_JOBS: '3', STAMPEDE_PARTNER_MAX_STAGED_BYTES: '20000' });
    const partner = await createPartner(t.app);
    // Scheduled an hour ahead: they stay QUEUED whatever worker runs during the test.
    const scheduledAt = new Date(Date.now() + 3_600_000).toISOString();
    const accrual = (items: number, tag: string) => t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: partner.headers,
      payload: { scheduledAt, items: Array.from({ length: items }, (_, i) => ({ userId: `q-${i}`, amount: 1, idempotencyKey: `${tag}-${i}` })) },
    });
    const tooBig = await accrual(1_000, 'big'); // ≈ 60 KB staged
    expect(tooBig.statusCode, tooBig.body).toBe(429);
    expect(tooBig.json().error.code).toBe('JOB_STAGED_BYTES_LIMIT');
    expect(tooBig.headers['retry-after']).toBe('30');
    // Five at once: one staging and four waiting for the staging slot, the most one partner may have queued there.
    const answers = await Promise.all(Array.from({ length: 5 }, (_, n) => accrual(2, `small-${n}`)));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([202, 202, 202, 429, 429]);
    expect(answers.filter((a) => a.statusCode === 429).map((a) => a.json().error.code)).toEqual(['JOB_QUEUE_FULL', 'JOB_QUEUE_FULL']);
    expect(answers.filter((a) => a.statusCode === 429).map((a) => a.headers['retry-after'])).toEqual(['30', '30']);
    const { rows: [count] } = await t.ctx.db.query(`SELECT count(*)::int AS n FROM jobs WHERE partner_id = $1`, [partner.id]);
    expect(count!.n).toBe(3);
    // another partner is not affected
    const other = await createPartner(t.app);
    const theirs = await t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: other.headers,
      payload: { scheduledAt, items: [{ userId: 'o-1', amount: 1, idempotencyKey: 'o-1' }] },
    });
    expect(theirs.statusCode, theirs.body).toBe(202);
  });
});
