import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { pruneFinishedJobs } from './job-retention.ts';

describe('job retention', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ env: { STAMPEDE_JOB_RETENTION_DAYS: '30' } }); });
  afterAll(async () => { await t.close(); });

  it('deletes jobs finished before the retention period with their failures, and nothing else', async () => {
    const partner = await createPartner(t.app);
    const now = new Date();
    const days = (n: number) => new Date(now.getTime() - n * 86_400_000);
    const job = async (status: string, finishedAt: Date | null) => {
      const id = randomUUID();
      await t.ctx.db.query(
        `INSERT INTO jobs (id, partner_id, type, status, params, total, processed, failed, created_at, finished_at)
         VALUES ($1, $2, 'COUPON_DISTRIBUTION', $3, '{}', 1, $4, $4, $5, $6)`,
        [id, partner.id, status, finishedAt ? 1 : 0, days(40), finishedAt],
      );
      if (finishedAt) await t.ctx.db.query(`INSERT INTO job_failures (job_id, position, item, reason) VALUES ($1, 1, 'x', 'MALFORMED_USER_ID')`, [id]);
      return id;
    };
    const old = await Promise.all(['SUCCEEDED', 'FAILED', 'CANCELLED'].map((status) => job(status, days(31))));
    const recent = await job('SUCCEEDED', days(29));
    const running = await job('RUNNING', null);

    expect(await pruneFinishedJobs(t.ctx, now)).toBeGreaterThanOrEqual(3); // other files' jobs are recent
    const { rows } = await t.ctx.db.query('SELECT id FROM jobs WHERE partner_id = $1 ORDER BY id', [partner.id]);
    expect(rows.map((row) => row.id)).toEqual([recent, running].sort());
    const { rows: failures } = await t.ctx.db.query('SELECT job_id FROM job_failures WHERE job_id = ANY($1::uuid[])', [[...old, recent]]);
    expect(failures.map((row) => row.job_id)).toEqual([recent]);
    expect((await t.app.inject({ url: `/v1/jobs/${old[0]}`, headers: partner.headers })).statusCode).toBe(404);
    expect(await pruneFinishedJobs(t.ctx, now)).toBe(0);
  });
});
