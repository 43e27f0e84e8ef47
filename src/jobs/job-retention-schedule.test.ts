// The retention schedule fires on its own (every 200 ms here instead of hourly) and deletes a job
// finished before the retention period. Its clock is set 900 days back, so that it deletes only
// this file's job (finished 1,000 days ago), never another file's.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPartner, createTestApp } from '../../test/harness/test-app.ts';
import { startJobRetention } from './job-retention.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

const DAY = 86_400_000;

describe('job retention schedule', () => {
  it('deletes a long-finished job without being asked, and keeps an unfinished one', async () => {
    const now = Date.now() - 900 * DAY;
    const t = await createTestApp({ clock: () => new Date(now), env: { STAMPEDE_SCHEDULE_INTERVAL_MS: '200', STAMPEDE_JOB_RETENTION_DAYS: '30' } });
    try {
      const partner = await createPartner(t.app);
      const job = async (status: string, finishedAt: Date | null) => {
        const id = randomUUID();
        await t.ctx.db.query(
          `INSERT INTO jobs (id, partner_id, type, status, params, total, processed, failed, created_at, finished_at)
           VALUES ($1, $2, 'COUPON_DISTRIBUTION', $3, '{}', 1, $4, $4, $5, $6)`,
          [id, partner.id, status, finishedAt ? 1 : 0, new Date(now - 1_000 * DAY), finishedAt],
        );
        return id;
      };
      const finished = await job('SUCCEEDED', new Date(now - 100 * DAY));
      const running = await job('RUNNING', null);
      const ids = async () => (await t.ctx.db.query<{ id: string }>('SELECT id FROM jobs WHERE partner_id = $1', [partner.id])).rows.map((r) => r.id);
      expect((await ids()).sort()).toEqual([finished, running].sort());
      const stop = await startJobRetention(t.ctx);
      try {
        await waitFor(async () => !(await ids()).includes(finished), { what: 'a scheduled run to delete the finished job' });
      } finally {
        await stop();
      }
      expect(await ids()).toEqual([running]);
      await t.ctx.db.query('DELETE FROM jobs WHERE id = $1', [running]);
    } finally {
      await t.close();
    }
  });
});
