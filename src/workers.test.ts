// Background work has its own pool: with every connection of the requests' pool held, a bulk job
// still runs to the end (and, the other way round, jobs never hold what requests need).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tx } from './infra/db.ts';
import { startWorkers } from './workers.ts';
import { createTemplate } from '../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../test/harness/test-app.ts';
import { waitFor } from '../test/harness/wait-for.ts';

describe('background workers', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ env: { STAMPEDE_DB_POOL_SIZE: '6' } }); });
  afterAll(async () => { await t.close(); });

  it('run a bulk job while the general pool is exhausted', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
    const accepted = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: partner.headers, payload: { userIds: ['w-1', 'w-2', 'w-3'] },
    });
    expect(accepted.statusCode).toBe(202);
    const { jobId } = accepted.json<{ jobId: string }>();
    const held: Tx[] = [];
    for (let i = 0; i < 6; i++) held.push(await t.ctx.db.connect());
    let stop: (() => Promise<void>) | undefined;
    try {
      stop = await startWorkers(t.ctx);
      await waitFor(async () => (await t.ctx.workerDb.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [jobId])).rows[0]?.status === 'SUCCEEDED',
        { what: 'the job to succeed', intervalMs: 100 });
    } finally {
      for (const client of held) client.release();
      await stop?.();
    }
    const { rows } = await t.ctx.db.query('SELECT user_id FROM coupons WHERE template_id = $1 ORDER BY user_id', [templateId]);
    expect(rows.map((row) => row.user_id)).toEqual(['w-1', 'w-2', 'w-3']);
  });
});
